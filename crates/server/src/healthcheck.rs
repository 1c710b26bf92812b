//! `myolog healthcheck`: asks a server's grpc.health.v1 service for the overall status ("" service);
//! success only when it answers SERVING.

use std::time::Duration;

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
}

/// Accepts `http://host:port`, `https://...` or a bare `host:port` (read as `http://`).
pub fn endpoint_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// Connects to `addr` and checks the overall health status.
pub async fn check(addr: &str, timeout: Duration) -> Result<(), HealthcheckError> {
    let url = endpoint_url(addr);
    let call = async {
        let endpoint = tonic::transport::Endpoint::from_shared(url.clone()).map_err(|e| {
            HealthcheckError::Address {
                addr: url.clone(),
                reason: e.to_string(),
            }
        })?;
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
