//! Integrations with the crates services are built on, each behind its
//! cargo feature:
//! - `tracing` (feature `tracing`): log events become events of the
//!   sampled `#[traced]` span they happen in, and log lines carry its
//!   trace and span ids.
//! - `http_server` (feature `tower`; axum's routes with `axum`): a tower
//!   layer giving each request a server span and the HTTP server metrics.

#[cfg(feature = "tower")]
pub mod http_server;
#[cfg(feature = "tracing")]
pub mod tracing;
