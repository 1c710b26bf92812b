//! Principals and the principals file: TOML, one `[[token]]` table per issued token, holding only the
//! SHA-256 of the secret, the principal's name, role, studies (and sites), and optional expiry and
//! revocation; and one `[[client]]` table per client-certificate principal (its subject CN, role,
//! studies, sites, revoked). Written by `myolog token issue` (append-only) and by hand (`revoked = true`); read at
//! start and on SIGHUP.
//!
//! ```toml
//! [[token]]
//! principal = "edc-stir"
//! role = "writer"
//! studies = ["STIR"]
//! sites = ["S01"]
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! issued = "2026-11-25T15:00:00Z"
//! expires = "2027-05-25T00:00:00Z"
//! revoked = false
//!
//! [[client]]
//! principal = "edc-bird"   # the certificate's subject CN
//! role = "writer"
//! studies = ["BIRD"]
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use myolog_proto::v1 as pb;
use serde::Deserialize;
use tonic::Status;

use super::AuthError;
use super::permissions::{Grant, Permission, Role};
use super::tokens::{self, TokenHash};
use myolog_audit::table::parse_rfc3339;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who (1-64 characters from `[A-Za-z0-9._:@-]`).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The studies a writer or reader is scoped to (ignored for the other roles).
    pub studies: BTreeSet<String>,
    /// The sites a writer is scoped to (empty: all sites of its studies). Enforced on ingest against
    /// SubjectEnrolled.site_id ([`Principal::site_scope`]).
    pub sites: BTreeSet<String>,
}

impl Principal {
    /// The one principal of a server without a principals file.
    pub fn local(name: &str) -> Self {
        Self {
            name: name.to_string(),
            role: Role::Local,
            studies: BTreeSet::new(),
            sites: BTreeSet::new(),
        }
    }

    /// The envelope's recorded-by: `name (role)`, so every event says who and in which capacity.
    /// The local principal is its configured name alone (there is no other capacity).
    pub fn recorded_by(&self) -> String {
        match self.role {
            Role::Local => self.name.clone(),
            role => format!("{} ({role})", self.name),
        }
    }

    fn denied(&self, what: impl std::fmt::Display) -> Status {
        Status::permission_denied(format!("{} ({}) may not {what}", self.name, self.role))
    }

    /// The sites a writer's subject-level events are confined to; `None` when it is not site-scoped
    /// (no sites listed, or not a writer).
    pub fn site_scope(&self) -> Option<&BTreeSet<String>> {
        (self.role == Role::Writer && !self.sites.is_empty()).then_some(&self.sites)
    }

    /// May this principal use `permission` on `study`?
    pub fn check_study(&self, permission: Permission, study: &str) -> Result<(), Status> {
        match self.role.grants(permission) {
            Grant::All => Ok(()),
            Grant::OwnStudies if self.studies.contains(study) => Ok(()),
            Grant::OwnStudies | Grant::Denied => {
                Err(self.denied(format_args!("{} study {study:?}", permission.name())))
            }
        }
    }

    /// A scoped reader must name one of its studies; a study-wide grant may read all at once.
    pub fn check_read(&self, study: &str) -> Result<(), Status> {
        if study.is_empty() && self.role.grants(Permission::ReadStudy) != Grant::All {
            return Err(self.denied("read without naming one of its studies"));
        }
        if study.is_empty() {
            return Ok(());
        }
        self.check_study(Permission::ReadStudy, study)
    }

    /// May this principal append every event of the batch? StudyRegistered, ProtocolAmended,
    /// StudyLocked, StudyUnlocked and StudyUnblinded are an admin's acts; all
    /// other events are a writer's, for its own studies. Checked on the wire events before any
    /// validation, so a denied batch reveals nothing about the study and stores nothing.
    pub fn check_batch(&self, events: &[pb::Event]) -> Result<(), Status> {
        for (index, event) in events.iter().enumerate() {
            // A protocol amendment changes the study as registration does, and a data lock or its
            // lifting decides whether anyone may change the study at all: admin acts too.
            let registers = matches!(
                event.body,
                Some(
                    pb::event::Body::StudyRegistered(_)
                        | pb::event::Body::ProtocolAmended(_)
                        | pb::event::Body::StudyLocked(_)
                        | pb::event::Body::StudyUnlocked(_)
                        | pb::event::Body::StudyUnblinded(_)
                )
            );
            let allowed = match self.role {
                Role::Local => true,
                Role::Admin => registers,
                Role::Writer | Role::Integration => {
                    !registers && self.studies.contains(&event.study_id)
                }
                Role::Reader | Role::Auditor => false,
            };
            if !allowed {
                let what = if registers {
                    "register, amend, lock, unlock or unblind studies".to_string()
                } else {
                    format!("write events of study {:?}", event.study_id)
                };
                return Err(self.denied(format_args!("{what} (events[{index}])")));
            }
        }
        Ok(())
    }
}

impl Principal {
    /// Whether this principal may see arm assignment and arm-dependent results of a blinded study
    /// (ICH E6(R3)): the unblinded roles (admin, auditor, local); readers stay blinded.
    pub fn sees_arms(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Auditor | Role::Local)
    }
}

/// A principals file that cannot be used (the server does not start, or keeps the old one).
#[derive(Debug, thiserror::Error)]
pub enum PrincipalsError {
    #[error("reading principals file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("principals file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("principals file {path}: token {index} ({principal}): {message}")]
    Invalid {
        path: PathBuf,
        index: usize,
        principal: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    #[serde(default)]
    token: Vec<TokenText>,
    #[serde(default)]
    client: Vec<ClientText>,
}

/// A principal authenticated by a client certificate whose subject CN is `principal`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientText {
    principal: String,
    role: String,
    #[serde(default)]
    studies: Vec<String>,
    #[serde(default)]
    sites: Vec<String>,
    #[serde(default)]
    revoked: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenText {
    principal: String,
    role: String,
    #[serde(default)]
    studies: Vec<String>,
    #[serde(default)]
    sites: Vec<String>,
    sha256: String,
    #[serde(default)]
    issued: Option<String>,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    revoked: bool,
}

/// One issued token.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    /// The principal it authenticates.
    pub principal: std::sync::Arc<Principal>,
    /// SHA-256 of the secret.
    pub hash: TokenHash,
    /// Not valid at or after this instant (Unix nanoseconds).
    pub expires_unix_nanos: Option<i64>,
    /// Revoked by hand.
    pub revoked: bool,
}

/// The parsed principals file.
#[derive(Debug, Clone, Default)]
pub struct PrincipalsFile {
    entries: Vec<TokenEntry>,
    /// Client-certificate principals by CN, with their revocation flag.
    clients: Vec<(std::sync::Arc<Principal>, bool)>,
}

/// Checks one entry's principal fields (shared by `[[token]]` and `[[client]]`).
fn principal_from(
    principal: &str,
    role: &str,
    studies: &[String],
    sites: &[String],
) -> Result<Principal, String> {
    if !valid_name(principal) {
        return Err("principal must be 1-64 characters from [A-Za-z0-9._:@-]".into());
    }
    let role = Role::parse_issuable(role).ok_or_else(|| {
        format!("role {role:?} is not writer, reader, auditor, admin or integration")
    })?;
    if let Some(bad) = studies.iter().chain(sites).find(|s| !valid_id(s)) {
        return Err(format!("{bad:?} is not a study or site id"));
    }
    if matches!(role, Role::Writer | Role::Reader | Role::Integration) && studies.is_empty() {
        return Err(format!("a {role} needs at least one study"));
    }
    Ok(Principal {
        name: principal.to_string(),
        role,
        studies: studies.iter().cloned().collect(),
        sites: sites.iter().cloned().collect(),
    })
}

/// Whether `text` is a principal name (the same shape as identifiers, plus `@`).
pub fn valid_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@-".contains(&b))
}

/// Whether `text` is a study or site identifier (1-64 characters from `[A-Za-z0-9._:-]`).
pub fn valid_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

impl PrincipalsFile {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, PrincipalsError> {
        let text = std::fs::read_to_string(path).map_err(|source| PrincipalsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks principals-file text (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, PrincipalsError> {
        let file: FileText = toml::from_str(text).map_err(|e| PrincipalsError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut entries = Vec::with_capacity(file.token.len());
        for (index, token) in file.token.into_iter().enumerate() {
            let invalid = |message: String| PrincipalsError::Invalid {
                path: path.to_path_buf(),
                index,
                principal: token.principal.clone(),
                message,
            };
            let principal =
                principal_from(&token.principal, &token.role, &token.studies, &token.sites)
                    .map_err(invalid)?;
            let hash = tokens::parse_hash(&token.sha256)
                .ok_or_else(|| invalid("sha256 must be 64 hex digits".into()))?;
            if let Some(issued) = &token.issued
                && parse_rfc3339(issued).is_none()
            {
                return Err(invalid(format!(
                    "issued {issued:?} is not an RFC 3339 time"
                )));
            }
            let expires_unix_nanos =
                match &token.expires {
                    None => None,
                    Some(text) => Some(parse_rfc3339(text).ok_or_else(|| {
                        invalid(format!("expires {text:?} is not an RFC 3339 time"))
                    })?),
                };
            if entries
                .iter()
                .any(|e: &TokenEntry| tokens::constant_time_eq(&e.hash, &hash))
            {
                return Err(invalid("the same token hash appears twice".into()));
            }
            entries.push(TokenEntry {
                principal: std::sync::Arc::new(principal),
                hash,
                expires_unix_nanos,
                revoked: token.revoked,
            });
        }
        let mut clients = Vec::with_capacity(file.client.len());
        for (index, client) in file.client.iter().enumerate() {
            let principal = principal_from(
                &client.principal,
                &client.role,
                &client.studies,
                &client.sites,
            )
            .map_err(|message| PrincipalsError::Invalid {
                path: path.to_path_buf(),
                index,
                principal: format!("client {}", client.principal),
                message,
            })?;
            if clients
                .iter()
                .any(|(p, _): &(std::sync::Arc<Principal>, bool)| p.name == principal.name)
            {
                return Err(PrincipalsError::Invalid {
                    path: path.to_path_buf(),
                    index,
                    principal: format!("client {}", client.principal),
                    message: "the same client name appears twice".into(),
                });
            }
            clients.push((std::sync::Arc::new(principal), client.revoked));
        }
        Ok(Self { entries, clients })
    }

    /// The principal of a verified client certificate whose subject CN is `common_name`.
    pub fn authenticate_client(
        &self,
        common_name: &str,
    ) -> Result<std::sync::Arc<Principal>, AuthError> {
        match self.clients.iter().find(|(p, _)| p.name == common_name) {
            None => Err(AuthError::UnknownCertificate(common_name.to_string())),
            Some((principal, true)) => Err(AuthError::Revoked(principal.name.clone())),
            Some((principal, false)) => Ok(std::sync::Arc::clone(principal)),
        }
    }

    /// Number of tokens (revoked and expired included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file lists no token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal whose token hashes to `hash`, if valid at `now`. Every entry is compared (no
    /// early exit), each in constant time, so timing says nothing about which hash came close.
    pub fn authenticate(
        &self,
        hash: &TokenHash,
        now_unix_nanos: i64,
    ) -> Result<std::sync::Arc<Principal>, AuthError> {
        let mut found = None;
        for entry in &self.entries {
            if tokens::constant_time_eq(&entry.hash, hash) {
                found = Some(entry);
            }
        }
        let entry = found.ok_or(AuthError::Unknown)?;
        if entry.revoked {
            return Err(AuthError::Revoked(entry.principal.name.clone()));
        }
        if entry
            .expires_unix_nanos
            .is_some_and(|e| now_unix_nanos >= e)
        {
            return Err(AuthError::Expired(entry.principal.name.clone()));
        }
        Ok(std::sync::Arc::clone(&entry.principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PrincipalsFile, PrincipalsError> {
        PrincipalsFile::parse(text, Path::new("principals.toml"))
    }

    fn entry(principal: &str, role: &str, studies: &str, token: &str, extra: &str) -> String {
        format!(
            "[[token]]\nprincipal = \"{principal}\"\nrole = \"{role}\"\nstudies = {studies}\n\
             sha256 = \"{}\"\n{extra}\n",
            tokens::hex(&tokens::hash(token))
        )
    }

    #[test]
    fn rejects_bad_files_naming_the_problem() {
        // (file text, part of the message)
        let cases = [
            ("[[token]]\nprincipal = \"x\"\n", "missing field"),
            ("[[token]\n", "principals.toml"),
            ("[[tokens]]\n", "unknown field"),
            (
                &entry("a b", "writer", "[\"S\"]", "t", ""),
                "principal must be",
            ),
            (&entry("a", "local", "[\"S\"]", "t", ""), "role \"local\""),
            (&entry("a", "root", "[\"S\"]", "t", ""), "role \"root\""),
            (&entry("a", "writer", "[]", "t", ""), "at least one study"),
            (&entry("a", "reader", "[]", "t", ""), "at least one study"),
            (
                &entry("a", "writer", "[\"S T\"]", "t", ""),
                "not a study or site id",
            ),
            (
                &entry("a", "writer", "[\"S\"]", "t", "expires = \"tomorrow\""),
                "expires \"tomorrow\"",
            ),
            (
                &entry("a", "writer", "[\"S\"]", "t", "colour = \"red\""),
                "unknown field",
            ),
            (
                &format!(
                    "{}{}",
                    entry("a", "writer", "[\"S\"]", "t", ""),
                    entry("b", "reader", "[\"S\"]", "t", "")
                ),
                "twice",
            ),
            (
                "[[token]]\nprincipal = \"a\"\nrole = \"admin\"\nsha256 = \"abc\"\n",
                "64 hex digits",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}\n-> {error}");
        }
    }

    #[test]
    fn authenticates_only_valid_tokens() {
        let now = parse_rfc3339("2026-11-25T15:00:00Z").expect("time");
        let text = [
            entry("edc", "writer", "[\"A\"]", "good", ""),
            entry(
                "old",
                "reader",
                "[\"A\"]",
                "old",
                "expires = \"2026-11-25T15:00:00Z\"",
            ),
            entry(
                "later",
                "reader",
                "[\"A\"]",
                "later",
                "expires = \"2026-11-25T15:00:01Z\"",
            ),
            entry("gone", "auditor", "[]", "gone", "revoked = true"),
            entry(
                "boss",
                "admin",
                "[]",
                "boss",
                "issued = \"2026-01-01T00:00:00Z\"",
            ),
        ]
        .concat();
        let file = parse(&text).expect("valid file");
        assert_eq!(file.len(), 5);
        // (token, expected principal or error)
        let cases: [(&str, Result<&str, AuthError>); 6] = [
            ("good", Ok("edc (writer)")),
            ("later", Ok("later (reader)")),
            ("boss", Ok("boss (admin)")),
            ("old", Err(AuthError::Expired("old".into()))),
            ("gone", Err(AuthError::Revoked("gone".into()))),
            ("nobody", Err(AuthError::Unknown)),
        ];
        for (token, expected) in cases {
            let got = file
                .authenticate(&tokens::hash(token), now)
                .map(|p| p.recorded_by());
            assert_eq!(got, expected.map(str::to_string), "{token}");
        }
    }

    fn principal(role: Role, studies: &[&str]) -> Principal {
        Principal {
            name: "p".into(),
            role,
            studies: studies.iter().map(|s| s.to_string()).collect(),
            sites: BTreeSet::new(),
        }
    }

    fn event(study: &str, registers: bool) -> pb::Event {
        pb::Event {
            source_audit: None,
            study_id: study.into(),
            body: Some(if registers {
                pb::event::Body::StudyRegistered(pb::StudyRegistered::default())
            } else {
                pb::event::Body::SubjectEnrolled(pb::SubjectEnrolled::default())
            }),
            ..Default::default()
        }
    }

    #[test]
    fn batch_scope() {
        let writer = principal(Role::Writer, &["A"]);
        let admin = principal(Role::Admin, &[]);
        // (principal, events as (study, registers), allowed)
        type Case<'a> = (&'a Principal, Vec<(&'a str, bool)>, bool);
        let cases: Vec<Case> = vec![
            (&writer, vec![("A", false), ("A", false)], true),
            (&writer, vec![("A", false), ("B", false)], false),
            (&writer, vec![("B", false)], false),
            (&writer, vec![("A", true)], false),
            (&admin, vec![("A", true), ("B", true)], true),
            (&admin, vec![("A", false)], false),
            (&admin, vec![("A", true), ("A", false)], false),
            (&writer, vec![], true),
        ];
        for (who, events, allowed) in cases {
            let batch: Vec<_> = events.iter().map(|(s, r)| event(s, *r)).collect();
            let result = who.check_batch(&batch);
            assert_eq!(result.is_ok(), allowed, "{who:?} {events:?}: {result:?}");
            if let Err(status) = result {
                assert_eq!(status.code(), tonic::Code::PermissionDenied);
            }
        }
        for role in [Role::Reader, Role::Auditor] {
            let who = principal(role, &["A"]);
            assert!(who.check_batch(&[event("A", false)]).is_err(), "{role}");
        }
    }

    #[test]
    fn protocol_amendments_are_an_admins_act() {
        let amendment = pb::Event {
            source_audit: None,
            study_id: "A".into(),
            body: Some(pb::event::Body::ProtocolAmended(
                pb::ProtocolAmended::default(),
            )),
            ..Default::default()
        };
        // (role, allowed)
        let cases = [
            (Role::Admin, true),
            (Role::Local, true),
            (Role::Writer, false),
            (Role::Reader, false),
            (Role::Auditor, false),
        ];
        for (role, allowed) in cases {
            let who = principal(role, &["A"]);
            let result = who.check_batch(std::slice::from_ref(&amendment));
            assert_eq!(result.is_ok(), allowed, "{role}: {result:?}");
        }
    }

    #[test]
    fn read_scope() {
        let reader = principal(Role::Reader, &["A"]);
        let auditor = principal(Role::Auditor, &[]);
        let writer = principal(Role::Writer, &["A"]);
        // (principal, study, allowed)
        let cases = [
            (&reader, "A", true),
            (&reader, "B", false),
            (&reader, "", false),
            (&auditor, "B", true),
            (&auditor, "", true),
            (&writer, "A", false),
        ];
        for (who, study, allowed) in cases {
            assert_eq!(who.check_read(study).is_ok(), allowed, "{who:?} {study}");
        }
    }
}
