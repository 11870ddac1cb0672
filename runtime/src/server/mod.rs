//! The HTTP endpoints: `/metrics`, `/health`, `/ready` and `/status`, served
//! on a background thread.
//!
//! This folder owns the listener and connection handling (`mod.rs`) and the
//! readiness checks (`readiness`); what `/metrics` and `/status` answer is
//! the crate's `report`.

pub(crate) mod readiness;

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, VARY};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

pub(crate) use readiness::{Checks, Readiness};

use crate::error::ConfigError;
use crate::metrics::ExpositionFormat;
use crate::report::Report;

/// Limits of the HTTP endpoints, so that no client (or many) can take
/// them, or the host process's file descriptors, over.
///
/// ```
/// use std::time::Duration;
/// use telemark_runtime::telemetry::EndpointLimits;
///
/// let mut limits = EndpointLimits::default();
/// limits.max_connections = 16;
/// limits.header_read_timeout = Duration::from_secs(2);
/// let _builder = telemark_runtime::builder!().endpoint_limits(limits);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointLimits {
    /// Connections served at once (default 64). At the cap, a new
    /// connection replaces the oldest one not answering a request (idle,
    /// or still sending its request), so silent clients cannot shut others
    /// out; if every connection is answering one, the new one is closed.
    pub max_connections: usize,
    /// How long a connection may take to send a request's head, and how
    /// long it may stay idle between requests (default 5 s).
    pub header_read_timeout: Duration,
    /// Largest request head, in bytes (default 16 KiB, at least 8 KiB).
    pub max_request_head_bytes: usize,
}

impl Default for EndpointLimits {
    fn default() -> Self {
        EndpointLimits {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(5),
            max_request_head_bytes: 16 * 1024,
        }
    }
}

impl EndpointLimits {
    /// Checks the limits are usable.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError::new(
                "endpoint_limits.max_connections",
                "0",
                "at least one connection must be served",
            ));
        }
        if self.header_read_timeout.is_zero() {
            return Err(ConfigError::new(
                "endpoint_limits.header_read_timeout",
                "0s",
                "the timeout must be longer than zero",
            ));
        }
        if self.max_request_head_bytes < 8192 {
            return Err(ConfigError::new(
                "endpoint_limits.max_request_head_bytes",
                self.max_request_head_bytes.to_string(),
                "at least 8192 bytes",
            ));
        }
        Ok(())
    }
}

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

/// Marks a connection as answering a request while it lives.
struct Busy(Arc<AtomicBool>);

impl Busy {
    fn mark(flag: &Arc<AtomicBool>) -> Self {
        flag.store(true, Ordering::Release);
        Busy(Arc::clone(flag))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
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
    report: Arc<Report>,
    readiness: Readiness,
    limits: EndpointLimits,
) -> Result<Server, ListenError> {
    let checks = readiness.start().map_err(ListenError::Thread)?;
    let shared = Arc::new((report, checks));
    let address = listener.local_addr().map_err(ListenError::Thread)?;
    // Two workers; readiness checks run apart (see `readiness`), so none of
    // them can hold these up.
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
                // Live connections, oldest first, with whether each is
                // answering a request right now.
                let mut live: VecDeque<(tokio::task::AbortHandle, Arc<AtomicBool>)> = VecDeque::new();
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else {
                                // Out of file descriptors, say: back off instead of spinning.
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            };
                            live.retain(|(task, _)| !task.is_finished());
                            if live.len() >= limits.max_connections {
                                // At the cap, the oldest connection not
                                // answering a request (idle, or still
                                // sending its head) makes room; if every one
                                // is busy, the new one is closed at once.
                                match live.iter().position(|(_, busy)| !busy.load(Ordering::Acquire)) {
                                    Some(oldest) => {
                                        if let Some((task, _)) = live.remove(oldest) {
                                            task.abort();
                                        }
                                    }
                                    None => {
                                        drop(stream);
                                        continue;
                                    }
                                }
                            }
                            let shared = Arc::clone(&shared);
                            let limits = limits.clone();
                            let busy = Arc::new(AtomicBool::new(false));
                            let busy_in_service = Arc::clone(&busy);
                            let task = tokio::spawn(async move {
                                let service = hyper::service::service_fn(move |request| {
                                    let shared = Arc::clone(&shared);
                                    let busy = Busy::mark(&busy_in_service);
                                    async move {
                                        let response = respond(&shared, request).await;
                                        drop(busy);
                                        Ok::<_, std::convert::Infallible>(response)
                                    }
                                });
                                let io = hyper_util::rt::TokioIo::new(stream);
                                // The header-read timeout runs whenever the
                                // connection waits for a request: slow or
                                // silent clients, and idle keep-alive
                                // connections, are closed after it.
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .timer(hyper_util::rt::TokioTimer::new())
                                    .header_read_timeout(limits.header_read_timeout)
                                    .max_buf_size(limits.max_request_head_bytes)
                                    .serve_connection(io, service)
                                    .await;
                            });
                            live.push_back((task.abort_handle(), busy));
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

async fn respond(
    (report, readiness): &(Arc<Report>, Checks),
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply_json(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "error": "only GET is supported" }),
        );
    }
    match request.uri().path() {
        "/metrics" if !report.serves_metrics => reply_json(
            StatusCode::NOT_FOUND,
            &json!({ "error": "metrics are not served here: OTEL_METRICS_EXPORTER does not list prometheus" }),
        ),
        "/metrics" => {
            let accept = request
                .headers()
                .get(ACCEPT)
                .and_then(|accept| accept.to_str().ok());
            let format = ExpositionFormat::negotiate(accept);
            let mut response = reply(
                StatusCode::OK,
                format.content_type(),
                report.render_metrics(format),
            );
            response
                .headers_mut()
                .insert(VARY, HeaderValue::from_static("Accept"));
            response
        }
        "/health" => reply_json(StatusCode::OK, &json!({ "status": "ok" })),
        "/ready" => {
            let (ready, body) = readiness.run().await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply_json(status, &body)
        }
        "/status" => reply(StatusCode::OK, "application/json", report.status_json()),
        _ => reply_json(
            StatusCode::NOT_FOUND,
            &json!({ "error": "not found", "endpoints": ["/metrics", "/health", "/ready", "/status"] }),
        ),
    }
}
