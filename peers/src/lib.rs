//! telemark beside the crates users compare it with: its tests check that
//! telemark interoperates with them, its benchmarks and instruction-count
//! driver compare per-call costs. It is not built by the workspace's
//! default `cargo test`; run `cargo test -p telemark-peers`.

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// A span exporter that accepts every batch and does nothing, so that
/// measurements see the span path and not I/O.
///
/// ```
/// let _traces = telemark::Traces::exporter(telemark_peers::NoopExporter);
/// ```
#[derive(Debug)]
pub struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}
