//! The HTTP endpoints: `/metrics`, `/health`, `/ready` and `/status`, served
//! on a background thread.
//!
//! This folder owns the listener and connection handling (`mod.rs`), what
//! each endpoint answers (`Endpoints`), and the readiness checks
//! (`readiness`). It renders each subsystem's series through that
//! subsystem's own renderer.

pub(crate) mod readiness;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

pub(crate) use readiness::Readiness;

use crate::breaker::render::{breakers_status, render_breaker_metrics};
use crate::catalog::{counted_sites, instrumented_functions, timed_sites};
use crate::metrics::exposition::{header, sample};
use crate::metrics::render::{render_build_info, render_function_metrics, BuildInfo};
use crate::trace::pipeline::{SPANS_DROPPED, SPANS_EXPORTED};

/// The address the endpoints listen on unless configured.
pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:9464";

/// Why the endpoints could not start.
#[derive(Debug)]
pub(crate) enum ListenError {
    /// The address could not be parsed or resolved.
    InvalidAddress(String),
    /// The address could not be bound.
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    /// The server's thread or runtime could not start.
    Thread(std::io::Error),
}

/// The running server: its address, and how to stop it.
pub(crate) struct Server {
    pub address: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Server {
    /// Stops serving and waits for the server's thread.
    pub(crate) fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.thread.join();
    }
}

/// What the endpoints serve.
pub(crate) struct Endpoints {
    pub service_name: String,
    pub build: BuildInfo,
    pub recorder: Option<PrometheusHandle>,
    pub readiness: Readiness,
    pub started: Instant,
}

impl Endpoints {
    /// What `/metrics` serves.
    pub(crate) fn render_metrics(&self) -> String {
        let mut out = String::with_capacity(4096);
        let service = &self.service_name;
        render_function_metrics(&mut out, service, counted_sites(), timed_sites());
        render_breaker_metrics(&mut out, service);
        render_build_info(&mut out, service, &self.build);
        render_span_counters(&mut out);
        if let Some(recorder) = &self.recorder {
            recorder.run_upkeep();
            out.push_str(&recorder.render());
        }
        out
    }

    /// What `/status` serves.
    pub(crate) fn status(&self) -> serde_json::Value {
        let functions: Vec<_> = instrumented_functions()
            .into_iter()
            .map(|f| {
                json!({
                    "function": f.function,
                    "module": f.module,
                    "file": f.file,
                    "line": f.line,
                    "attributes": f.attributes,
                    "calls": f.calls,
                    "errors": f.errors,
                    "in_flight": f.in_flight,
                })
            })
            .collect();
        json!({
            "service": self.service_name,
            "version": self.build.version,
            "commit": self.build.commit,
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "instrumentation_enabled": crate::switch::is_enabled(),
            "functions": functions,
            "breakers": breakers_status(),
        })
    }
}

/// `telemark_spans_exported_total` and `telemark_spans_dropped_total`.
fn render_span_counters(out: &mut String) {
    header(
        out,
        "telemark_spans_exported_total",
        "counter",
        "Spans handed to the span exporter.",
    );
    let exported = SPANS_EXPORTED.load(Relaxed);
    sample(out, "telemark_spans_exported_total", [], exported);
    header(
        out,
        "telemark_spans_dropped_total",
        "counter",
        "Spans lost because the queue was full or the export failed.",
    );
    let dropped = SPANS_DROPPED.load(Relaxed);
    sample(out, "telemark_spans_dropped_total", [], dropped);
}

/// Resolves and binds `address` (not yet serving).
pub(crate) fn bind(address: &str) -> Result<std::net::TcpListener, ListenError> {
    let resolved: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|_| ListenError::InvalidAddress(address.to_owned()))?
        .collect();
    let first = *resolved
        .first()
        .ok_or_else(|| ListenError::InvalidAddress(address.to_owned()))?;
    let listener =
        std::net::TcpListener::bind(&resolved[..]).map_err(|source| ListenError::Bind {
            address: first,
            source,
        })?;
    listener
        .set_nonblocking(true)
        .map_err(ListenError::Thread)?;
    Ok(listener)
}

pub(crate) fn spawn_server(
    listener: std::net::TcpListener,
    shared: Arc<Endpoints>,
) -> Result<Server, ListenError> {
    let address = listener.local_addr().map_err(ListenError::Thread)?;
    // Two workers: a readiness check that blocks its thread leaves the other
    // one serving /metrics and /health.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("telemark-http")
        .enable_all()
        .build()
        .map_err(ListenError::Thread)?;
    let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("telemark-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else {
                                // Out of file descriptors, say: back off instead of spinning.
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            };
                            let shared = Arc::clone(&shared);
                            tokio::spawn(async move {
                                let service = hyper::service::service_fn(move |request| {
                                    let shared = Arc::clone(&shared);
                                    async move { Ok::<_, std::convert::Infallible>(respond(&shared, request).await) }
                                });
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(io, service)
                                    .await;
                            });
                        }
                    }
                }
            });
        })
        .map_err(ListenError::Thread)?;
    Ok(Server {
        address,
        shutdown,
        thread,
    })
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn reply_json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    reply(status, "application/json", value.to_string())
}

async fn respond(shared: &Endpoints, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply_json(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "error": "only GET is supported" }),
        );
    }
    match request.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.render_metrics(),
        ),
        "/health" => reply_json(StatusCode::OK, &json!({ "status": "ok" })),
        "/ready" => {
            let (ready, body) = shared.readiness.run().await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply_json(status, &body)
        }
        "/status" => reply_json(StatusCode::OK, &shared.status()),
        _ => reply_json(
            StatusCode::NOT_FOUND,
            &json!({ "error": "not found", "endpoints": ["/metrics", "/health", "/ready", "/status"] }),
        ),
    }
}
