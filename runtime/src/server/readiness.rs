//! `/ready`: the service's readiness checks, run concurrently against one
//! deadline, where a check that blocks its thread stalls nothing else.
//!
//! Each check runs on a thread of its own from a small runtime apart from
//! the server's, at most once at a time: requests that come while a run is
//! under way wait for that run's result (a blocked check is not started
//! again), so the threads checks use are bounded by their number. The
//! deadline is enforced on the server's side: a check finishing late is a
//! timeout. Dropping the checks leaves a blocked check behind rather than
//! waiting for it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

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

/// What a run of a check ends with: `None` while it runs.
type Outcome = Option<Result<(), String>>;

/// One check, with its run under way, if any.
struct Check {
    name: String,
    check: ReadinessCheck,
    run: Mutex<Option<watch::Receiver<Outcome>>>,
}

/// The checks, ready to run for `/ready`.
pub(crate) struct Checks {
    checks: Vec<Check>,
    timeout: Duration,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Publishes a run's outcome when it ends, however it ends (a panicking
/// check publishes a failure).
struct Publish(watch::Sender<Outcome>);

impl Drop for Publish {
    fn drop(&mut self) {
        if self.0.borrow().is_none() {
            let _ = self
                .0
                .send(Some(Err("check failed: it panicked".to_owned())));
        }
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
                run: Mutex::new(None),
            })
            .collect();
        Ok(Checks {
            checks,
            timeout: self.timeout,
            runtime: Some(runtime),
        })
    }
}

impl Check {
    /// The run under way, or a new one started on a thread of its own.
    fn join(&self, runtime: &tokio::runtime::Runtime) -> watch::Receiver<Outcome> {
        let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(under_way) = run.as_ref().filter(|run| run.borrow().is_none()) {
            return under_way.clone();
        }
        let (sender, receiver) = watch::channel(None);
        *run = Some(receiver.clone());
        let future = (self.check)();
        let handle = runtime.handle().clone();
        // Blocking in the check blocks only this thread.
        runtime.spawn_blocking(move || {
            let publish = Publish(sender);
            let outcome = handle.block_on(future);
            let _ = publish.0.send(Some(outcome));
        });
        receiver
    }
}

impl Checks {
    /// Runs every check at once (or joins its run under way) against one
    /// deadline; checks not done by then are reported as timed out.
    pub(crate) async fn run(&self) -> (bool, serde_json::Value) {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let Some(runtime) = &self.runtime else {
            return (false, json!({ "status": "not_ready", "checks": [] }));
        };
        let runs: Vec<_> = self
            .checks
            .iter()
            .map(|check| (&check.name, check.join(runtime)))
            .collect();
        let mut all_ok = true;
        let mut checks = Vec::with_capacity(runs.len());
        for (name, mut run) in runs {
            let finished = tokio::time::timeout_at(deadline, async {
                loop {
                    if let Some(outcome) = run.borrow_and_update().clone() {
                        return outcome;
                    }
                    if run.changed().await.is_err() {
                        return Err("check failed: it stopped".to_owned());
                    }
                }
            })
            .await;
            let outcome =
                finished.unwrap_or_else(|_| Err(format!("timed out after {:?}", self.timeout)));
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
