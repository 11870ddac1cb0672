//! The HTTP endpoints: `/metrics`, `/health`, `/ready` and `/status`, served
//! on a background thread.
//!
//! This folder owns the listener and connection handling (`mod.rs`) and the
//! readiness checks (`readiness`); what `/metrics` and `/status` answer is
//! the crate's `report`.

pub(crate) mod readiness;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

pub(crate) use readiness::{Checks, Readiness};

use crate::report::Report;

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
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            report.render_metrics(),
        ),
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
        "/status" => reply_json(StatusCode::OK, &report.status()),
        _ => reply_json(
            StatusCode::NOT_FOUND,
            &json!({ "error": "not found", "endpoints": ["/metrics", "/health", "/ready", "/status"] }),
        ),
    }
}
