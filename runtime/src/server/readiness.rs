//! `/ready`: the service's readiness checks, run concurrently against one
//! deadline, where a check that blocks its thread stalls nothing else.
//!
//! Each check runs on a thread of its own from a small runtime apart from
//! the server's, at most once at a time: a check still running from an
//! earlier request (blocked, say) is reported as not ready rather than
//! started again, so the threads checks use are bounded by their number.
//! The deadline is enforced on the server's side: a check finishing late is
//! a timeout. Dropping the checks leaves a blocked check behind rather than
//! waiting for it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One readiness check: makes a future telling whether a dependency is ready.
pub(crate) type ReadinessCheck = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// Wraps a user's check.
pub(crate) fn readiness_check<F, Fut>(check: F) -> ReadinessCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || Box::pin(check()) as CheckFuture)
}

/// The checks and how long each may take.
pub(crate) struct Readiness {
    pub checks: Vec<(String, ReadinessCheck)>,
    pub timeout: Duration,
}

/// One check, with whether a run of it is under way.
struct Check {
    name: String,
    check: ReadinessCheck,
    running: Arc<AtomicBool>,
}

/// The checks, ready to run for `/ready`.
pub(crate) struct Checks {
    checks: Vec<Check>,
    timeout: Duration,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Clears a check's "running" mark when its run ends, however it ends.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Readiness {
    /// The runtime the checks run on, and the checks.
    pub(crate) fn start(self) -> std::io::Result<Checks> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(self.checks.len().max(1))
            .thread_name("telemark-ready")
            .enable_all()
            .build()?;
        let checks = self
            .checks
            .into_iter()
            .map(|(name, check)| Check {
                name,
                check,
                running: Arc::new(AtomicBool::new(false)),
            })
            .collect();
        Ok(Checks {
            checks,
            timeout: self.timeout,
            runtime: Some(runtime),
        })
    }
}

impl Checks {
    /// Runs every check at once against one deadline; checks still running
    /// at the deadline are reported as timed out.
    pub(crate) async fn run(&self) -> (bool, serde_json::Value) {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let Some(runtime) = &self.runtime else {
            return (false, json!({ "status": "not_ready", "checks": [] }));
        };
        let tasks: Vec<_> = self
            .checks
            .iter()
            .map(|check| {
                if check.running.swap(true, Ordering::AcqRel) {
                    return (&check.name, None);
                }
                let running = Running(Arc::clone(&check.running));
                let future = (check.check)();
                let handle = runtime.handle().clone();
                // A thread of its own: blocking in the check blocks only it;
                // a panic in it fails readiness, not the server.
                let task = runtime.spawn_blocking(move || {
                    let _running = running;
                    handle.block_on(future)
                });
                (&check.name, Some(task))
            })
            .collect();
        let mut all_ok = true;
        let mut checks = Vec::with_capacity(tasks.len());
        for (name, task) in tasks {
            let outcome = match task {
                None => Err("still running since an earlier request".to_owned()),
                Some(mut task) => match tokio::time::timeout_at(deadline, &mut task).await {
                    Ok(Ok(Ok(()))) => Ok(()),
                    Ok(Ok(Err(reason))) => Err(reason),
                    Ok(Err(join_error)) => Err(format!("check failed: {join_error}")),
                    Err(_) => Err(format!("timed out after {:?}", self.timeout)),
                },
            };
            match outcome {
                Ok(()) => checks.push(json!({ "name": name, "ok": true })),
                Err(reason) => {
                    all_ok = false;
                    checks.push(json!({ "name": name, "ok": false, "reason": reason }));
                }
            }
        }
        let status = if all_ok { "ready" } else { "not_ready" };
        (all_ok, json!({ "status": status, "checks": checks }))
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        // A blocked check keeps its thread; nobody waits for it.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
