//! Start-up: the builder, the running [`Telemetry`] guard, and why
//! starting can fail. This is where the subsystems are put together.

use std::fmt;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::error::ConfigError;

/// The address the endpoints listen on unless configured.
pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:9464";

use crate::breaker::site::check_breaker_sites;
use crate::breaker::BreakerRegistryError;
use crate::catalog::{family_clash, objective_outside_bounds};
#[cfg(feature = "metrics-recorder")]
use crate::metrics::recorder::install_recorder;
use crate::metrics::render::BuildInfo;
use crate::metrics::{set_default_buckets, validate_buckets, BucketError, ExpositionFormat};
#[cfg(feature = "otlp")]
use crate::push::{exporters_from_env, MetricsPush, PushHandle};
use crate::report::Report;
#[cfg(feature = "server")]
pub use crate::server::EndpointLimits;
#[cfg(feature = "server")]
use crate::server::{
    bind, readiness::readiness_check, spawn_server, ListenError, Readiness, Server,
};
use crate::trace::pipeline::PipelineHandle;
use crate::trace::{sdk_disabled_by_env, TraceError, Traces};

/// Why telemetry could not start.
#[derive(Debug)]
#[non_exhaustive]
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
    /// A setting (an `OTEL_*` environment variable, say) is invalid.
    Config(ConfigError),
    /// Tracing could not start.
    Traces(TraceError),
    /// The OTLP metrics push could not start (a TLS file, say).
    MetricsPush(Box<dyn std::error::Error + Send + Sync>),
    /// `#[circuit_breaker]` functions configure one breaker differently.
    Breakers(BreakerRegistryError),
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
            TelemetryError::Config(err) => write!(f, "invalid telemetry setting: {err}"),
            TelemetryError::Traces(err) => write!(f, "tracing cannot start: {err}"),
            TelemetryError::MetricsPush(err) => {
                write!(f, "the OTLP metrics push cannot start: {err}")
            }
            TelemetryError::Breakers(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for TelemetryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TelemetryError::Bind { source, .. } | TelemetryError::Runtime(source) => Some(source),
            TelemetryError::Buckets(err) => Some(err),
            TelemetryError::Config(err) => Some(err),
            TelemetryError::Traces(err) => Some(err),
            TelemetryError::MetricsPush(err) => Some(&**err),
            TelemetryError::Breakers(err) => Some(err),
            TelemetryError::InvalidAddress(_) | TelemetryError::RecorderInstalled => None,
        }
    }
}

#[cfg(feature = "server")]
impl From<ListenError> for TelemetryError {
    fn from(error: ListenError) -> Self {
        match error {
            ListenError::InvalidAddress(address) => TelemetryError::InvalidAddress(address),
            ListenError::Bind { address, source } => TelemetryError::Bind { address, source },
            ListenError::Thread(error) => TelemetryError::Runtime(error),
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
    /// Set in code: wins over the environment.
    repository_url: Option<String>,
    repository_provider: Option<String>,
    /// Known when the crate was built (`builder!`): used when neither the
    /// code nor the environment at start says.
    built_repository_url: String,
    built_repository_provider: String,
    #[cfg(feature = "server")]
    listen: Option<String>,
    buckets: Option<Vec<f64>>,
    install_recorder: bool,
    #[cfg(feature = "server")]
    readiness: Readiness,
    #[cfg(feature = "server")]
    endpoint_limits: EndpointLimits,
    traces: Option<Traces>,
    #[cfg(feature = "otlp")]
    metrics_push: Option<MetricsPush>,
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
                repository_url: String::new(),
                repository_provider: String::new(),
            },
            repository_url: None,
            repository_provider: None,
            built_repository_url: String::new(),
            built_repository_provider: String::new(),
            #[cfg(feature = "server")]
            listen: Some(DEFAULT_LISTEN_ADDRESS.to_owned()),
            buckets: None,
            install_recorder: cfg!(feature = "metrics-recorder"),
            #[cfg(feature = "server")]
            endpoint_limits: EndpointLimits::default(),
            #[cfg(feature = "server")]
            readiness: Readiness {
                checks: Vec::new(),
                timeout: Duration::from_secs(2),
            },
            traces: None,
            #[cfg(feature = "otlp")]
            metrics_push: None,
        }
    }

    /// Pushes every series `/metrics` serves to an OTLP collector on an
    /// interval, beside `/metrics` (see [`MetricsPush`] for the settings
    /// and `OTEL_METRICS_EXPORTER`). With the `otlp` feature.
    ///
    /// ```no_run
    /// use telemark_runtime::push::MetricsPush;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let _telemetry = telemark_runtime::builder!().metrics_push(MetricsPush::otlp()).start()?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "otlp")]
    pub fn metrics_push(mut self, push: MetricsPush) -> Self {
        self.metrics_push = Some(push);
        self
    }

    /// Records `#[traced]` spans and exports them as configured (default:
    /// no tracing; `#[traced]` then costs one check per call). Tracing stays
    /// off when `OTEL_SDK_DISABLED=true`.
    pub fn traces(mut self, traces: Traces) -> Self {
        self.traces = Some(traces);
        self
    }

    /// The `service_name` label and the spans' `service.name`. An explicit
    /// name wins; otherwise, from the environment at start, the metrics use
    /// `AUTOMETRICS_SERVICE_NAME`, else `OTEL_SERVICE_NAME` (the Autometrics
    /// specification's order), and the spans `OTEL_SERVICE_NAME`, else
    /// `AUTOMETRICS_SERVICE_NAME`; else the crate name.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// `build_info`'s `repository_url` label: where the service's source
    /// is. Default: `AUTOMETRICS_REPOSITORY_URL` from the environment at
    /// start, else as [`builder!`](crate::builder) found it when the crate was
    /// built (`AUTOMETRICS_REPOSITORY_URL` then, else the `repository` of
    /// its `Cargo.toml`). `""` leaves the label out.
    ///
    /// ```
    /// let telemetry = telemark_runtime::builder!()
    ///     .without_server()
    ///     .repository_url("https://github.com/acme/shop")
    ///     .start()
    ///     .unwrap();
    /// assert!(telemetry.render_metrics().contains(
    ///     r#"repository_url="https://github.com/acme/shop",repository_provider="github""#
    /// ));
    /// ```
    pub fn repository_url(mut self, url: impl Into<String>) -> Self {
        self.repository_url = Some(url.into());
        self
    }

    /// `build_info`'s `repository_provider` label (free-form, e.g.
    /// `github`). Default: `AUTOMETRICS_REPOSITORY_PROVIDER` from the
    /// environment at start or when the crate was built, else `github`,
    /// `gitlab` or `bitbucket` when the repository URL is on
    /// `github.com`, `gitlab.com` or `bitbucket.org`. `""` leaves it out.
    pub fn repository_provider(mut self, provider: impl Into<String>) -> Self {
        self.repository_provider = Some(provider.into());
        self
    }

    /// What [`builder!`](crate::builder) knew when the crate was built:
    /// the repository URL and provider, used when neither the code nor the
    /// environment at start gives them.
    #[doc(hidden)]
    pub fn built_repository(mut self, url: &str, provider: &str) -> Self {
        self.built_repository_url = url.to_owned();
        self.built_repository_provider = provider.to_owned();
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
    /// With the `server` feature (on by default).
    #[cfg(feature = "server")]
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.listen = Some(address.into());
        self
    }

    /// Serve no HTTP endpoints (render with [`Telemetry::render_metrics`]).
    /// Without the `server` feature, none are served anyway.
    #[allow(unused_mut)]
    pub fn without_server(mut self) -> Self {
        #[cfg(feature = "server")]
        {
            self.listen = None;
        }
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
    /// recorder, so `metrics::counter!` and friends appear on `/metrics`
    /// too (default: with the `metrics-recorder` feature, on by default;
    /// asking for it without the feature makes [`start`](Self::start) fail).
    pub fn metrics_recorder(mut self, install: bool) -> Self {
        self.install_recorder = install;
        self
    }

    /// Adds a check run by `/ready`; the service is ready when every check
    /// returns `Ok(())` within the readiness timeout. With the `server`
    /// feature.
    #[cfg(feature = "server")]
    pub fn readiness_check<F, Fut>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        let check = readiness_check(check);
        self.readiness.checks.push((name.into(), check));
        self
    }

    /// Limits of the HTTP endpoints (connections, timeouts, request size);
    /// checked at [`start`](Self::start). With the `server` feature.
    #[cfg(feature = "server")]
    pub fn endpoint_limits(mut self, limits: EndpointLimits) -> Self {
        self.endpoint_limits = limits;
        self
    }

    /// How long each readiness check may take (default 2 s). With the
    /// `server` feature.
    #[cfg(feature = "server")]
    pub fn readiness_timeout(mut self, timeout: Duration) -> Self {
        self.readiness.timeout = timeout;
        self
    }

    /// Installs the recorder, binds the endpoints and starts serving them on
    /// a background thread. Errors (bad address, port in use, bad buckets,
    /// a foreign recorder) are returned, never panicked.
    pub fn start(self) -> Result<Telemetry, TelemetryError> {
        // The code's name, else the variables in each signal's order.
        let named = |variables: [&str; 2]| {
            self.service_name
                .clone()
                .or_else(|| variables.into_iter().find_map(non_empty_env))
                .unwrap_or_else(|| self.crate_name.clone())
        };
        let service_name = named(["AUTOMETRICS_SERVICE_NAME", "OTEL_SERVICE_NAME"]);
        let trace_service_name = named(["OTEL_SERVICE_NAME", "AUTOMETRICS_SERVICE_NAME"]);
        let mut build = self.build;
        build.repository_url = self
            .repository_url
            .or_else(|| non_empty_env("AUTOMETRICS_REPOSITORY_URL"))
            .unwrap_or(self.built_repository_url);
        build.repository_provider = self
            .repository_provider
            .or_else(|| non_empty_env("AUTOMETRICS_REPOSITORY_PROVIDER"))
            .or_else(|| {
                Some(self.built_repository_provider).filter(|provider| !provider.is_empty())
            })
            .unwrap_or_else(|| repository_provider_of(&build.repository_url).to_owned());

        // Everything that can fail without side effects comes first.
        check_breaker_sites().map_err(TelemetryError::Breakers)?;
        if let Some((name, first, second)) = family_clash() {
            return Err(TelemetryError::Config(ConfigError::new(
                "metric name",
                name,
                format!("{first} and {second} both name it, as families of different kinds"),
            )));
        }
        if let Some(seconds) = &self.buckets {
            let nanos = validate_buckets(seconds).map_err(TelemetryError::Buckets)?;
            if let Some((site, objective)) = objective_outside_bounds(&nanos) {
                let threshold = objective
                    .latency_target()
                    .map_or(0.0, |target| target.threshold_nanos as f64 / 1e9);
                return Err(TelemetryError::Config(ConfigError::new(
                    "duration_buckets",
                    format!("{seconds:?}"),
                    format!(
                        "objective `{}` of #[timed] function `{}` ({}) has a latency \
                         threshold of {threshold} s, which must be one of the buckets",
                        objective.name(),
                        site.function,
                        site.module,
                    ),
                )));
            }
        }
        #[cfg(not(feature = "metrics-recorder"))]
        if self.install_recorder {
            return Err(TelemetryError::Config(ConfigError::new(
                "metrics_recorder",
                "true",
                "telemark was built without its `metrics-recorder` feature",
            )));
        }
        #[cfg(feature = "server")]
        self.endpoint_limits
            .validate()
            .map_err(TelemetryError::Config)?;
        #[cfg(feature = "server")]
        let listener = match &self.listen {
            Some(address) => Some(bind(address)?),
            None => None,
        };
        if let Some(seconds) = &self.buckets {
            set_default_buckets(seconds).map_err(TelemetryError::Buckets)?;
        }
        #[cfg(feature = "metrics-recorder")]
        let recorder = if self.install_recorder {
            let buckets = self
                .buckets
                .as_deref()
                .unwrap_or(&crate::metrics::DEFAULT_BUCKETS);
            let installed = install_recorder(buckets);
            Some(installed.map_err(|_| TelemetryError::RecorderInstalled)?)
        } else {
            None
        };

        // Calibrate the clock now rather than on the first timed call.
        crate::clock::clock();

        let traces = match self.traces {
            Some(traces) if !sdk_disabled_by_env().map_err(TelemetryError::Config)? => Some(
                traces
                    .install(&trace_service_name)
                    .map_err(TelemetryError::Traces)?,
            ),
            _ => None,
        };

        // `OTEL_METRICS_EXPORTER`, when set, says which exporters run.
        #[cfg(feature = "otlp")]
        let (push, serves_metrics) = {
            let exporters = exporters_from_env().map_err(TelemetryError::Config)?;
            let push = match (self.metrics_push, exporters) {
                (_, Some(exporters)) if !exporters.otlp => None,
                (Some(push), _) => Some(push),
                (None, Some(_)) => Some(MetricsPush::otlp()),
                (None, None) => None,
            };
            let sdk_disabled = sdk_disabled_by_env().map_err(TelemetryError::Config)?;
            let push = push.filter(|_| !sdk_disabled);
            (push, exporters.is_none_or(|exporters| exporters.prometheus))
        };
        #[cfg(not(feature = "otlp"))]
        let serves_metrics = true;

        let report = Arc::new(Report {
            service_name,
            build,
            #[cfg(feature = "metrics-recorder")]
            recorder,
            started: Instant::now(),
            serves_metrics,
            #[cfg(feature = "otlp")]
            pushes_metrics: push.is_some(),
            #[cfg(not(feature = "otlp"))]
            pushes_metrics: false,
        });
        #[cfg(feature = "otlp")]
        let push = match push {
            Some(push) => Some(
                crate::push::start(&push, Arc::clone(&report), &trace_service_name).map_err(
                    |error| match error.downcast::<ConfigError>() {
                        Ok(config) => TelemetryError::Config(*config),
                        Err(other) => TelemetryError::MetricsPush(other),
                    },
                )?,
            ),
            None => None,
        };

        #[cfg(feature = "server")]
        let server = match listener {
            Some(listener) => Some(spawn_server(
                listener,
                Arc::clone(&report),
                self.readiness,
                self.endpoint_limits,
            )?),
            None => None,
        };
        Ok(Telemetry {
            report,
            #[cfg(feature = "server")]
            server,
            traces,
            #[cfg(feature = "otlp")]
            push,
        })
    }
}

/// Running telemetry. Dropping it stops the HTTP endpoints.
pub struct Telemetry {
    report: Arc<Report>,
    #[cfg(feature = "server")]
    server: Option<Server>,
    traces: Option<PipelineHandle>,
    #[cfg(feature = "otlp")]
    push: Option<PushHandle>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Telemetry");
        debug.field("service_name", &self.report.service_name);
        #[cfg(feature = "server")]
        debug.field("local_addr", &self.local_addr());
        debug.finish()
    }
}

impl Telemetry {
    /// The address the endpoints are served on, if they are. With the
    /// `server` feature.
    #[cfg(feature = "server")]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|server| server.address)
    }

    /// The `service_name` label in use.
    pub fn service_name(&self) -> &str {
        &self.report.service_name
    }

    /// What `/metrics` serves by default: the function metrics,
    /// `build_info`, and everything recorded through the `metrics` facade,
    /// in the Prometheus text format 0.0.4.
    pub fn render_metrics(&self) -> String {
        self.report.render_metrics(ExpositionFormat::PrometheusText)
    }

    /// What `/metrics` serves in `format`: in OpenMetrics, counters and
    /// histogram buckets carry their last sampled call as an exemplar.
    /// Serving the text yourself, pick the format with
    /// [`ExpositionFormat::negotiate`] from the request's `Accept` header.
    ///
    /// ```
    /// use telemark_runtime::metrics::ExpositionFormat;
    ///
    /// let telemetry = telemark_runtime::builder!().without_server().start().unwrap();
    /// let format = ExpositionFormat::negotiate(Some("application/openmetrics-text"));
    /// let text = telemetry.render_metrics_as(format);
    /// assert!(text.contains("# TYPE build_info gauge"));
    /// assert!(text.ends_with("# EOF\n"));
    /// ```
    pub fn render_metrics_as(&self, format: ExpositionFormat) -> String {
        self.report.render_metrics(format)
    }

    /// What `/status` serves, as JSON.
    pub fn status(&self) -> serde_json::Value {
        self.report.status()
    }

    /// What `/status` serves, as the JSON text.
    ///
    /// ```
    /// let telemetry = telemark_runtime::builder!().without_server().start().unwrap();
    /// assert!(telemetry.render_status().starts_with("{\"service\":"));
    /// ```
    pub fn render_status(&self) -> String {
        self.report.status_json()
    }

    /// Exports every span ended so far; false if that took longer than
    /// `timeout` (or tracing is off).
    pub fn flush_traces(&self, timeout: Duration) -> bool {
        self.traces
            .as_ref()
            .is_some_and(|traces| traces.flush(timeout))
    }

    /// Stops the endpoints, exports the spans still queued and shuts the
    /// span exporter down, pushes the metrics a last time (if they are
    /// pushed), within five seconds (see
    /// [`shutdown_within`](Self::shutdown_within)). Dropping the guard does
    /// the same.
    pub fn shutdown(self) {
        self.shutdown_within(Duration::from_secs(5));
    }

    /// [`shutdown`](Self::shutdown), returning within `timeout` whatever the
    /// exporter does: spans not exported by then are counted in
    /// `telemark_spans_dropped_total`.
    ///
    /// ```
    /// let telemetry = telemark_runtime::builder!().without_server().start().unwrap();
    /// telemetry.shutdown_within(std::time::Duration::from_millis(100));
    /// ```
    pub fn shutdown_within(mut self, timeout: Duration) {
        #[cfg(feature = "otlp")]
        let deadline = Instant::now() + timeout;
        self.stop_server();
        // The last push and the span flush run side by side, each within
        // the timeout.
        #[cfg(feature = "otlp")]
        let push = self.push.take();
        #[cfg(feature = "otlp")]
        if let Some(push) = &push {
            push.stop(timeout);
        }
        if let Some(mut traces) = self.traces.take() {
            traces.shutdown(timeout);
        }
        #[cfg(feature = "otlp")]
        if let Some(push) = push {
            push.wait(deadline.saturating_duration_since(Instant::now()));
        }
    }

    fn stop_server(&mut self) {
        #[cfg(feature = "server")]
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop_server();
    }
}

/// An environment variable's value, if set and not empty.
fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The provider a repository URL is hosted at, when its host says:
/// `https://github.com/..`, `git@gitlab.com:..`, `ssh://git@bitbucket.org/..`.
fn repository_provider_of(url: &str) -> &'static str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', ':']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host).to_ascii_lowercase();
    match host.strip_prefix("www.").unwrap_or(&host) {
        "github.com" => "github",
        "gitlab.com" => "gitlab",
        "bitbucket.org" => "bitbucket",
        _ => "",
    }
}

/// A [`TelemetryBuilder`] for the calling crate: its name (the default
/// `service_name`) and version, and what the compile-time environment says
/// of its build for `build_info`:
/// - `commit` and `branch`: `TELEMARK_GIT_COMMIT` / `TELEMARK_GIT_BRANCH`
///   when a build script sets them, else `VERGEN_GIT_SHA` /
///   `VERGEN_GIT_BRANCH` (set by the `vergen` crate's build script);
/// - `repository_url`: `AUTOMETRICS_REPOSITORY_URL`, else the `repository`
///   field of the crate's `Cargo.toml`; `repository_provider`:
///   `AUTOMETRICS_REPOSITORY_PROVIDER` (see
///   [`TelemetryBuilder::repository_url`] for what the environment at start
///   and the code can override).
///
/// ```no_run
/// let _telemetry = telemark_runtime::builder!().start().expect("telemetry");
/// ```
#[macro_export]
macro_rules! builder {
    () => {
        $crate::telemetry::TelemetryBuilder::new(
            ::core::env!("CARGO_PKG_NAME"),
            ::core::env!("CARGO_PKG_VERSION"),
        )
        .commit(
            ::core::option_env!("TELEMARK_GIT_COMMIT")
                .or(::core::option_env!("VERGEN_GIT_SHA"))
                .unwrap_or(""),
        )
        .branch(
            ::core::option_env!("TELEMARK_GIT_BRANCH")
                .or(::core::option_env!("VERGEN_GIT_BRANCH"))
                .unwrap_or(""),
        )
        .built_repository(
            ::core::option_env!("AUTOMETRICS_REPOSITORY_URL")
                .or(::core::option_env!("CARGO_PKG_REPOSITORY"))
                .unwrap_or(""),
            ::core::option_env!("AUTOMETRICS_REPOSITORY_PROVIDER").unwrap_or(""),
        )
    };
}
