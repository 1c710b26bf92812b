//! The guard in front of every service: a tower service wrapping a generated tonic server. It sees
//! the HTTP/2 request before tonic decodes anything, so it can (1) look the gRPC path up in the
//! permission table, (2) authenticate the caller from the `authorization` metadata, and (3) refuse
//! with UNAUTHENTICATED / PERMISSION_DENIED without the handler ever running. An admitted call
//! carries its [`Principal`] in the request extensions, where handlers find it ([`super::caller`]).
//!
//! A wrapper rather than a tonic `Interceptor`: interceptors do not see the method path, and a
//! per-method table is the point.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::permissions::{self, Grant, Permission};
use super::{Auth, Principal};

/// `inner` behind the authenticator.
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    auth: Arc<Auth>,
}

impl<S> Guarded<S> {
    /// Guards `inner` with `auth`.
    pub fn new(inner: S, auth: Arc<Auth>) -> Self {
        Self { inner, auth }
    }
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

/// Admits or refuses one call by its path and metadata.
pub fn admit(
    auth: &Auth,
    path: &str,
    headers: &http::HeaderMap,
    client_common_name: Option<&str>,
    now_unix_nanos: i64,
) -> Result<Option<Arc<Principal>>, Status> {
    let Some(permission) = permissions::required(path) else {
        return Err(Status::permission_denied(format!(
            "{path} is not in the permission table"
        )));
    };
    if permission == Permission::Public {
        return Ok(None);
    }
    let header = headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let principal = auth.authenticate(header, client_common_name, now_unix_nanos)?;
    if principal.role.grants(permission) == Grant::Denied {
        return Err(Status::permission_denied(format!(
            "{} ({}) may not call {path}: it needs {}",
            principal.name,
            principal.role,
            permission.name()
        )));
    }
    Ok(Some(principal))
}

/// tonic refuses an oversized message with OUT_OF_RANGE; the limit is a resource limit, so the guard
/// answers RESOURCE_EXHAUSTED naming the setting (in headers for unary calls, trailers for streams).
fn remap_too_large(headers: &mut http::HeaderMap, max_message_bytes: usize) {
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11");
    let too_large = headers.get("grpc-message").is_some_and(|v| {
        let text = String::from_utf8_lossy(v.as_bytes());
        text.contains("too large") || text.contains("too%20large")
    });
    if out_of_range && too_large {
        let status = Status::resource_exhausted(format!(
            "message too large: the limit max_message_bytes (--max-message-bytes) is \
             {max_message_bytes} bytes"
        ));
        if status.add_header(headers).is_err() {
            tracing::warn!("cannot rewrite the oversized-message status");
        }
    }
}

/// The response with its body holding `permit` until dropped, and oversized-message statuses
/// remapped.
fn finish(
    response: http::Response<Body>,
    permit: Option<super::limits::Permit>,
    max_message_bytes: usize,
) -> http::Response<Body> {
    use http_body_util::BodyExt;
    let (mut parts, body) = response.into_parts();
    remap_too_large(&mut parts.headers, max_message_bytes);
    let body = body.map_frame(move |mut frame| {
        let _held = &permit;
        if let Some(trailers) = frame.trailers_mut() {
            remap_too_large(trailers, max_message_bytes);
        }
        frame
    });
    http::Response::from_parts(parts, Body::new(body))
}

impl<S> Service<http::Request<Body>> for Guarded<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The client certificate rustls verified against the client CA (TLS with a client CA only).
        let common_name = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs)
            .and_then(|certs| {
                certs
                    .first()
                    .and_then(|c| super::tls::subject_common_name(c.as_ref()))
            });
        let decision = admit(
            &self.auth,
            request.uri().path(),
            request.headers(),
            common_name.as_deref(),
            super::now_unix_nanos(),
        );
        // Limits of the admitted principal: its rate, and a place among its concurrent calls held
        // until the response body is dropped (the local principal is exempt, see `limits`).
        let limits = self.auth.limits();
        let decision = decision.and_then(|principal| match principal {
            Some(p) if p.role != super::Role::Local => {
                let meter = self.auth.meter();
                meter.take_token(&p.name, &limits)?;
                let permit = meter.admit(&p.name, &limits)?;
                Ok((Some(p), Some(permit)))
            }
            other => Ok((other, None)),
        });
        match decision {
            Ok((principal, permit)) => {
                if let Some(principal) = principal {
                    request
                        .extensions_mut()
                        .insert(super::Caller::new(principal, &self.auth));
                }
                let call = self.inner.call(request);
                Box::pin(async move {
                    let response = call.await?;
                    Ok(finish(response, permit, limits.max_message_bytes))
                })
            }
            Err(status) => {
                tracing::info!(path = request.uri().path(), code = ?status.code(), message = status.message(), "call refused");
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}
