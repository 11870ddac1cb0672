//! Sending an encoded OTLP request: over gRPC (tonic, the collector's
//! `TraceService/Export` or `MetricsService/Export`) or HTTP with a
//! protobuf body (`POST /v1/traces`, `/v1/metrics`), with TLS, headers,
//! compression and a timeout. Requests arrive encoded (spans are encoded
//! straight from their records), so gRPC sends their bytes as they are:
//! the request goes to tonic's channel as an HTTP/2 request whose body is
//! the 5-byte gRPC message prefix and then the request's own buffer, not
//! copied into a codec's.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, TE};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use opentelemetry_http::HttpClient;
use prost::Message;
use tonic::transport::{Channel, Endpoint};
use tower_service::Service;

use super::settings::percent_decode_bytes;
#[cfg(feature = "tls")]
use super::tls;
use super::{OtlpCompression, OtlpProtocol, Settings, Signal};

/// Who sends the requests (collectors and vendors log it).
const USER_AGENT: &str = concat!("telemark/", env!("CARGO_PKG_VERSION"));

/// Why a transport could not be built.
pub(crate) type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// Where requests go, and how. Shared by concurrent exports.
pub(crate) enum Transport {
    Grpc {
        channel: Channel,
        /// The method's path (the channel adds the endpoint's origin).
        path: http::Uri,
        /// The user's headers, then gRPC's own.
        headers: http::HeaderMap,
        gzip: bool,
    },
    Http {
        client: Box<dyn HttpClient>,
        endpoint: http::Uri,
        headers: http::HeaderMap,
        gzip: bool,
    },
}

impl Transport {
    /// The transport `settings` describe for `signal`. Called inside a
    /// tokio runtime (the gRPC channel connects lazily, on the first
    /// request).
    pub(crate) fn new(settings: &Settings, signal: Signal) -> Result<Transport, BuildError> {
        let mut headers = http::HeaderMap::new();
        for (name, value) in &settings.headers {
            // The body's length is the exporter's to say; gRPC's own
            // headers are set below.
            let reserved = ["content-length", "grpc-status", "grpc-message"];
            if reserved.contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes())?,
                http::HeaderValue::from_str(value)?,
            );
        }
        let gzip = settings.compression == OtlpCompression::Gzip;
        match settings.protocol {
            OtlpProtocol::Grpc => {
                let endpoint = Endpoint::from_shared(settings.endpoint.clone())?
                    .timeout(settings.timeout)
                    .connect_timeout(settings.timeout)
                    .user_agent(USER_AGENT)?;
                #[cfg(feature = "tls")]
                let endpoint = if settings.uses_tls() {
                    endpoint.tls_config(tls::tonic_config(settings)?)?
                } else {
                    endpoint
                };
                let path = match signal {
                    Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                    Signal::Metrics => {
                        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
                    }
                };
                headers.insert(TE, HeaderValue::from_static("trailers"));
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                headers.insert("grpc-timeout", grpc_timeout(settings.timeout));
                if gzip {
                    headers.insert("grpc-encoding", HeaderValue::from_static("gzip"));
                }
                Ok(Transport::Grpc {
                    channel: endpoint.connect_lazy(),
                    path: http::Uri::from_static(path),
                    headers,
                    gzip,
                })
            }
            OtlpProtocol::HttpProtobuf => {
                #[cfg(feature = "tls")]
                let connector = tls::https_connector(settings)?;
                #[cfg(not(feature = "tls"))]
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                let client =
                    opentelemetry_http::hyper::HyperClient::new(connector, settings.timeout, None);
                Ok(Transport::Http {
                    client: Box::new(client),
                    endpoint: settings.endpoint.parse()?,
                    headers,
                    gzip,
                })
            }
        }
    }

    /// Sends an encoded request. `Ok` holds how many items (spans, data
    /// points) the collector said it rejected; the error says why the
    /// request was not accepted.
    pub(crate) async fn send(&self, request: Bytes) -> Result<u64, String> {
        match self {
            Transport::Grpc {
                channel,
                path,
                headers,
                gzip,
            } => {
                let message = if *gzip { gzipped(&request)? } else { request };
                let mut call =
                    http::Request::new(tonic::body::Body::new(GrpcMessage::new(message, *gzip)?));
                *call.method_mut() = http::Method::POST;
                *call.uri_mut() = path.clone();
                *call.version_mut() = http::Version::HTTP_2;
                *call.headers_mut() = headers.clone();
                let mut channel = channel.clone();
                std::future::poll_fn(|context| channel.poll_ready(context))
                    .await
                    .map_err(|error| format!("gRPC channel: {}", error_chain(&error)))?;
                let response = channel
                    .call(call)
                    .await
                    .map_err(|error| format!("gRPC: {}", error_chain(&error)))?;
                grpc_answer(response).await
            }
            Transport::Http {
                client,
                endpoint,
                headers,
                gzip,
            } => {
                let body = if *gzip { gzipped(&request)? } else { request };
                let mut builder = http::Request::post(endpoint.clone())
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .header(http::header::USER_AGENT, USER_AGENT);
                if *gzip {
                    builder = builder.header(http::header::CONTENT_ENCODING, "gzip");
                }
                let mut call = builder.body(body).map_err(|error| error.to_string())?;
                call.headers_mut()
                    .extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
                let response = client
                    .send_bytes(call)
                    .await
                    .map_err(|error| format!("HTTP: {error}"))?;
                if !response.status().is_success() {
                    return Err(format!("HTTP {}", response.status()));
                }
                // A body that is not a response message says nothing of
                // rejected items: the request was taken.
                Ok(ExportResponse::decode(response.into_body())
                    .map_or(0, |answer| answer.rejected()))
            }
        }
    }
}

/// What a collector answers to an export, of spans or of metrics alike
/// (`Export{Trace,Metrics}ServiceResponse`: only the partial success).
#[derive(Clone, PartialEq, prost::Message)]
struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PartialSuccess {
    /// `rejected_spans`, `rejected_data_points`.
    #[prost(int64, tag = "1")]
    rejected: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

impl ExportResponse {
    fn rejected(&self) -> u64 {
        self.partial_success
            .as_ref()
            .map_or(0, |partial| u64::try_from(partial.rejected).unwrap_or(0))
    }
}

/// `bytes` gzipped.
fn gzipped(bytes: &[u8]) -> Result<Bytes, String> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .map_err(|error| format!("gzip: {error}"))
}

/// An error and its sources, `: `-separated (tonic's and hyper's errors
/// say what went wrong in their sources).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The `grpc-timeout` header for `timeout`: at most 8 digits, in
/// milliseconds (rounded up) or, beyond that, seconds.
fn grpc_timeout(timeout: Duration) -> HeaderValue {
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    let text = if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", timeout.as_secs().min(99_999_999))
    };
    HeaderValue::try_from(text).expect("digits and a unit are a valid header value")
}

/// A unary gRPC request's body: the message's 5-byte prefix (compressed
/// or not, and its length), then the message, each as one data frame.
struct GrpcMessage {
    prefix: Option<Bytes>,
    message: Option<Bytes>,
}

impl GrpcMessage {
    fn new(message: Bytes, compressed: bool) -> Result<Self, String> {
        let length = u32::try_from(message.len()).map_err(|_| {
            format!(
                "a request of {} bytes is over gRPC's 4 GiB message limit",
                message.len()
            )
        })?;
        let mut prefix = [0u8; 5];
        prefix[0] = u8::from(compressed);
        prefix[1..].copy_from_slice(&length.to_be_bytes());
        Ok(GrpcMessage {
            prefix: Some(Bytes::copy_from_slice(&prefix)),
            message: Some(message),
        })
    }
}

impl http_body::Body for GrpcMessage {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let next = this.prefix.take().or_else(|| this.message.take());
        Poll::Ready(next.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.message.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let length = |part: &Option<Bytes>| part.as_ref().map_or(0, |bytes| bytes.len() as u64);
        SizeHint::with_exact(length(&self.prefix) + length(&self.message))
    }
}

/// The most of a collector's answer read (an export's answer is a few
/// bytes: the count of rejected items and why).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What a collector's gRPC answer says: its status (from the headers of a
/// trailers-only answer, the HTTP status of an answer that is not gRPC's,
/// or the trailers) and, when OK, how many items it rejected. An answer
/// whose message is missing, cut short or cannot be decoded says nothing
/// of rejected items: the request was taken.
async fn grpc_answer(response: http::Response<tonic::body::Body>) -> Result<u64, String> {
    if response.headers().contains_key("grpc-status") {
        return grpc_status(response.headers()).map(|()| 0);
    }
    let status = response.status();
    if status != http::StatusCode::OK {
        return Err(format!(
            "gRPC {:?}: HTTP {status}",
            code_of_http_status(status)
        ));
    }
    let gzipped = response
        .headers()
        .get("grpc-encoding")
        .is_some_and(|encoding| encoding == "gzip");
    let answer = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                "gRPC answer over 64 KiB; its status was not read".to_owned()
            } else {
                format!("gRPC answer: {}", error_chain(&*error))
            }
        })?;
    match answer.trailers() {
        Some(trailers) if trailers.contains_key("grpc-status") => grpc_status(trailers)?,
        _ => return Err("gRPC answer without a grpc-status".to_owned()),
    }
    Ok(rejected_in(&answer.to_bytes(), gzipped))
}

/// The rejected items an export's answer message counts: the first
/// length-prefixed message of the answer's body, gzipped if its flag says
/// so and the answer's `grpc-encoding` is gzip.
fn rejected_in(body: &[u8], gzipped: bool) -> u64 {
    let Some(([flag, length @ ..], rest)) = body.split_first_chunk::<5>() else {
        return 0;
    };
    let Some(message) = rest.get(..u32::from_be_bytes(*length) as usize) else {
        return 0;
    };
    let plain;
    let message = match flag {
        0 => message,
        1 if gzipped => {
            let mut unzipped = Vec::new();
            let read = flate2::read::GzDecoder::new(message)
                .take(MAX_ANSWER_BYTES as u64)
                .read_to_end(&mut unzipped);
            if read.is_err() {
                return 0;
            }
            plain = unzipped;
            &plain
        }
        _ => return 0,
    };
    ExportResponse::decode(message).map_or(0, |answer| answer.rejected())
}

/// The gRPC status an HTTP status that is not 200 stands for (gRPC's
/// "HTTP to gRPC status code mapping").
fn code_of_http_status(status: http::StatusCode) -> tonic::Code {
    match status.as_u16() {
        400 => tonic::Code::Internal,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        404 => tonic::Code::Unimplemented,
        429 | 502 | 503 | 504 => tonic::Code::Unavailable,
        _ => tonic::Code::Unknown,
    }
}

/// `Ok` for a `grpc-status` of 0; else the status's name and the
/// percent-decoded `grpc-message`.
fn grpc_status(headers: &http::HeaderMap) -> Result<(), String> {
    let code = headers
        .get("grpc-status")
        .map_or(tonic::Code::Unknown, |value| {
            tonic::Code::from_bytes(value.as_bytes())
        });
    if code == tonic::Code::Ok {
        return Ok(());
    }
    let message = headers
        .get("grpc-message")
        .map(|value| {
            // An escape that is not two hex digits is kept as it is; bytes
            // that are not UTF-8 are replaced.
            String::from_utf8_lossy(&percent_decode_bytes(value.as_bytes()).0).into_owned()
        })
        .unwrap_or_default();
    if message.is_empty() {
        return Err(format!("gRPC {code:?}"));
    }
    Err(format!("gRPC {code:?}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body;

    #[test]
    fn grpc_statuses_read_as_the_collector_sent_them() {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("0"));
        assert_eq!(grpc_status(&headers), Ok(()));
        headers.insert("grpc-status", HeaderValue::from_static("8"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static("too%20many%20spans%3A%20100%25%zz%F0%9F%92%A5"),
        );
        assert_eq!(
            grpc_status(&headers),
            Err("gRPC ResourceExhausted: too many spans: 100%%zz\u{1f4a5}".to_owned())
        );
        headers.insert("grpc-status", HeaderValue::from_static("banana"));
        headers.remove("grpc-message");
        assert_eq!(grpc_status(&headers), Err("gRPC Unknown".to_owned()));
    }

    #[test]
    fn timeouts_fit_grpcs_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_secs(10)), "10000m");
        assert_eq!(grpc_timeout(Duration::from_secs(100_000)), "100000S");
        assert_eq!(grpc_timeout(Duration::MAX), "99999999S");
        assert_eq!(
            grpc_timeout(Duration::from_micros(1)),
            "1m",
            "never a past deadline"
        );
        assert_eq!(grpc_timeout(Duration::from_micros(2_500)), "3m");
    }

    /// A length-prefixed answer message rejecting `rejected` items.
    fn answer_message(rejected: i64, gzip: bool) -> Vec<u8> {
        let mut message = ExportResponse {
            partial_success: Some(PartialSuccess {
                rejected,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec();
        if gzip {
            message = gzipped(&message).unwrap().to_vec();
        }
        let mut framed = vec![u8::from(gzip)];
        framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
        framed.extend_from_slice(&message);
        framed
    }

    /// What `grpc_answer` makes of an answer with this HTTP status,
    /// headers, body and trailers.
    fn answer(
        status: u16,
        headers: &[(&'static str, &'static str)],
        body: Vec<u8>,
        trailers: &[(&'static str, &'static str)],
    ) -> Result<u64, String> {
        let mut trailer_map = http::HeaderMap::new();
        for (name, value) in trailers {
            trailer_map.insert(*name, HeaderValue::from_static(value));
        }
        let with_trailers = !trailers.is_empty();
        let body = http_body_util::Full::new(Bytes::from(body)).with_trailers(async move {
            with_trailers.then_some(Ok::<_, Infallible>(trailer_map))
        });
        let mut response = http::Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        let response = response.body(tonic::body::Body::new(body)).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(grpc_answer(response))
    }

    #[test]
    fn collectors_answers_read_as_the_grpc_protocol_says() {
        let ok = [("grpc-status", "0")];
        // A partial success, plain or gzipped as the request was.
        assert_eq!(answer(200, &[], answer_message(3, false), &ok), Ok(3));
        let gzip = [("grpc-encoding", "gzip")];
        assert_eq!(answer(200, &gzip, answer_message(2, true), &ok), Ok(2));
        // A compressed message with no encoding said, no message, a message
        // cut short: nothing rejected.
        assert_eq!(answer(200, &[], answer_message(2, true), &ok), Ok(0));
        assert_eq!(answer(200, &[], Vec::new(), &ok), Ok(0));
        let mut cut = answer_message(4, false);
        cut.truncate(9);
        assert_eq!(answer(200, &[], cut, &ok), Ok(0));
        // Statuses: in the trailers, trailers-only, from HTTP, missing.
        assert_eq!(
            answer(
                200,
                &[],
                answer_message(1, false),
                &[("grpc-status", "13"), ("grpc-message", "boom")]
            ),
            Err("gRPC Internal: boom".to_owned())
        );
        let overloaded = [
            ("grpc-status", "14"),
            ("grpc-message", "collector%20overloaded"),
        ];
        assert_eq!(
            answer(200, &overloaded, Vec::new(), &[]),
            Err("gRPC Unavailable: collector overloaded".to_owned())
        );
        assert_eq!(
            answer(429, &[("grpc-status", "8")], Vec::new(), &[]),
            Err("gRPC ResourceExhausted".to_owned()),
            "a proxy's gRPC status before its HTTP status"
        );
        assert_eq!(
            answer(503, &[], b"<html>".to_vec(), &[]),
            Err("gRPC Unavailable: HTTP 503 Service Unavailable".to_owned())
        );
        assert_eq!(
            answer(200, &[], answer_message(1, false), &[]),
            Err("gRPC answer without a grpc-status".to_owned())
        );
        assert_eq!(
            answer(200, &[], vec![0; MAX_ANSWER_BYTES + 1], &ok),
            Err("gRPC answer over 64 KiB; its status was not read".to_owned())
        );
    }

    #[test]
    fn a_message_goes_out_behind_its_prefix_without_a_copy() {
        let message = Bytes::from(vec![7u8; 300]);
        let mut body = GrpcMessage::new(message.clone(), false).unwrap();
        assert_eq!(body.size_hint().exact(), Some(305));
        let waker = std::task::Waker::noop();
        let mut context = Context::from_waker(waker);
        let mut frame = || match Pin::new(&mut body).poll_frame(&mut context) {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(&frame()[..], &[0, 0, 0, 1, 44]);
        let sent = frame();
        assert_eq!(sent.as_ptr(), message.as_ptr(), "the request's own buffer");
        assert!(body.is_end_stream());
    }
}
