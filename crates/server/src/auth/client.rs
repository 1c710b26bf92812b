//! The client side: a tonic interceptor that sends `authorization: Bearer <token>` on every call,
//! for the `myolog` client commands (`demo --addr`, `outcomes`) against a server with a principals
//! file, e.g. `IngestClient::with_interceptor(channel, Bearer::from_env()?)`. The token comes from
//! MYOLOG_TOKEN (an environment variable rather than a flag, so it does not show in `ps`).

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

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
        super::tokens::parse_bearer(header.as_bytes()).map_err(|_| InvalidToken)?;
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
        let token = super::super::tokens::generate().expect("random");
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
