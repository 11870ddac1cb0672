//! `/ready`: the service's readiness checks, run concurrently against one
//! deadline.

use std::future::Future;
use std::pin::Pin;
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

impl Readiness {
    /// Runs every check at once against one deadline; checks still running
    /// at the deadline are aborted and reported as timed out.
    pub(crate) async fn run(&self) -> (bool, serde_json::Value) {
        let deadline = tokio::time::Instant::now() + self.timeout;
        // Spawned so that a panicking check fails readiness instead of the server.
        let tasks: Vec<_> = self
            .checks
            .iter()
            .map(|(name, check)| (name, tokio::spawn(check())))
            .collect();
        let mut all_ok = true;
        let mut checks = Vec::with_capacity(tasks.len());
        for (name, mut task) in tasks {
            let outcome = match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(reason))) => Err(reason),
                Ok(Err(join_error)) => Err(format!("check failed: {join_error}")),
                Err(_) => {
                    task.abort();
                    Err(format!("timed out after {:?}", self.timeout))
                }
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
