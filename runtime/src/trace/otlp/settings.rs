//! OTLP export settings: what the code sets, else the signal-specific
//! environment variable (`OTEL_EXPORTER_OTLP_TRACES_*`), else the generic one
//! (`OTEL_EXPORTER_OTLP_*`), else the default, as the OpenTelemetry SDK
//! environment-variable specification orders them. Every value is checked;
//! a bad one is an error naming its variable (header values are never
//! shown: they often hold credentials).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::ConfigError;
use crate::trace::pipeline::whole_milliseconds;

use super::{Otlp, OtlpCompression, OtlpProtocol};

/// Default export timeout of one OTLP request (the specification's).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The value of the first set variable of `names`, with its name.
pub(super) fn env_first<N: AsRef<str>>(names: [N; 2]) -> Option<(String, String)> {
    names.into_iter().find_map(|name| {
        let name = name.as_ref();
        std::env::var(name)
            .ok()
            .map(|value| (name.to_owned(), value))
    })
}

/// What is exported over OTLP: each signal has its own variables
/// (`OTEL_EXPORTER_OTLP_TRACES_*`, `OTEL_EXPORTER_OTLP_METRICS_*`) before
/// the generic ones, and its own path on an HTTP collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_<suffix>`, then `OTEL_EXPORTER_OTLP_<suffix>`.
    pub(crate) fn variables(self, suffix: &str) -> [String; 2] {
        let signal = match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
        };
        [
            format!("OTEL_EXPORTER_OTLP_{signal}_{suffix}"),
            format!("OTEL_EXPORTER_OTLP_{suffix}"),
        ]
    }

    /// The first set of [`Signal::variables`], with its name.
    pub(crate) fn env(self, suffix: &str) -> Option<(String, String)> {
        env_first(self.variables(suffix))
    }

    /// The path added to the generic endpoint for OTLP/HTTP.
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }
}

/// Everything an OTLP exporter (of spans, or of metrics) is built from,
/// resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    pub protocol: OtlpProtocol,
    /// The full URL the signal is sent to.
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    pub compression: OtlpCompression,
    pub timeout: Duration,
    /// A private CA's certificates (PEM) to trust besides the usual roots
    /// (used with the `tls` feature, which `https://` needs).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub ca_certificate: Option<PathBuf>,
    /// A client certificate chain and key (PEM), for mutual TLS.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// The variables the CA, the client certificate and its key come from
    /// (the signal's own when set, else the generic ones), for errors
    /// about those files.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub tls_variables: [String; 3],
}

impl Settings {
    /// `otlp`'s settings completed from the environment, for spans.
    pub(crate) fn resolve(otlp: &Otlp) -> Result<Settings, ConfigError> {
        Settings::resolve_for(otlp, Signal::Traces)
    }

    /// `otlp`'s settings completed from `signal`'s environment.
    pub(crate) fn resolve_for(otlp: &Otlp, signal: Signal) -> Result<Settings, ConfigError> {
        let protocol = match otlp.protocol {
            Some(protocol) => protocol,
            None => OtlpProtocol::from_env_for(signal)?,
        };
        let endpoint = endpoint(otlp, protocol, signal)?;
        let mut headers = match signal.env("HEADERS") {
            Some((variable, value)) => parse_headers(&variable, &value)?,
            None => Vec::new(),
        };
        for (name, value) in &otlp.headers {
            check_header(name, value)
                .map_err(|reason| ConfigError::new("Otlp::header", name.clone(), reason))?;
            headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.clone()));
        }
        let compression = match otlp.compression {
            Some(compression) => compression,
            None => match signal.env("COMPRESSION") {
                None => OtlpCompression::None,
                Some((variable, value)) => match value.trim() {
                    "" | "none" => OtlpCompression::None,
                    "gzip" => OtlpCompression::Gzip,
                    _ => return Err(ConfigError::new(variable, value, "expected gzip or none")),
                },
            },
        };
        let timeout = match otlp.timeout {
            Some(timeout) if timeout.is_zero() => {
                return Err(ConfigError::new(
                    "Otlp::timeout",
                    "0s",
                    "the timeout must be longer than zero",
                ))
            }
            Some(timeout) => timeout,
            None => match signal.env("TIMEOUT") {
                Some((variable, value)) => whole_milliseconds(&variable, &value)?,
                None => DEFAULT_TIMEOUT,
            },
        };
        let ca_certificate = match &otlp.ca_certificate {
            Some(path) => Some(path.clone()),
            None => signal
                .env("CERTIFICATE")
                .map(|(_, path)| PathBuf::from(path)),
        };
        let client_identity = match &otlp.client_identity {
            Some(identity) => Some(identity.clone()),
            None => match (signal.env("CLIENT_CERTIFICATE"), signal.env("CLIENT_KEY")) {
                (None, None) => None,
                (Some((_, certificate)), Some((_, key))) => {
                    Some((PathBuf::from(certificate), PathBuf::from(key)))
                }
                (Some((variable, value)), None) | (None, Some((variable, value))) => {
                    return Err(ConfigError::new(
                        variable,
                        value,
                        "mutual TLS needs both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and \
                         OTEL_EXPORTER_OTLP_CLIENT_KEY",
                    ))
                }
            },
        };
        let variable = |suffix: &str| {
            let [own, generic] = signal.variables(suffix);
            if std::env::var_os(&own).is_some() {
                own
            } else {
                generic
            }
        };
        Ok(Settings {
            protocol,
            endpoint,
            headers,
            compression,
            timeout,
            ca_certificate,
            client_identity,
            tls_variables: [
                variable("CERTIFICATE"),
                variable("CLIENT_CERTIFICATE"),
                variable("CLIENT_KEY"),
            ],
        })
    }

    /// Whether the endpoint is reached over TLS.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn uses_tls(&self) -> bool {
        self.endpoint.starts_with("https://")
    }
}

/// The URL the signal goes to: the code's, else
/// `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT` as it is, else
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/traces` or `/v1/metrics` added
/// for HTTP), else the protocol's default on localhost.
fn endpoint(otlp: &Otlp, protocol: OtlpProtocol, signal: Signal) -> Result<String, ConfigError> {
    let (setting, value, signal_path) = match (&otlp.endpoint, protocol) {
        (Some(endpoint), _) => ("Otlp endpoint".to_owned(), endpoint.clone(), false),
        (None, _) => match signal.env("ENDPOINT") {
            Some((variable, value)) => {
                let generic = variable == "OTEL_EXPORTER_OTLP_ENDPOINT";
                (variable, value, generic)
            }
            None => match protocol {
                OtlpProtocol::Grpc => (
                    "default".to_owned(),
                    "http://localhost:4317".to_owned(),
                    false,
                ),
                OtlpProtocol::HttpProtobuf => (
                    "default".to_owned(),
                    "http://localhost:4318".to_owned(),
                    true,
                ),
            },
        },
    };
    let trimmed = value.trim();
    let uri: http::Uri = trimmed.parse().map_err(|_| {
        ConfigError::new(
            setting.clone(),
            value.clone(),
            "expected a URL such as https://host:4318",
        )
    })?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => {}
        _ => {
            return Err(ConfigError::new(
                setting.clone(),
                value.clone(),
                "expected an http:// or https:// URL with a host",
            ))
        }
    }
    if uri.scheme_str() == Some("https") && !cfg!(feature = "tls") {
        return Err(ConfigError::new(
            setting.clone(),
            value.clone(),
            "https:// needs telemark's `tls` feature",
        ));
    }
    let mut endpoint = trimmed.to_owned();
    if signal_path && protocol == OtlpProtocol::HttpProtobuf {
        endpoint = format!("{}{}", endpoint.trim_end_matches('/'), signal.path());
    }
    Ok(endpoint)
}

/// Why a header cannot be sent, if it cannot.
fn check_header(name: &str, value: &str) -> Result<(), &'static str> {
    http::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| "not a valid header name")?;
    http::header::HeaderValue::from_str(value).map_err(|_| "not a valid header value")?;
    Ok(())
}

/// `key=value,key=value`, values percent-decoded (W3C Baggage syntax, as
/// `OTEL_EXPORTER_OTLP_HEADERS` is written). The value is never shown in
/// an error.
fn parse_headers(variable: &str, list: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let hidden = "(not shown: headers often hold credentials)";
    let mut headers = Vec::new();
    for (index, entry) in list.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let problem = |reason: String| ConfigError::new(variable.to_owned(), hidden, reason);
        let Some((name, value)) = entry.split_once('=') else {
            return Err(problem(format!("entry {} is not key=value", index + 1)));
        };
        let name = name.trim().to_owned();
        let value = percent_decode(value.trim()).ok_or_else(|| {
            problem(format!(
                "entry {} `{name}`: bad percent-encoding",
                index + 1
            ))
        })?;
        check_header(&name, &value)
            .map_err(|reason| problem(format!("entry {} `{name}`: {reason}", index + 1)))?;
        headers.push((name, value));
    }
    Ok(headers)
}

/// `%XX` decoded (as UTF-8), or `None` if malformed.
fn percent_decode(text: &str) -> Option<String> {
    let (decoded, well_formed) = percent_decode_bytes(text.as_bytes());
    well_formed
        .then(|| String::from_utf8(decoded).ok())
        .flatten()
}

/// `%XX`-escaped bytes decoded. An escape that is not two hex digits is
/// kept as it is, and the answer's flag says whether every one was well
/// formed.
pub(super) fn percent_decode_bytes(text: &[u8]) -> (Vec<u8>, bool) {
    let hex = |byte: u8| char::from(byte).to_digit(16);
    let mut decoded = Vec::with_capacity(text.len());
    let mut well_formed = true;
    let mut at = 0;
    while at < text.len() {
        if text[at] == b'%' {
            let escaped = match text.get(at + 1..at + 3) {
                Some(&[high, low]) => hex(high).zip(hex(low)),
                _ => None,
            };
            if let Some((high, low)) = escaped {
                decoded.push((high * 16 + low) as u8);
                at += 3;
                continue;
            }
            well_formed = false;
        }
        decoded.push(text[at]);
        at += 1;
    }
    (decoded, well_formed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_are_parsed_and_percent_decoded() {
        let headers = parse_headers("H", " api-key = s3cr%3Dt , x-team=pay%20ments,, ").unwrap();
        assert_eq!(
            headers,
            [
                ("api-key".to_owned(), "s3cr=t".to_owned()),
                ("x-team".to_owned(), "pay ments".to_owned())
            ]
        );
        for bad in ["novalue", "bad name=1", "k=%zz", "k=%4", "k=secret\u{1}x"] {
            let error = parse_headers("H", bad).unwrap_err();
            assert_eq!(error.setting(), "H");
            let text = error.to_string();
            assert!(
                !text.contains("secret") && !text.contains("novalue"),
                "{text}"
            );
        }
    }

    #[test]
    fn timeouts_must_be_positive_whole_milliseconds() {
        assert_eq!(
            whole_milliseconds("T", "1500"),
            Ok(Duration::from_millis(1500))
        );
        for bad in ["0", "-1", "1.5", "soon", ""] {
            assert!(whole_milliseconds("T", bad).is_err(), "{bad}");
        }
    }
}
