//! Integrations with the crates services are built on, each behind its
//! cargo feature:
//! - `tracing` (feature `tracing`): log events become events of the
//!   sampled `#[traced]` span they happen in, and log lines carry its
//!   trace and span ids.

#[cfg(feature = "tracing")]
pub mod tracing;
