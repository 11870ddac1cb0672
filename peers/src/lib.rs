//! telemark beside the crates users compare it with. This crate has no API:
//! its tests check that telemark interoperates with them, and (later) its
//! benchmarks compare their per-call costs. It is not built by the
//! workspace's default `cargo test`; run `cargo test -p telemark-peers`.
