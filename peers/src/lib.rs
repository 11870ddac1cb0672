//! telemark beside the crates users compare it with: its tests check that
//! telemark interoperates with them, its benchmarks and instruction-count
//! driver compare per-call costs. It is not built by the workspace's
//! default `cargo test`; run `cargo test -p telemark-peers`.

/// What every benchmark suite shares (the root `benches/support` module).
#[path = "../../benches/support/mod.rs"]
pub mod support;

pub use support::{counter, NoopExporter};

pub mod sdk {
    //! The OpenTelemetry SDK as the drivers run it beside telemark: its
    //! batch span processor exporting over OTLP/gRPC with
    //! `opentelemetry-otlp`, default settings, every exported span counted.

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use opentelemetry_otlp::WithExportConfig;
    use telemark::opentelemetry_sdk::error::OTelSdkResult;
    use telemark::opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

    /// An exporter counting the spans it exported.
    #[derive(Debug)]
    pub struct Counted<E> {
        inner: E,
        exported: Arc<AtomicU64>,
    }

    impl<E: SpanExporter> SpanExporter for Counted<E> {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let spans = batch.len() as u64;
            let result = self.inner.export(batch).await;
            if result.is_ok() {
                self.exported.fetch_add(spans, Ordering::Relaxed);
            }
            result
        }

        fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
            self.inner.shutdown_with_timeout(timeout)
        }

        fn force_flush(&self) -> OTelSdkResult {
            self.inner.force_flush()
        }
    }

    /// The SDK exporting to `endpoint` (OTLP/gRPC), with the runtime its
    /// connection needs (the batch processor's thread blocks on each
    /// export; tonic's connection is driven by the runtime's one thread
    /// meanwhile, as telemark's is), and the count of spans exported.
    pub fn otlp_provider(
        endpoint: &str,
    ) -> (tokio::runtime::Runtime, SdkTracerProvider, Arc<AtomicU64>) {
        let exported = Arc::new(AtomicU64::new(0));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let provider = {
            let _inside = runtime.enter();
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.to_owned())
                .build()
                .expect("the OTLP exporter");
            SdkTracerProvider::builder()
                .with_batch_exporter(Counted {
                    inner: exporter,
                    exported: Arc::clone(&exported),
                })
                .build()
        };
        (runtime, provider, exported)
    }
}
