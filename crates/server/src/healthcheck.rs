//! `myolog healthcheck`: asks a server's grpc.health.v1 service for the overall status ("" service);
//! success only when it answers SERVING. Plaintext, or TLS against a server started with
//! `--tls-cert`/`--tls-key`, trusting the CA given (rustls through tonic: no system trust store).

use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig};

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Why a health check did not report SERVING.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error("invalid address {addr}: {reason}")]
    Address { addr: String, reason: String },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("health check call failed: {0}")]
    Call(#[from] tonic::Status),
    #[error("server reports {0}")]
    NotServing(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("reading the TLS CA certificate {path}: {source}")]
    ReadCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{addr} is https: give the CA that signed the server's certificate (--tls-ca)")]
    MissingCa { addr: String },
    #[error("{addr} is plaintext but a TLS CA was given: use https://, or host:port")]
    PlaintextWithCa { addr: String },
}

/// How to check a TLS server: the CA to trust and, when the address is not a name in the server's
/// certificate (a container probing `127.0.0.1`), the name to verify it against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthTls {
    pub ca: Option<PathBuf>,
    pub server_name: Option<String>,
}

impl HealthTls {
    /// The client TLS settings for `url`; `None` for a plaintext check (an `http://` URL and no CA).
    fn client_config(&self, url: &str) -> Result<Option<ClientTlsConfig>, HealthcheckError> {
        let https = url.starts_with("https://");
        if !https && self.ca.is_some() {
            return Err(HealthcheckError::PlaintextWithCa {
                addr: url.to_string(),
            });
        }
        let Some(path) = &self.ca else {
            return if https {
                Err(HealthcheckError::MissingCa {
                    addr: url.to_string(),
                })
            } else {
                Ok(None)
            };
        };
        let pem = std::fs::read(path).map_err(|source| HealthcheckError::ReadCa {
            path: path.clone(),
            source,
        })?;
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        Ok(Some(config))
    }
}

/// Accepts `http://host:port`, `https://...` or a bare `host:port` (read as `http://`).
pub fn endpoint_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// Connects to `addr` (over TLS when `tls` names a CA, or the URL is `https://`, which then needs
/// one; a bare `host:port` with a CA is read as `https://`) and checks the overall health status.
pub async fn check(addr: &str, tls: &HealthTls, timeout: Duration) -> Result<(), HealthcheckError> {
    let url = match (addr.contains("://"), &tls.ca) {
        (false, Some(_)) => format!("https://{addr}"),
        _ => endpoint_url(addr),
    };
    let tls_config = tls.client_config(&url)?;
    let call = async {
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone()).map_err(|e| {
            HealthcheckError::Address {
                addr: url.clone(),
                reason: e.to_string(),
            }
        })?;
        if let Some(config) = tls_config {
            endpoint = endpoint
                .tls_config(config)
                .map_err(|source| HealthcheckError::Connect {
                    addr: url.clone(),
                    source,
                })?;
        }
        let channel = endpoint
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(|source| HealthcheckError::Connect {
                addr: url.clone(),
                source,
            })?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?
            .into_inner();
        match ServingStatus::try_from(response.status) {
            Ok(ServingStatus::Serving) => Ok(()),
            Ok(other) => Err(HealthcheckError::NotServing(
                other.as_str_name().to_string(),
            )),
            Err(_) => Err(HealthcheckError::NotServing(format!(
                "unknown status {}",
                response.status
            ))),
        }
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| HealthcheckError::Timeout(timeout))?
}
