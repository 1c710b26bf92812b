//! The command-line side of authentication: the `serve` flags ([`SecurityArgs`]) and
//! `myolog token issue`, which prints a new token once and appends only its hash to the principals
//! file (created with mode 0600 if missing; an existing file must parse before anything is added).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use myolog_audit::table::{parse_rfc3339, rfc3339_nanos};
use myolog_server::auth::limits::Limits;
use myolog_server::auth::permissions::Role;
use myolog_server::auth::principals::{PrincipalsFile, valid_id, valid_name};
use myolog_server::auth::tls::TlsFiles;
use myolog_server::auth::{Auth, SecurityError, check_listen, tokens};

/// Limits on what one caller can ask of the server (`serve` flags).
#[derive(Debug, Clone, Copy, PartialEq, Args)]
pub struct LimitsArgs {
    /// Largest accepted gRPC message in bytes.
    #[arg(long, env = "MYOLOG_MAX_MESSAGE_BYTES", default_value_t = Limits::default().max_message_bytes)]
    pub max_message_bytes: usize,
    /// Most events in one batch (Append or one Submit message): the one batch limit, checked before
    /// anything is decoded and held by the log itself.
    #[arg(long, env = "MYOLOG_MAX_EVENTS_PER_BATCH", default_value_t = Limits::default().max_events_per_batch,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_events_per_batch: usize,
    /// Most concurrent calls (open streams included) per principal.
    #[arg(long, env = "MYOLOG_MAX_STREAMS_PER_PRINCIPAL", default_value_t = Limits::default().max_streams_per_principal)]
    pub max_streams_per_principal: usize,
    /// Calls plus streamed batches per second per principal (0: unlimited).
    #[arg(long, env = "MYOLOG_RATE_PER_PRINCIPAL", default_value_t = Limits::default().rate_per_principal)]
    pub rate_per_principal: u32,
}

impl From<LimitsArgs> for Limits {
    fn from(args: LimitsArgs) -> Self {
        Limits {
            max_message_bytes: args.max_message_bytes,
            max_events_per_batch: args.max_events_per_batch,
            max_streams_per_principal: args.max_streams_per_principal,
            rate_per_principal: args.rate_per_principal,
        }
    }
}

/// Security flags of `myolog serve`.
#[derive(Debug, Clone, Args)]
pub struct SecurityArgs {
    /// Principals file (TOML, token hashes only). Without one the server listens on loopback only
    /// and every call acts as --principal.
    #[arg(long, env = "MYOLOG_PRINCIPALS")]
    pub principals: Option<PathBuf>,
    /// Serve plaintext gRPC on a non-loopback address (only behind a proxy that terminates TLS).
    #[arg(long, env = "MYOLOG_ALLOW_PLAINTEXT")]
    pub allow_plaintext: bool,
    /// Server certificate chain (PEM): serve TLS.
    #[arg(long, env = "MYOLOG_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, env = "MYOLOG_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA of client certificates (PEM): a client may authenticate with a certificate whose subject
    /// CN is a [[client]] of the principals file (certificates stay optional for token callers).
    #[arg(long, env = "MYOLOG_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Message size, batch size, concurrent calls and rate per principal.
    #[command(flatten)]
    pub limits: LimitsArgs,
}

impl SecurityArgs {
    /// The authenticator for `serve` on `addr`, or why the server must not start. Logs the mode.
    pub fn authenticator(
        &self,
        addr: SocketAddr,
        local_principal: &str,
    ) -> Result<Arc<Auth>, SecurityError> {
        let tls = TlsFiles::from_flags(
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
            self.tls_client_ca.as_deref(),
        )?;
        check_listen(
            addr,
            self.principals.is_some(),
            tls.is_some(),
            self.allow_plaintext,
        )?;
        let auth = match &self.principals {
            None => {
                tracing::warn!(
                    principal = local_principal,
                    "no principals file: loopback only, every call acts as the local principal"
                );
                Auth::local(local_principal)
            }
            Some(path) => {
                let auth = Auth::from_file(path)?;
                tracing::info!(file = %path.display(), "bearer tokens required; SIGHUP reloads the principals file");
                auth
            }
        };
        let limits = Limits::from(self.limits);
        auth.use_limits(limits);
        tracing::info!(limits = ?limits, "limits");
        match tls {
            Some(files) => {
                auth.use_tls(files.load()?);
                tracing::info!(cert = %files.cert.display(), client_ca = ?files.client_ca, "TLS on");
            }
            None => tracing::warn!(%addr, "plaintext gRPC (no --tls-cert)"),
        }
        Ok(auth)
    }
}

/// `myolog token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// Token subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Issue a token: print it once on stdout and append its SHA-256 to the principals file.
    Issue(IssueArgs),
    /// Revoke every token of a principal (sets `revoked = true`; the entries stay, as a record).
    Revoke(RevokeArgs),
}

/// `myolog token revoke`.
#[derive(Debug, Clone, Args)]
pub struct RevokeArgs {
    /// The principal whose tokens are revoked.
    #[arg(long)]
    pub principal: String,
    /// The principals file.
    #[arg(long, env = "MYOLOG_PRINCIPALS", default_value = "./principals.toml")]
    pub file: PathBuf,
}

/// `myolog token issue`.
#[derive(Debug, Clone, Args)]
pub struct IssueArgs {
    /// Principal name, e.g. `edc-stir` (1-64 characters from [A-Za-z0-9._:@-]).
    #[arg(long)]
    pub principal: String,
    /// writer, reader, auditor or admin.
    #[arg(long)]
    pub role: String,
    /// A study the principal is scoped to (repeat for several; writers and readers need one).
    #[arg(long = "study")]
    pub studies: Vec<String>,
    /// A site the writer is scoped to (repeatable).
    #[arg(long = "site")]
    pub sites: Vec<String>,
    /// The principals file to append to (created if missing).
    #[arg(long, env = "MYOLOG_PRINCIPALS", default_value = "./principals.toml")]
    pub file: PathBuf,
    /// Expiry as an RFC 3339 time, e.g. 2027-05-25T00:00:00Z (default: none).
    #[arg(long)]
    pub expires: Option<String>,
}

/// Why a token was not issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Principals(#[from] myolog_server::auth::PrincipalsError),
    #[error(transparent)]
    Random(#[from] tokens::RandomError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs `myolog token ...`.
pub fn run(args: &TokenArgs) -> ExitCode {
    match &args.command {
        TokenCommand::Issue(issue_args) => {
            match issue(issue_args, myolog_server::auth::now_unix_nanos()) {
                Ok(token) => {
                    println!("{token}");
                    eprintln!(
                        "token for {} written to {} (hash only): shown once, store it now; \
                     send SIGHUP to a running server to load it",
                        issue_args.principal,
                        issue_args.file.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("myolog token issue: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        TokenCommand::Revoke(revoke_args) => match revoke(revoke_args) {
            Ok(count) => {
                eprintln!(
                    "{count} token(s) of {} revoked in {}; send SIGHUP to a running server",
                    revoke_args.principal,
                    revoke_args.file.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("myolog token revoke: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The `revoked` flags of the `[[token]]` entries of `principal`, read back from file text.
fn revoked_flags(text: &str, principal: &str) -> Vec<bool> {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    let Some(tokens) = table.get("token").and_then(toml::Value::as_array) else {
        return Vec::new();
    };
    tokens
        .iter()
        .filter(|t| t.get("principal").and_then(toml::Value::as_str) == Some(principal))
        .map(|t| {
            t.get("revoked")
                .and_then(toml::Value::as_bool)
                .unwrap_or(false)
        })
        .collect()
}

/// Revokes every `[[token]]` of `args.principal`: a line edit of each of its entries (so comments
/// and layout stay), checked by reading the result back, written to a temporary file and renamed
/// over the old one (a crash leaves the old file or the new, never half of one). Returns how many
/// tokens the principal has.
pub fn revoke(args: &RevokeArgs) -> Result<usize, IssueError> {
    let io_error = |source| IssueError::Write {
        path: args.file.clone(),
        source,
    };
    let text = std::fs::read_to_string(&args.file).map_err(io_error)?;
    PrincipalsFile::parse(&text, &args.file)?;
    let before = revoked_flags(&text, &args.principal);
    if before.is_empty() {
        return Err(IssueError::Invalid(format!(
            "no token of principal {:?} in {}",
            args.principal,
            args.file.display()
        )));
    }
    // Blocks start at a `[[...]]` header; in a token block of the principal, drop any `revoked`
    // line and add `revoked = true` at the block's end.
    let wanted = format!("principal = \"{}\"", args.principal);
    let mut out: Vec<String> = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    let flush = |block: &mut Vec<&str>, out: &mut Vec<String>| {
        let is_token = block.first().is_some_and(|h| h.trim() == "[[token]]");
        let is_ours = block.iter().any(|l| l.trim() == wanted);
        if is_token && is_ours {
            let mut kept: Vec<String> = block
                .iter()
                .filter(|l| !l.trim_start().starts_with("revoked"))
                .map(|l| l.to_string())
                .collect();
            let end = kept
                .iter()
                .rposition(|l| !l.trim().is_empty())
                .map_or(kept.len(), |i| i + 1);
            kept.insert(end, "revoked = true".to_string());
            out.extend(kept);
        } else {
            out.extend(block.iter().map(|l| l.to_string()));
        }
        block.clear();
    };
    for line in text.lines() {
        if line.trim_start().starts_with('[') {
            flush(&mut block, &mut out);
        }
        block.push(line);
    }
    flush(&mut block, &mut out);
    let mut new_text = out.join("\n");
    new_text.push('\n');
    PrincipalsFile::parse(&new_text, &args.file)?;
    let after = revoked_flags(&new_text, &args.principal);
    if after.len() != before.len() || !after.iter().all(|r| *r) {
        return Err(IssueError::Invalid(format!(
            "could not revoke every token of {:?} by a line edit; set revoked = true by hand",
            args.principal
        )));
    }
    let temporary = args.file.with_extension("toml.new");
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(io_error)?;
    file.write_all(new_text.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    std::fs::rename(&temporary, &args.file).map_err(io_error)?;
    Ok(after.len())
}

/// The `[[token]]` entry text for a hash (every value checked against a charset without quotes or
/// backslashes, so no TOML escaping is needed).
fn entry_text(args: &IssueArgs, role: Role, sha256: &str, issued: &str) -> String {
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut text = format!(
        "\n[[token]]\nprincipal = \"{}\"\nrole = \"{role}\"\nstudies = {}\nsites = {}\n\
         sha256 = \"{sha256}\"\nissued = \"{issued}\"\n",
        args.principal,
        list(&args.studies),
        list(&args.sites),
    );
    if let Some(expires) = &args.expires {
        text.push_str(&format!("expires = \"{expires}\"\n"));
    }
    text.push_str("revoked = false\n");
    text
}

/// Issues a token: checks the arguments and the existing file, appends the hash and returns the
/// token (the only time it exists outside the caller's hands).
pub fn issue(args: &IssueArgs, now_unix_nanos: i64) -> Result<String, IssueError> {
    if !valid_name(&args.principal) {
        return Err(IssueError::Invalid(
            "--principal must be 1-64 characters from [A-Za-z0-9._:@-]".into(),
        ));
    }
    let role = Role::parse_issuable(&args.role).ok_or_else(|| {
        IssueError::Invalid(format!(
            "--role {:?} is not writer, reader, auditor or admin",
            args.role
        ))
    })?;
    if let Some(bad) = args
        .studies
        .iter()
        .chain(&args.sites)
        .find(|s| !valid_id(s))
    {
        return Err(IssueError::Invalid(format!(
            "{bad:?} is not a study or site id (1-64 characters from [A-Za-z0-9._:-])"
        )));
    }
    if let Some(expires) = &args.expires {
        match parse_rfc3339(expires) {
            None => {
                return Err(IssueError::Invalid(format!(
                    "--expires {expires:?} is not an RFC 3339 time"
                )));
            }
            Some(at) if at <= now_unix_nanos => {
                return Err(IssueError::Invalid(format!(
                    "--expires {expires} is in the past"
                )));
            }
            Some(_) => {}
        }
    }
    let existing = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(IssueError::Write {
                path: args.file.clone(),
                source,
            });
        }
    };
    PrincipalsFile::parse(&existing, &args.file)?;
    let token = tokens::generate()?;
    let sha256 = tokens::hex(&tokens::hash(&token));
    let issued = rfc3339_nanos(now_unix_nanos);
    let entry = entry_text(args, role, &sha256, &issued);
    // The combined text must parse (e.g. a writer without a study) before anything is written.
    PrincipalsFile::parse(&format!("{existing}{entry}"), &args.file)?;
    let write_error = |source| IssueError::Write {
        path: args.file.clone(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&args.file).map_err(write_error)?;
    file.write_all(entry.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(file: &std::path::Path, principal: &str, role: &str, studies: &[&str]) -> IssueArgs {
        IssueArgs {
            principal: principal.into(),
            role: role.into(),
            studies: studies.iter().map(|s| s.to_string()).collect(),
            sites: vec!["S01".into()],
            file: file.to_path_buf(),
            expires: None,
        }
    }

    #[test]
    fn issued_tokens_authenticate_and_only_hashes_are_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("principals.toml");
        let now = parse_rfc3339("2026-11-25T15:00:00Z").expect("time");
        let writer = issue(&args(&path, "edc", "writer", &["STIR"]), now).expect("issued");
        let mut expiring = args(&path, "stat", "reader", &["STIR", "BIRD"]);
        expiring.expires = Some("2026-12-01T00:00:00Z".into());
        let reader = issue(&expiring, now).expect("issued");
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(!text.contains(&writer) && !text.contains(&reader[4..]));
        let file = PrincipalsFile::load(&path).expect("parses");
        assert_eq!(file.len(), 2);
        let edc = file
            .authenticate(&tokens::hash(&writer), now)
            .expect("writer");
        assert_eq!(edc.recorded_by(), "edc (writer)");
        assert!(edc.sites.contains("S01"));
        let stat = file
            .authenticate(&tokens::hash(&reader), now)
            .expect("reader");
        assert_eq!(stat.studies.len(), 2);
        let later = parse_rfc3339("2026-12-01T00:00:00Z").expect("time");
        assert!(file.authenticate(&tokens::hash(&reader), later).is_err());
    }

    #[test]
    fn revoke_revokes_every_token_of_the_principal_and_only_those() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("principals.toml");
        let now = parse_rfc3339("2026-11-25T15:00:00Z").expect("time");
        let first = issue(&args(&path, "edc", "writer", &["S"]), now).expect("issued");
        let other = issue(&args(&path, "stat", "reader", &["S"]), now).expect("issued");
        let second = issue(&args(&path, "edc", "writer", &["S"]), now).expect("issued");
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.insert_str(0, "# hand-written comment\n");
        text.push_str("\n[[client]]\nprincipal = \"edc\"\nrole = \"writer\"\nstudies = [\"S\"]\n");
        std::fs::write(&path, text).expect("write");
        let revoke_args = RevokeArgs {
            principal: "edc".into(),
            file: path.clone(),
        };
        assert_eq!(revoke(&revoke_args).expect("revoked"), 2);
        let file = PrincipalsFile::load(&path).expect("parses");
        for token in [&first, &second] {
            assert_eq!(
                file.authenticate(&tokens::hash(token), now),
                Err(myolog_server::auth::AuthError::Revoked("edc".into()))
            );
        }
        assert!(file.authenticate(&tokens::hash(&other), now).is_ok());
        let kept = std::fs::read_to_string(&path).expect("read");
        assert!(kept.starts_with("# hand-written comment"));
        // Idempotent; an unknown principal is an error and changes nothing.
        assert_eq!(revoke(&revoke_args).expect("again"), 2);
        let nobody = RevokeArgs {
            principal: "nobody".into(),
            file: path.clone(),
        };
        assert!(revoke(&nobody).is_err());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), kept);
    }

    #[test]
    fn refuses_bad_requests_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("principals.toml");
        let now = parse_rfc3339("2026-11-25T15:00:00Z").expect("time");
        let mut past = args(&path, "a", "reader", &["S"]);
        past.expires = Some("2026-11-25T14:59:59Z".into());
        let mut garbled = args(&path, "a", "reader", &["S"]);
        garbled.expires = Some("soon".into());
        // (arguments, part of the message)
        let cases = [
            (args(&path, "a b", "writer", &["S"]), "--principal"),
            (args(&path, "a\"", "writer", &["S"]), "--principal"),
            (args(&path, "a", "local", &["S"]), "--role"),
            (args(&path, "a", "writer", &[]), "at least one study"),
            (
                args(&path, "a", "writer", &["S\"]"]),
                "not a study or site id",
            ),
            (past, "in the past"),
            (garbled, "not an RFC 3339 time"),
        ];
        for (bad, expected) in cases {
            let error = issue(&bad, now).expect_err(expected).to_string();
            assert!(error.contains(expected), "{bad:?} -> {error}");
            assert!(!path.exists(), "nothing written for {bad:?}");
        }
        std::fs::write(&path, "not toml [").expect("write");
        assert!(issue(&args(&path, "a", "admin", &[]), now).is_err());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "not toml [");
    }
}
