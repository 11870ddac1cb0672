//! Sending an OTLP metrics request: over gRPC (tonic, the collector's
//! `MetricsService/Export`) or HTTP with a protobuf body (`POST
//! /v1/metrics`), with the same TLS, headers, compression and timeout
//! settings as span export.

use std::io::Write;
use std::time::Duration;

use opentelemetry_http::HttpClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};

#[cfg(feature = "tls")]
use crate::trace::otlp::tls;
use crate::trace::otlp::{OtlpCompression, OtlpProtocol, Settings};

/// Why a transport could not be built.
pub(crate) type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// Where requests go, and how.
pub(crate) enum Transport {
    Grpc {
        client: MetricsServiceClient<Channel>,
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
    /// The transport `settings` describe. Called inside the push thread's
    /// runtime (the gRPC channel connects lazily, on the first request).
    pub(crate) fn new(settings: &Settings) -> Result<Transport, BuildError> {
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
                    .connect_timeout(settings.timeout);
                #[cfg(feature = "tls")]
                let endpoint = if settings.uses_tls() {
                    endpoint.tls_config(tls::tonic_config(settings)?)?
                } else {
                    endpoint
                };
                let mut client = MetricsServiceClient::new(endpoint.connect_lazy());
                if gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                Ok(Transport::Grpc {
                    client,
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

    /// Sends `request`; the error says why it was not accepted.
    pub(crate) async fn send(
        &mut self,
        request: ExportMetricsServiceRequest,
    ) -> Result<(), String> {
        match self {
            Transport::Grpc {
                client,
                metadata,
                timeout,
            } => {
                let mut call = tonic::Request::new(request);
                *call.metadata_mut() = metadata.clone();
                call.set_timeout(*timeout);
                let response = client
                    .export(call)
                    .await
                    .map_err(|status| format!("gRPC {:?}: {}", status.code(), status.message()))?;
                rejected(
                    response
                        .into_inner()
                        .partial_success
                        .map(|p| p.rejected_data_points),
                )
            }
            Transport::Http {
                client,
                endpoint,
                headers,
                gzip,
            } => {
                let mut body = request.encode_to_vec();
                if *gzip {
                    let mut encoder =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    encoder
                        .write_all(&body)
                        .and_then(|()| encoder.finish())
                        .map(|compressed| body = compressed)
                        .map_err(|error| format!("gzip: {error}"))?;
                }
                let mut builder = http::Request::post(endpoint.clone())
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf");
                if *gzip {
                    builder = builder.header(http::header::CONTENT_ENCODING, "gzip");
                }
                let mut call = builder
                    .body(bytes::Bytes::from(body))
                    .map_err(|error| error.to_string())?;
                call.headers_mut()
                    .extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
                let response = client
                    .send_bytes(call)
                    .await
                    .map_err(|error| format!("HTTP: {error}"))?;
                if !response.status().is_success() {
                    return Err(format!("HTTP {}", response.status()));
                }
                Ok(())
            }
        }
    }
}

/// A collector that accepted the request but rejected some points.
fn rejected(points: Option<i64>) -> Result<(), String> {
    match points {
        Some(points) if points > 0 => Err(format!("the collector rejected {points} points")),
        _ => Ok(()),
    }
}
