//! Who may call what: authenticated principals, scoped roles and the one permission table.
//!
//! - [`tokens`]: 256-bit bearer tokens, their SHA-256 hashes and the constant-time comparison.
//! - [`principals`]: the TOML principals file (hashes only), expiry, revocation, reload on SIGHUP.
//! - [`permissions`]: roles, the RPC -> permission table and the scope checks on studies.
//! - [`interceptor`]: the tower wrapper that authenticates every call before a service sees it.
//! - [`limits`]: message size, events per batch, concurrent calls and rate per principal.
//! - [`tls`]: server certificate, optional client certificates, the subject common name.
//! - [`client`]: the bearer-token interceptor for client commands (MYOLOG_TOKEN).
//! - [`commands`]: `myolog token issue` and the `serve` flags.
//!
//! Deny by default: a call is served only if its RPC is in the table and the caller's role grants
//! that RPC's permission; study-scoped calls are then checked against the caller's studies inside
//! the handler, before anything is read or stored. The caller's identity comes from the transport
//! (bearer token or, later, the client certificate) and never from the payload; it becomes the
//! recorded-by of every event the call appends.

pub mod interceptor;
pub mod limits;
pub mod permissions;
pub mod principals;
pub mod tls;
pub mod tokens;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tonic::Status;

pub use permissions::{Grant, Permission, Role};
pub use principals::{Principal, PrincipalsError, PrincipalsFile};

/// Why a call was not authenticated (answered with UNAUTHENTICATED; the message names the reason
/// but never echoes the presented secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token: send `authorization: Bearer <token>`")]
    Missing,
    #[error("malformed authorization header: {0}")]
    Malformed(&'static str),
    #[error("unknown token")]
    Unknown,
    #[error("token of principal {0} has expired")]
    Expired(String),
    #[error("token of principal {0} has been revoked")]
    Revoked(String),
    #[error("client certificate {0:?} is not a [[client]] of the principals file")]
    UnknownCertificate(String),
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        Status::unauthenticated(error.to_string())
    }
}

/// Why the server refuses to start with the given security settings.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(
        "refusing to listen on {addr} without a principals file: every caller would act as the local \
         principal; pass --principals (MYOLOG_PRINCIPALS) or listen on a loopback address"
    )]
    NonLoopbackWithoutPrincipals { addr: SocketAddr },
    #[error(
        "refusing plaintext gRPC on {addr}: tokens would cross the network unencrypted; configure TLS \
         or pass --allow-plaintext (MYOLOG_ALLOW_PLAINTEXT) if a trusted proxy terminates TLS"
    )]
    PlaintextOffLoopback { addr: SocketAddr },
    #[error(transparent)]
    Principals(#[from] PrincipalsError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// How callers are identified.
#[derive(Debug)]
enum Mode {
    /// No principals file: loopback only, every call acts as this one principal.
    Local(Arc<Principal>),
    /// Bearer tokens checked against the principals file; the table is swapped whole on reload
    /// (readers clone the `Arc` and never hold the lock across an await), so open streams keep the
    /// principal they were admitted with and new calls see the new file.
    Tokens {
        path: PathBuf,
        table: RwLock<Arc<PrincipalsFile>>,
    },
}

/// The authenticator shared by every call.
#[derive(Debug)]
pub struct Auth {
    mode: Mode,
    /// Set once before serving; none: plaintext.
    tls: std::sync::OnceLock<tonic::transport::ServerTlsConfig>,
    /// Set once before serving; none: the defaults.
    limits: std::sync::OnceLock<limits::Limits>,
    meter: Arc<limits::Meter>,
}

impl Auth {
    /// Local mode: every call is `name` with every permission (the loopback-only default, used by
    /// `myolog demo` and the tests that do not exercise authentication).
    pub fn local(name: &str) -> Arc<Self> {
        Arc::new(Self {
            mode: Mode::Local(Arc::new(Principal::local(name))),
            tls: std::sync::OnceLock::new(),
            limits: std::sync::OnceLock::new(),
            meter: Arc::default(),
        })
    }

    /// Token mode over the principals file at `path` (read now; a broken file is a start error).
    pub fn from_file(path: &Path) -> Result<Arc<Self>, PrincipalsError> {
        let file = PrincipalsFile::load(path)?;
        Ok(Arc::new(Self {
            mode: Mode::Tokens {
                path: path.to_path_buf(),
                table: RwLock::new(Arc::new(file)),
            },
            tls: std::sync::OnceLock::new(),
            limits: std::sync::OnceLock::new(),
            meter: Arc::default(),
        }))
    }

    /// Serves with TLS (ignored if TLS was already set: the first configuration stays).
    pub fn use_tls(&self, config: tonic::transport::ServerTlsConfig) {
        let _ = self.tls.set(config);
    }

    /// Uses `limits` (ignored if limits were already set).
    pub fn use_limits(&self, limits: limits::Limits) {
        let _ = self.limits.set(limits);
    }

    /// The limits in force.
    pub fn limits(&self) -> limits::Limits {
        self.limits.get().copied().unwrap_or_default()
    }

    /// The per-principal counters.
    pub fn meter(&self) -> &Arc<limits::Meter> {
        &self.meter
    }

    /// The server TLS configuration, if any.
    pub fn tls(&self) -> Option<tonic::transport::ServerTlsConfig> {
        self.tls.get().cloned()
    }

    /// Whether calls are authenticated by tokens (false: the local principal).
    pub fn is_local(&self) -> bool {
        matches!(self.mode, Mode::Local(_))
    }

    /// Re-reads the principals file. On error the previous table stays in force (a typo must not
    /// lock everyone out or let everyone in) and the error is returned for the log.
    pub fn reload(&self) -> Result<usize, PrincipalsError> {
        let Mode::Tokens { path, table } = &self.mode else {
            return Ok(0);
        };
        let file = PrincipalsFile::load(path)?;
        let count = file.len();
        let mut guard = table.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(file);
        Ok(count)
    }

    /// Identifies the caller at `now_unix_nanos` from the `authorization` metadata value if there
    /// is one, else from the verified client certificate's common name if there is one.
    pub fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        client_common_name: Option<&str>,
        now_unix_nanos: i64,
    ) -> Result<Arc<Principal>, AuthError> {
        match &self.mode {
            Mode::Local(principal) => Ok(Arc::clone(principal)),
            Mode::Tokens { table, .. } => {
                let table = Arc::clone(&table.read().unwrap_or_else(|p| p.into_inner()));
                match (authorization, client_common_name) {
                    (Some(header), _) => {
                        let token = tokens::parse_bearer(header)?;
                        table.authenticate(&tokens::hash(token), now_unix_nanos)
                    }
                    (None, Some(name)) => table.authenticate_client(name),
                    (None, None) => Err(AuthError::Missing),
                }
            }
        }
    }
}

/// Checks the server's security settings before anything is bound: without a principals file only
/// loopback; plaintext only on loopback or when explicitly allowed.
pub fn check_listen(
    addr: SocketAddr,
    has_principals: bool,
    has_tls: bool,
    allow_plaintext: bool,
) -> Result<(), SecurityError> {
    let loopback = addr.ip().is_loopback();
    if !loopback && !has_principals {
        return Err(SecurityError::NonLoopbackWithoutPrincipals { addr });
    }
    if !loopback && !has_tls && !allow_plaintext {
        return Err(SecurityError::PlaintextOffLoopback { addr });
    }
    Ok(())
}

/// An admitted call's caller: the principal, and the limits and counters its batches are checked
/// against. Handlers use it as the principal ([`std::ops::Deref`]).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Arc<Principal>,
    limits: limits::Limits,
    meter: Arc<limits::Meter>,
}

impl Caller {
    /// The caller of a call admitted under `auth`.
    pub fn new(principal: Arc<Principal>, auth: &Auth) -> Self {
        Self {
            principal,
            limits: auth.limits(),
            meter: Arc::clone(&auth.meter),
        }
    }

    /// May the caller append this batch now? The batch size (INVALID_ARGUMENT), the scope
    /// (PERMISSION_DENIED) and, except for the local principal, the rate (RESOURCE_EXHAUSTED).
    pub fn check_batch(&self, events: &[myolog_proto::v1::Event]) -> Result<(), Status> {
        self.limits.check_batch_size(events.len())?;
        self.principal.check_batch(events)?;
        if self.principal.role != Role::Local {
            self.meter.take_token(&self.principal.name, &self.limits)?;
        }
        Ok(())
    }
}

impl std::ops::Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

/// The caller admitted by [`interceptor::Guarded`] (deny when absent: a service reached without
/// the wrapper serves nobody).
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated principal"))
}

/// Now, as Unix nanoseconds (saturating: a clock before 1970 counts as 1970).
pub fn now_unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Reloads `auth` on every SIGHUP until the process ends; open calls are not touched.
pub fn spawn_reload_on_sighup(auth: Arc<Auth>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => hangup,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP: principals file not reloadable");
                return;
            }
        };
        while hangup.recv().await.is_some() {
            if auth.is_local() {
                // Handled anyway: SIGHUP's default action would end the server.
                tracing::info!("SIGHUP ignored: no principals file to reload");
                continue;
            }
            match auth.reload() {
                Ok(tokens) => tracing::info!(tokens, "SIGHUP: principals file reloaded"),
                Err(error) => {
                    tracing::error!(%error, "SIGHUP: principals file NOT reloaded; previous kept")
                }
            }
        }
    });
    #[cfg(not(unix))]
    drop(auth);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn listen_rules() {
        // (address, principals file, TLS, --allow-plaintext, starts)
        let cases = [
            ("127.0.0.1:50051", false, false, false, true),
            ("[::1]:50051", false, false, false, true),
            ("0.0.0.0:50051", false, false, false, false),
            ("0.0.0.0:50051", false, true, true, false),
            ("0.0.0.0:50051", true, false, false, false),
            ("0.0.0.0:50051", true, false, true, true),
            ("0.0.0.0:50051", true, true, false, true),
            ("10.1.2.3:50051", true, true, false, true),
        ];
        for (text, principals, tls, plaintext, starts) in cases {
            let result = check_listen(addr(text), principals, tls, plaintext);
            assert_eq!(
                result.is_ok(),
                starts,
                "{text} principals={principals} tls={tls} plaintext={plaintext}: {result:?}"
            );
        }
    }

    #[test]
    fn local_mode_ignores_tokens() {
        let auth = Auth::local("edc-default");
        for header in [None, Some(&b"Bearer nonsense"[..]), Some(&b""[..])] {
            let principal = auth
                .authenticate(header, Some("cn"), 0)
                .expect("local principal");
            assert_eq!(principal.recorded_by(), "edc-default");
        }
    }
}
