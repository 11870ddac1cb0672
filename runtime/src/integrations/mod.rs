//! Integrations with the crates services are built on, each behind its
//! cargo feature:
//! - `tracing` (feature `tracing`): log events become events of the
//!   sampled `#[traced]` span they happen in, and log lines carry its
//!   trace and span ids.
//! - `http_server` (feature `tower`; axum's routes with `axum`): a tower
//!   layer giving each request a server span and the HTTP server metrics.
//! - `http_client` (feature `tower`; reqwest with `reqwest`): a client span,
//!   propagation headers and the HTTP client metrics per outgoing request.

#[cfg(feature = "tower")]
pub mod http_client;
#[cfg(feature = "tower")]
mod http_common;
#[cfg(feature = "tower")]
pub mod http_server;
#[cfg(feature = "tracing")]
pub mod tracing;
