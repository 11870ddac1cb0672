//! What the HTTP server and client integrations share: the request
//! duration histograms (`http_server_request_duration_seconds`,
//! `http_client_request_duration_seconds`: series created on first use,
//! found again with a read lock and a lookup, at most [`MAX_SERIES`] per
//! family, then one overflow series), and the span attributes both record
//! the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{LazyLock, RwLock};

use http::StatusCode;
use opentelemetry::trace::Status;

use crate::clock::clock;
use crate::metrics::exposition::{format_seconds, header, sample};
use crate::trace::span::SpanRecord;

/// Bounds of the request durations in nanoseconds: the OpenTelemetry
/// semantic conventions' advice, 5 ms to 10 s, which is also the
/// Autometrics default set.
const BOUND_NANOS: [u64; 14] = telemark_limits::DEFAULT_BUCKET_NANOS;

/// Most series of one family; requests beyond them are counted in one
/// series labelled `otel_metric_overflow="true"`, as the OpenTelemetry SDK
/// does.
pub const MAX_SERIES: usize = 1_000;

/// How a request ended, for `error_type` (with the status code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ending {
    /// Answered: `error_type` is the status code if it counts as an error.
    Answered,
    /// No answer: the service or the connection failed (`error_type` says
    /// which).
    Failed(&'static str),
    /// Dropped before it was answered (client gone, timeout): `cancelled`.
    Cancelled,
}

/// What tells apart the series of one group (a route, a server address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SeriesKey {
    pub method: &'static str,
    pub scheme: &'static str,
    /// `server_port` (0: not a label).
    pub port: u16,
    /// 0: no response.
    pub status: u16,
    pub ending: Ending,
}

impl SeriesKey {
    /// `error_type`: the status code if it is an error (5xx, and 4xx for a
    /// client: `client_errors`), the failure, or `cancelled`.
    fn error_type(&self, client_errors: bool) -> Option<String> {
        let failed_status = self.status >= 500 || (client_errors && self.status >= 400);
        match self.ending {
            Ending::Answered if failed_status => Some(self.status.to_string()),
            Ending::Answered => None,
            Ending::Failed(why) => Some(why.to_owned()),
            Ending::Cancelled => Some("cancelled".to_owned()),
        }
    }
}

/// One series: counts per bucket, cumulative only at render.
pub(crate) struct Durations {
    /// Per bound, then above the last.
    buckets: [AtomicU64; 15],
    sum_nanos: AtomicU64,
}

impl Durations {
    fn new() -> Self {
        Durations {
            buckets: Default::default(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, nanos: u64) {
        let slot = BOUND_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BOUND_NANOS.len());
        self.buckets[slot].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }
}

/// The series of one family by group (`""`: none), each leaked on first
/// use: at most [`MAX_SERIES`] of them, then the overflow series.
#[derive(Default)]
struct Groups {
    by_group: HashMap<String, Vec<(SeriesKey, &'static Durations)>>,
    series: usize,
    overflow: Option<&'static Durations>,
}

impl Groups {
    fn find(&self, key: SeriesKey, group: &str) -> Option<&'static Durations> {
        self.by_group
            .get(group)?
            .iter()
            .find(|(found, _)| *found == key)
            .map(|(_, durations)| *durations)
    }
}

/// A request duration family.
pub(crate) struct DurationFamily {
    name: &'static str,
    help: &'static str,
    /// The label a series' group goes in (`http_route`, `server_address`).
    group_label: &'static str,
    /// Whether 4xx answers are errors (for clients).
    client_errors: bool,
    groups: LazyLock<RwLock<Groups>>,
}

impl DurationFamily {
    pub(crate) const fn new(
        name: &'static str,
        help: &'static str,
        group_label: &'static str,
        client_errors: bool,
    ) -> Self {
        DurationFamily {
            name,
            help,
            group_label,
            client_errors,
            groups: LazyLock::new(Default::default),
        }
    }

    /// Records the time since `start` (clock ticks) in the series of `key`
    /// in `group`.
    pub(crate) fn record_since(&self, start: u64, key: SeriesKey, group: Option<&str>) {
        let clock = clock();
        let nanos = clock.delta_as_nanos(start, clock.raw());
        self.series(key, group).record(nanos);
    }

    /// The series of `key` in `group`: a read lock and a lookup by the
    /// group's text, without allocating once it exists.
    pub(crate) fn series(&self, key: SeriesKey, group: Option<&str>) -> &'static Durations {
        let group = group.unwrap_or("");
        if let Some(found) = self
            .groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .find(key, group)
        {
            return found;
        }
        let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = groups.find(key, group) {
            return found;
        }
        if groups.series >= MAX_SERIES {
            if let Some(overflow) = groups.overflow {
                return overflow;
            }
            let overflow: &'static Durations = Box::leak(Box::new(Durations::new()));
            groups.overflow = Some(overflow);
            return overflow;
        }
        let durations: &'static Durations = Box::leak(Box::new(Durations::new()));
        groups.series += 1;
        groups
            .by_group
            .entry(group.to_owned())
            .or_default()
            .push((key, durations));
        durations
    }

    /// Renders the family, if it has a series.
    pub(crate) fn render(&self, out: &mut String, service: &str) {
        let groups = self.groups.read().unwrap_or_else(|e| e.into_inner());
        if groups.series == 0 && groups.overflow.is_none() {
            return;
        }
        header(out, self.name, "histogram", self.help);
        let mut names: Vec<&String> = groups.by_group.keys().collect();
        names.sort();
        for group in names {
            let mut series = groups.by_group[group].clone();
            series.sort_by_key(|(key, _)| *key);
            for (key, durations) in series {
                let port = key.port.to_string();
                let status = key.status.to_string();
                let error_type = key.error_type(self.client_errors);
                let mut labels = vec![
                    ("service_name", service),
                    ("http_request_method", key.method),
                    ("url_scheme", key.scheme),
                ];
                if !group.is_empty() {
                    labels.push((self.group_label, group));
                }
                if key.port != 0 {
                    labels.push(("server_port", &port));
                }
                if key.status != 0 {
                    labels.push(("http_response_status_code", &status));
                }
                if let Some(error_type) = &error_type {
                    labels.push(("error_type", error_type));
                }
                self.render_series(out, &labels, durations);
            }
        }
        if let Some(overflow) = groups.overflow {
            let labels = [("service_name", service), ("otel_metric_overflow", "true")];
            self.render_series(out, &labels, overflow);
        }
    }

    fn render_series(&self, out: &mut String, labels: &[(&str, &str)], series: &Durations) {
        let name = self.name;
        let mut cumulative = 0;
        for (slot, count) in series.buckets.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let le = BOUND_NANOS
                .get(slot)
                .map_or_else(|| "+Inf".to_owned(), |bound| format_seconds(*bound));
            let with_le = labels.iter().copied().chain([("le", le.as_str())]);
            sample(out, &format!("{name}_bucket"), with_le, cumulative);
        }
        let sum = series.sum_nanos.load(Relaxed) as f64 / 1e9;
        sample(out, &format!("{name}_sum"), labels.iter().copied(), sum);
        sample(
            out,
            &format!("{name}_count"),
            labels.iter().copied(),
            cumulative,
        );
    }
}

/// Longest text kept from a request in a span attribute, in bytes.
pub(crate) const MAX_TEXT_BYTES: usize = 1_024;

/// Longest text kept from a request (labels, span names, attributes).
pub(crate) fn bounded(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The standard methods, as recorded; anything else is `_OTHER`.
pub(crate) fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// `network.protocol.version` of an HTTP version.
pub(crate) fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// `http` or `https`, as the URI says (`http` when it says nothing).
pub(crate) fn scheme_of(uri: &http::Uri) -> &'static str {
    match uri.scheme_str() {
        Some("https") => "https",
        _ => "http",
    }
}

/// A host as `server.address`: without an IPv6 address's brackets, bounded.
pub(crate) fn host_name(host: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    bounded(host.to_owned(), MAX_TEXT_BYTES)
}

/// Names the span `{method} {route}` (`{method}` without a route) and
/// records the method: one outside the standard ones (`label` `_OTHER`)
/// names the span `HTTP` and is kept in `http.request.method_original`.
pub(crate) fn name_by_method(
    record: &mut SpanRecord,
    label: &'static str,
    method: &http::Method,
    route: Option<&str>,
) {
    let name = if label == "_OTHER" { "HTTP" } else { label };
    match route {
        Some(route) => record.rename(format!("{name} {route}")),
        None => record.rename(name),
    }
    record.attribute("http.request.method", label);
    if label == "_OTHER" {
        let original = bounded(method.as_str().to_owned(), MAX_TEXT_BYTES);
        record.attribute("http.request.method_original", original);
    }
}

/// Records the answer's status code; a 5xx (and for a client, a 4xx) sets
/// status Error and `error.type` to the code.
pub(crate) fn record_status(record: &mut SpanRecord, status: StatusCode, client: bool) {
    record.attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() || (client && status.is_client_error()) {
        record.attribute("error.type", status.as_u16().to_string());
        record.set_status(Status::error(""));
    }
}

/// Records a request that got no answer: `error.type` is `why`.
pub(crate) fn record_failure(record: &mut SpanRecord, why: &'static str, message: String) {
    record.attribute("error.type", why);
    record.set_status(Status::error(message));
}
