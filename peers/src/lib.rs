//! telemark beside the crates users compare it with: its tests check that
//! telemark interoperates with them, its benchmarks and instruction-count
//! driver compare per-call costs. It is not built by the workspace's
//! default `cargo test`; run `cargo test -p telemark-peers`.

/// What every benchmark suite shares (the root `benches/support` module).
#[path = "../../benches/support/mod.rs"]
pub mod support;

pub use support::NoopExporter;
