//! Start-up: the builder, the running [`Telemetry`] guard and its HTTP endpoints.

use std::fmt;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::buckets::{set_default_buckets, validate_buckets, BucketError, DEFAULT_BUCKETS};
use crate::catalog::instrumented_functions;
use crate::render::{
    render_breaker_metrics, render_build_info, render_function_metrics, render_span_counters,
    BuildInfo,
};
use crate::trace::pipeline::PipelineHandle;
use crate::trace::Traces;

/// The address the endpoints listen on unless configured.
pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:9464";

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type ReadinessCheck = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// Why telemetry could not start.
#[derive(Debug)]
pub enum TelemetryError {
    /// The listen address could not be parsed or resolved.
    InvalidAddress(String),
    /// The listen address could not be bound (in use, not permitted, …).
    Bind {
        /// The address that was tried.
        address: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The histogram buckets were refused.
    Buckets(BucketError),
    /// Another `metrics` recorder is already installed in this process.
    RecorderInstalled,
    /// The endpoint's thread or async runtime could not start.
    Runtime(std::io::Error),
    /// A setting (usually an `OTEL_*` environment variable) is invalid.
    Config(String),
}

impl fmt::Display for TelemetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TelemetryError::InvalidAddress(addr) => {
                write!(f, "invalid listen address {addr:?}: expected host:port")
            }
            TelemetryError::Bind { address, source } => {
                write!(f, "cannot listen on {address}: {source}")
            }
            TelemetryError::Buckets(err) => write!(f, "invalid duration buckets: {err}"),
            TelemetryError::RecorderInstalled => write!(
                f,
                "another metrics recorder is already installed; \
                 call .metrics_recorder(false) to keep it"
            ),
            TelemetryError::Runtime(err) => write!(f, "cannot start a telemetry thread: {err}"),
            TelemetryError::Config(message) => write!(f, "invalid telemetry setting: {message}"),
        }
    }
}

impl std::error::Error for TelemetryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TelemetryError::Bind { source, .. } | TelemetryError::Runtime(source) => Some(source),
            TelemetryError::Buckets(err) => Some(err),
            _ => None,
        }
    }
}

/// Configures and starts telemark's telemetry. Create it with
/// [`telemark::builder!()`](crate::builder), which fills in the calling
/// crate's name and version.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let telemetry = telemark_runtime::builder!()
///     .listen("127.0.0.1:9464")
///     .readiness_check("database", || async { Ok(()) })
///     .start()?;
/// println!("metrics on http://{}/metrics", telemetry.local_addr().unwrap());
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until .start() is called"]
pub struct TelemetryBuilder {
    crate_name: String,
    service_name: Option<String>,
    build: BuildInfo,
    listen: Option<String>,
    buckets: Option<Vec<f64>>,
    install_recorder: bool,
    readiness: Vec<(String, ReadinessCheck)>,
    readiness_timeout: Duration,
    traces: Option<Traces>,
}

impl TelemetryBuilder {
    /// A builder for a crate; prefer [`builder!`](crate::builder).
    pub fn new(crate_name: &str, version: &str) -> Self {
        TelemetryBuilder {
            crate_name: crate_name.to_owned(),
            service_name: None,
            build: BuildInfo {
                version: version.to_owned(),
                commit: String::new(),
                branch: String::new(),
            },
            listen: Some(DEFAULT_LISTEN_ADDRESS.to_owned()),
            buckets: None,
            install_recorder: true,
            readiness: Vec::new(),
            readiness_timeout: Duration::from_secs(2),
            traces: None,
        }
    }

    /// Records `#[traced]` spans and exports them as configured (default:
    /// no tracing; `#[traced]` then costs one check per call). Tracing stays
    /// off when `OTEL_SDK_DISABLED=true`.
    pub fn traces(mut self, traces: Traces) -> Self {
        self.traces = Some(traces);
        self
    }

    /// The `service_name` label. Default: `OTEL_SERVICE_NAME` from the
    /// environment at start, else the crate name. An explicit name wins.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// `build_info`'s `commit` label.
    pub fn commit(mut self, commit: impl Into<String>) -> Self {
        self.build.commit = commit.into();
        self
    }

    /// `build_info`'s `branch` label.
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.build.branch = branch.into();
        self
    }

    /// Where to serve `/metrics`, `/health`, `/ready` and `/status`
    /// (default [`DEFAULT_LISTEN_ADDRESS`]; port 0 picks a free port).
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.listen = Some(address.into());
        self
    }

    /// Serve no HTTP endpoints (render with [`Telemetry::render_metrics`]).
    pub fn without_server(mut self) -> Self {
        self.listen = None;
        self
    }

    /// Default duration buckets in seconds for `#[timed]` functions without
    /// their own, and for histograms recorded through the `metrics` facade.
    /// Checked at [`start`](Self::start): sorted, positive, at most 29.
    pub fn duration_buckets(mut self, seconds: &[f64]) -> Self {
        self.buckets = Some(seconds.to_vec());
        self
    }

    /// Whether to install a Prometheus recorder as the process's `metrics`
    /// recorder (default true), so `metrics::counter!` and friends appear on
    /// `/metrics` too.
    pub fn metrics_recorder(mut self, install: bool) -> Self {
        self.install_recorder = install;
        self
    }

    /// Adds a check run by `/ready`; the service is ready when every check
    /// returns `Ok(())` within the readiness timeout.
    pub fn readiness_check<F, Fut>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let check: ReadinessCheck = Arc::new(move || Box::pin(check()) as CheckFuture);
        self.readiness.push((name.into(), check));
        self
    }

    /// How long each readiness check may take (default 2 s).
    pub fn readiness_timeout(mut self, timeout: Duration) -> Self {
        self.readiness_timeout = timeout;
        self
    }

    /// Installs the recorder, binds the endpoints and starts serving them on
    /// a background thread. Errors (bad address, port in use, bad buckets,
    /// a foreign recorder) are returned, never panicked.
    pub fn start(self) -> Result<Telemetry, TelemetryError> {
        let service_name = self
            .service_name
            .clone()
            .or_else(|| {
                std::env::var("OTEL_SERVICE_NAME")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| self.crate_name.clone());

        // Everything that can fail without side effects comes first.
        crate::breaker::site::check_breaker_sites()
            .map_err(|error| TelemetryError::Config(error.to_string()))?;
        if let Some(seconds) = &self.buckets {
            validate_buckets(seconds).map_err(TelemetryError::Buckets)?;
        }
        let listener = match &self.listen {
            Some(address) => Some(bind(address)?),
            None => None,
        };
        let buckets = match &self.buckets {
            Some(seconds) => {
                set_default_buckets(seconds).map_err(TelemetryError::Buckets)?;
                seconds.clone()
            }
            None => DEFAULT_BUCKETS.to_vec(),
        };
        let recorder = if self.install_recorder {
            Some(install_recorder(&buckets)?)
        } else {
            None
        };

        // Calibrate the clock now rather than on the first timed call.
        crate::site::clock();

        let traces = match self.traces {
            Some(traces) if !crate::trace::sdk_disabled_by_env()? => {
                Some(traces.install(&service_name)?)
            }
            _ => None,
        };

        let shared = Arc::new(Shared {
            service_name,
            build: self.build,
            recorder,
            readiness: self.readiness,
            readiness_timeout: self.readiness_timeout,
            started: Instant::now(),
        });

        let server = match listener {
            Some(listener) => Some(spawn_server(listener, Arc::clone(&shared))?),
            None => None,
        };
        Ok(Telemetry {
            shared,
            server,
            traces,
        })
    }
}

/// Running telemetry. Dropping it stops the HTTP endpoints.
pub struct Telemetry {
    shared: Arc<Shared>,
    server: Option<Server>,
    traces: Option<PipelineHandle>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("service_name", &self.shared.service_name)
            .field("local_addr", &self.local_addr())
            .finish()
    }
}

impl Telemetry {
    /// The address the endpoints are served on, if they are.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|server| server.address)
    }

    /// The `service_name` label in use.
    pub fn service_name(&self) -> &str {
        &self.shared.service_name
    }

    /// What `/metrics` serves: the function metrics, `build_info`, and
    /// everything recorded through the `metrics` facade.
    pub fn render_metrics(&self) -> String {
        self.shared.render_metrics()
    }

    /// What `/status` serves, as JSON.
    pub fn status(&self) -> serde_json::Value {
        self.shared.status()
    }

    /// Exports every span ended so far; false if that took longer than
    /// `timeout` (or tracing is off).
    pub fn flush_traces(&self, timeout: Duration) -> bool {
        self.traces
            .as_ref()
            .is_some_and(|traces| traces.flush(timeout))
    }

    /// Stops the endpoints, exports the spans still queued (waiting at most
    /// five seconds) and shuts the span exporter down.
    pub fn shutdown(mut self) {
        self.stop_server();
        if let Some(mut traces) = self.traces.take() {
            traces.shutdown(Duration::from_secs(5));
        }
    }

    fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown.send(());
            let _ = server.thread.join();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop_server();
    }
}

struct Server {
    address: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

struct Shared {
    service_name: String,
    build: BuildInfo,
    recorder: Option<PrometheusHandle>,
    readiness: Vec<(String, ReadinessCheck)>,
    readiness_timeout: Duration,
    started: Instant,
}

impl Shared {
    fn render_metrics(&self) -> String {
        let mut out = String::with_capacity(4096);
        render_function_metrics(&mut out, &self.service_name);
        render_breaker_metrics(&mut out, &self.service_name);
        render_build_info(&mut out, &self.service_name, &self.build);
        render_span_counters(&mut out);
        if let Some(recorder) = &self.recorder {
            recorder.run_upkeep();
            out.push_str(&recorder.render());
        }
        out
    }

    fn status(&self) -> serde_json::Value {
        let functions: Vec<_> = instrumented_functions()
            .into_iter()
            .map(|f| {
                json!({
                    "function": f.function,
                    "module": f.module,
                    "file": f.file,
                    "line": f.line,
                    "attributes": f.attributes,
                    "calls": f.calls,
                    "errors": f.errors,
                    "in_flight": f.in_flight,
                })
            })
            .collect();
        json!({
            "service": self.service_name,
            "version": self.build.version,
            "commit": self.build.commit,
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "instrumentation_enabled": crate::is_enabled(),
            "functions": functions,
            "breakers": breakers_status(),
        })
    }

    /// Runs every check at once against one deadline; checks still running
    /// at the deadline are aborted and reported as timed out.
    async fn readiness(&self) -> (bool, serde_json::Value) {
        let deadline = tokio::time::Instant::now() + self.readiness_timeout;
        // Spawned so that a panicking check fails readiness instead of the server.
        let tasks: Vec<_> = self
            .readiness
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
                    Err(format!("timed out after {:?}", self.readiness_timeout))
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

/// The recorder telemark installed in this process, if it did.
static RECORDER: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

fn install_recorder(buckets: &[f64]) -> Result<PrometheusHandle, TelemetryError> {
    // Held across the check and the install, so concurrent starts share one recorder.
    let mut installed = RECORDER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(buckets)
        .map_err(|_| TelemetryError::Buckets(BucketError::Empty))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| TelemetryError::RecorderInstalled)?;
    *installed = Some(handle.clone());
    Ok(handle)
}

fn bind(address: &str) -> Result<std::net::TcpListener, TelemetryError> {
    let resolved: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|_| TelemetryError::InvalidAddress(address.to_owned()))?
        .collect();
    let first = *resolved
        .first()
        .ok_or_else(|| TelemetryError::InvalidAddress(address.to_owned()))?;
    let listener =
        std::net::TcpListener::bind(&resolved[..]).map_err(|source| TelemetryError::Bind {
            address: first,
            source,
        })?;
    listener
        .set_nonblocking(true)
        .map_err(TelemetryError::Runtime)?;
    Ok(listener)
}

fn spawn_server(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
) -> Result<Server, TelemetryError> {
    let address = listener.local_addr().map_err(TelemetryError::Runtime)?;
    // Two workers: a readiness check that blocks its thread leaves the other
    // one serving /metrics and /health.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("telemark-http")
        .enable_all()
        .build()
        .map_err(TelemetryError::Runtime)?;
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
        .map_err(TelemetryError::Runtime)?;
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

async fn respond(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
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
            shared.render_metrics(),
        ),
        "/health" => reply_json(StatusCode::OK, &json!({ "status": "ok" })),
        "/ready" => {
            let (ready, body) = shared.readiness().await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply_json(status, &body)
        }
        "/status" => reply_json(StatusCode::OK, &shared.status()),
        _ => reply_json(
            StatusCode::NOT_FOUND,
            &json!({ "error": "not found", "endpoints": ["/metrics", "/health", "/ready", "/status"] }),
        ),
    }
}

/// A [`TelemetryBuilder`] for the calling crate: its name (the default
/// `service_name`) and version, plus `build_info`'s commit and branch from the
/// compile-time environment variables `TELEMARK_GIT_COMMIT` and
/// `TELEMARK_GIT_BRANCH` when a build script sets them.
///
/// ```no_run
/// let _telemetry = telemark_runtime::builder!().start().expect("telemetry");
/// ```
#[macro_export]
macro_rules! builder {
    () => {
        $crate::TelemetryBuilder::new(
            ::core::env!("CARGO_PKG_NAME"),
            ::core::env!("CARGO_PKG_VERSION"),
        )
        .commit(::core::option_env!("TELEMARK_GIT_COMMIT").unwrap_or(""))
        .branch(::core::option_env!("TELEMARK_GIT_BRANCH").unwrap_or(""))
    };
}

/// `/status`'s view of every circuit breaker.
fn breakers_status() -> serde_json::Value {
    let breakers: Vec<_> = crate::breaker::CircuitBreaker::all()
        .into_iter()
        .map(|breaker| {
            let stats = breaker.stats();
            json!({
                "name": stats.name,
                "state": stats.state.label(),
                "successes": stats.successes,
                "failures": stats.failures,
                "rejected": stats.rejected,
                "timeouts": stats.timeouts,
                "ignored": stats.ignored,
                "slow": stats.slow,
                "consecutive_failures": stats.consecutive_failures,
                "window": {
                    "calls": stats.window_calls,
                    "failures": stats.window_failures,
                    "slow": stats.window_slow,
                },
                "half_open_trials": {
                    "admitted": stats.trials_admitted,
                    "succeeded": stats.trials_succeeded,
                },
                "next_trial_in_seconds": stats.next_trial_in.map(|d| d.as_secs_f64()),
            })
        })
        .collect();
    serde_json::Value::Array(breakers)
}
