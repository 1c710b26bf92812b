//! The client side of the `myolog` client commands (`healthcheck`, `outcomes`, `demo --addr`,
//! `study register`): one way to reach a server, plaintext or TLS ([`ServerTls`]), and a tonic
//! interceptor that sends `authorization: Bearer <token>` on every call to a server with a principals
//! file, e.g. `IngestClient::with_interceptor(channel, Bearer::from_env()?)`. The token comes from
//! MYOLOG_TOKEN (an environment variable rather than a flag, so it does not show in `ps`).

use std::path::PathBuf;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

/// How a client command reaches a TLS server: the CA that signed the server's certificate and,
/// when the address is not one of the certificate's names (a container probing 127.0.0.1 of a
/// server whose certificate names its service), the name to verify it against. rustls through
/// tonic: there is no system trust store, so TLS needs the CA.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ServerTls {
    /// CA certificate (PEM) that signed the server's TLS certificate: speak TLS (an `https://`
    /// address needs it; a bare `host:port` is then read as `https://`).
    #[arg(long = "tls-ca", env = "MYOLOG_CLIENT_TLS_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Name to verify the server's certificate against, when the address is not one of its names.
    #[arg(
        long = "tls-server-name",
        env = "MYOLOG_CLIENT_TLS_SERVER_NAME",
        value_name = "NAME",
        requires = "ca"
    )]
    pub server_name: Option<String>,
}

/// Why a client command could not reach its server.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid address {addr}: {reason}")]
    Address { addr: String, reason: String },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
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

impl ServerTls {
    /// The URL to dial: `addr` as given when it has a scheme; a bare `host:port` is `https://` with
    /// a CA and `http://` without one.
    pub fn url(&self, addr: &str) -> String {
        match (addr.contains("://"), &self.ca) {
            (true, _) => addr.to_string(),
            (false, Some(_)) => format!("https://{addr}"),
            (false, None) => format!("http://{addr}"),
        }
    }

    /// The endpoint for `addr`, with TLS configured when a CA is given; an `https://` address
    /// without a CA, or a plaintext one with a CA, is refused rather than guessed at.
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, ConnectError> {
        let url = self.url(addr);
        let endpoint =
            Endpoint::from_shared(url.clone()).map_err(|error| ConnectError::Address {
                addr: url.clone(),
                reason: error.to_string(),
            })?;
        let https = url.starts_with("https://");
        let Some(path) = &self.ca else {
            return if https {
                Err(ConnectError::MissingCa { addr: url })
            } else {
                Ok(endpoint)
            };
        };
        if !https {
            return Err(ConnectError::PlaintextWithCa { addr: url });
        }
        let pem = std::fs::read(path).map_err(|source| ConnectError::ReadCa {
            path: path.clone(),
            source,
        })?;
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        endpoint
            .tls_config(config)
            .map_err(|source| ConnectError::Connect { addr: url, source })
    }

    /// Connects to `addr` ([`ServerTls::endpoint`]).
    pub async fn connect(&self, addr: &str) -> Result<Channel, ConnectError> {
        let url = self.url(addr);
        self.endpoint(addr)?
            .connect()
            .await
            .map_err(|source| ConnectError::Connect { addr: url, source })
    }
}

/// The variable client commands read their token from.
pub const TOKEN_ENV: &str = "MYOLOG_TOKEN";

/// A token that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{TOKEN_ENV} is not a Myolog token (myo_ and 64 lowercase hex digits)")]
pub struct InvalidToken;

/// Adds the bearer token, if any, to every request.
#[derive(Debug, Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// A token's interceptor (the token's shape is checked, so a typo fails here, not remotely).
    pub fn new(token: &str) -> Result<Self, InvalidToken> {
        let header = format!("Bearer {}", token.trim());
        myolog_server::auth::tokens::parse_bearer(header.as_bytes()).map_err(|_| InvalidToken)?;
        let value = header.parse().map_err(|_| InvalidToken)?;
        Ok(Self(Some(value)))
    }

    /// The token in MYOLOG_TOKEN, or no token when it is unset or empty (a loopback server
    /// without a principals file needs none).
    pub fn from_env() -> Result<Self, InvalidToken> {
        match std::env::var(TOKEN_ENV) {
            Ok(token) if !token.trim().is_empty() => Self::new(&token),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(Self::default()),
            Err(std::env::VarError::NotUnicode(_)) => Err(InvalidToken),
        }
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_header_only_with_a_token() {
        let token = myolog_server::auth::tokens::generate().expect("random");
        let mut bearer = Bearer::new(&token).expect("valid");
        let request = bearer.call(Request::new(())).expect("passes");
        let header = request.metadata().get("authorization").expect("header");
        assert_eq!(
            header.to_str().ok(),
            Some(format!("Bearer {token}").as_str())
        );
        let request = Bearer::default().call(Request::new(())).expect("passes");
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn refuses_what_is_not_a_token() {
        for bad in ["", "myo_", "hunter2", "myo_\n0", &"a".repeat(68)] {
            assert_eq!(Bearer::new(bad).map(|_| ()), Err(InvalidToken), "{bad:?}");
        }
    }
}
