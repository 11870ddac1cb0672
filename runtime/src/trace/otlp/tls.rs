//! TLS for OTLP export (the `tls` feature): rustls with the `ring`
//! provider, Mozilla's roots (webpki-roots) plus a private CA if given, and a
//! client identity for mutual TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use super::Settings;
use crate::error::ConfigError;
use crate::trace::error::TraceError;

fn read(path: &Path, setting: &str) -> Result<Vec<u8>, TraceError> {
    std::fs::read(path).map_err(|error| {
        TraceError::Config(ConfigError::new(
            setting.to_owned(),
            path.display().to_string(),
            format!("cannot read it: {error}"),
        ))
    })
}

fn certificates(path: &Path, setting: &str) -> Result<Vec<CertificateDer<'static>>, TraceError> {
    let pem = read(path, setting)?;
    let certificates: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    if certificates.is_empty() {
        return Err(TraceError::Config(ConfigError::new(
            setting.to_owned(),
            path.display().to_string(),
            "expected PEM certificates",
        )));
    }
    Ok(certificates)
}

/// The TLS configuration of the gRPC channel.
pub(crate) fn tonic_config(settings: &Settings) -> Result<ClientTlsConfig, TraceError> {
    let [ca_variable, certificate_variable, key_variable] = &settings.tls_variables;
    // OTLP/gRPC is HTTP/2 whatever ALPN says: TLS terminators that do not
    // negotiate it (socat, some proxies) still work.
    let mut config = ClientTlsConfig::new()
        .with_webpki_roots()
        .assume_http2(true);
    if let Some(ca) = &settings.ca_certificate {
        certificates(ca, ca_variable)?;
        config = config.ca_certificate(Certificate::from_pem(read(ca, ca_variable)?));
    }
    if let Some((certificate, key)) = &settings.client_identity {
        certificates(certificate, certificate_variable)?;
        private_key(key, key_variable)?;
        config = config.identity(Identity::from_pem(
            read(certificate, certificate_variable)?,
            read(key, key_variable)?,
        ));
    }
    Ok(config)
}

fn private_key(path: &Path, setting: &str) -> Result<PrivateKeyDer<'static>, TraceError> {
    let pem = read(path, setting)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        TraceError::Config(ConfigError::new(
            setting.to_owned(),
            path.display().to_string(),
            "expected a PEM private key",
        ))
    })
}

/// The HTTPS (and plain HTTP) connector of the OTLP/HTTP client.
pub(crate) fn https_connector(
    settings: &Settings,
) -> Result<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    TraceError,
> {
    let [ca_variable, certificate_variable, key_variable] = &settings.tls_variables;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &settings.ca_certificate {
        for certificate in certificates(ca, ca_variable)? {
            roots.add(certificate).map_err(|error| {
                TraceError::Config(ConfigError::new(
                    ca_variable.clone(),
                    ca.display().to_string(),
                    format!("not a usable CA certificate: {error}"),
                ))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TraceError::Exporter(Box::new(error)))?
        .with_root_certificates(roots);
    let config = match &settings.client_identity {
        None => builder.with_no_client_auth(),
        Some((certificate, key)) => builder
            .with_client_auth_cert(
                certificates(certificate, certificate_variable)?,
                private_key(key, key_variable)?,
            )
            .map_err(|error| {
                TraceError::Config(ConfigError::new(
                    key_variable.clone(),
                    key.display().to_string(),
                    format!("does not go with the client certificate: {error}"),
                ))
            })?,
    };
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build())
}
