//! `myolog healthcheck`: asks a server's grpc.health.v1 service for the overall status ("" service);
//! success only when it answers SERVING. Plaintext, or TLS against a server started with
//! `--tls-cert`/`--tls-key` ([`ServerTls`]: the CA given, no system trust store).

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::client::{ConnectError, ServerTls};

/// Why a health check did not report SERVING.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("health check call failed: {0}")]
    Call(#[from] tonic::Status),
    #[error("server reports {0}")]
    NotServing(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Connects to `addr` (over TLS when `tls` names a CA; see [`ServerTls::endpoint`]) and checks the
/// overall health status.
pub async fn check(addr: &str, tls: &ServerTls, timeout: Duration) -> Result<(), HealthcheckError> {
    let url = tls.url(addr);
    let endpoint = tls.endpoint(addr)?;
    let call = async {
        let channel = endpoint
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(|source| ConnectError::Connect {
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
