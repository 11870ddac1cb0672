//! Sending an encoded OTLP request: over gRPC (tonic, the collector's
//! `TraceService/Export` or `MetricsService/Export`) or HTTP with a
//! protobuf body (`POST /v1/traces`, `/v1/metrics`), with TLS, headers,
//! compression and a timeout. Requests arrive encoded (spans are encoded
//! straight from their records), so gRPC sends their bytes as they are.

use std::io::Write;
use std::time::Duration;

use bytes::{BufMut, Bytes};
use http::uri::PathAndQuery;
use opentelemetry_http::HttpClient;
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};

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
        client: tonic::client::Grpc<Channel>,
        path: PathAndQuery,
        metadata: MetadataMap,
        timeout: Duration,
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
                let mut client = tonic::client::Grpc::new(endpoint.connect_lazy());
                if gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                let path = match signal {
                    Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                    Signal::Metrics => {
                        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
                    }
                };
                Ok(Transport::Grpc {
                    client,
                    path: PathAndQuery::from_static(path),
                    metadata: MetadataMap::from_headers(headers),
                    timeout: settings.timeout,
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
                client,
                path,
                metadata,
                timeout,
            } => {
                let mut client = client.clone();
                let mut call = tonic::Request::new(request);
                *call.metadata_mut() = metadata.clone();
                call.set_timeout(*timeout);
                let failed = |status: tonic::Status| {
                    format!("gRPC {:?}: {}", status.code(), status.message())
                };
                client
                    .ready()
                    .await
                    .map_err(|error| format!("gRPC channel: {error}"))?;
                let response = client
                    .unary(call, path.clone(), EncodedCodec)
                    .await
                    .map_err(failed)?;
                Ok(response.into_inner().rejected())
            }
            Transport::Http {
                client,
                endpoint,
                headers,
                gzip,
            } => {
                let mut body = request;
                if *gzip {
                    let mut encoder =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    encoder
                        .write_all(&body)
                        .and_then(|()| encoder.finish())
                        .map(|compressed| body = Bytes::from(compressed))
                        .map_err(|error| format!("gzip: {error}"))?;
                }
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

/// A gRPC codec that sends already encoded requests as they are and
/// decodes the collector's answer.
#[derive(Clone, Copy)]
struct EncodedCodec;

impl Codec for EncodedCodec {
    type Encode = Bytes;
    type Decode = ExportResponse;
    type Encoder = EncodedCodec;
    type Decoder = EncodedCodec;

    fn encoder(&mut self) -> Self::Encoder {
        EncodedCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        EncodedCodec
    }
}

impl Encoder for EncodedCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Bytes,
        destination: &mut EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        destination.put_slice(&item);
        Ok(())
    }
}

impl Decoder for EncodedCodec {
    type Item = ExportResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        source: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportResponse>, tonic::Status> {
        ExportResponse::decode(source)
            .map(Some)
            .map_err(|error| tonic::Status::internal(format!("bad export response: {error}")))
    }
}
