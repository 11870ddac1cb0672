//! Pieces every peer suite uses.
#![allow(dead_code)] // each suite uses some of them

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;

/// A caller's error type: small, and able to carry a breaker's refusal.
#[derive(Debug)]
pub enum CallError {
    Refused,
    Failed,
}

impl From<telemark::BreakerError> for CallError {
    fn from(_: telemark::BreakerError) -> Self {
        CallError::Refused
    }
}

/// Polls a future that never waits to its output, without a runtime.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the benchmarked futures never wait"),
    }
}

/// Benchmarks `call` while one other thread calls it in a loop.
pub fn contended(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, call: fn(u64) -> u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let contender = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                black_box(call(black_box(i)));
                i += 1;
            }
        })
    };
    group.bench_function(name, |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            call(black_box(i))
        })
    });
    stop.store(true, Ordering::Relaxed);
    contender.join().unwrap();
}
