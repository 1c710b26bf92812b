//! Roles and the ONE permission table: every RPC the server answers names the permission it needs
//! ([`RPC_PERMISSIONS`]); each role grants a set of permissions ([`Role::grants`]). Anything not in
//! the table is denied. The permission table of docs/operations.md is rendered from these two by
//! [`markdown_table`] (a test keeps them equal), and the end-to-end test walks every RPC x role.

use std::fmt;

/// What a caller may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// An EDC system: appends clinical events for its studies (and sites), reads nothing else.
    Writer,
    /// A statistician: reads outcomes of its studies.
    Reader,
    /// Reads everything, including the raw log and replays; never writes.
    Auditor,
    /// Registers studies, amends protocols, locks, unlocks and unblinds studies (StudyRegistered,
    /// ProtocolAmended, StudyLocked, StudyUnlocked, StudyUnblinded); no clinical data.
    Admin,
    /// An EDC bridge of one or more studies (`myolog import odm`, `myolog bridge`): appends the
    /// clinical events of its studies as a writer does, reads their outcomes and their own events back
    /// (Audit.ReadEvents naming one of its studies); no registration, no whole-log reads, no replays.
    Integration,
    /// The single principal of a server without a principals file (loopback only): everything.
    Local,
}

impl Role {
    /// Every role, in table order.
    pub const ALL: [Role; 6] = [
        Role::Writer,
        Role::Reader,
        Role::Auditor,
        Role::Admin,
        Role::Integration,
        Role::Local,
    ];

    /// The role's name in the principals file and in recorded-by.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Integration => "integration",
            Role::Local => "local",
        }
    }

    /// Parses a role that may be given to a token (`local` may not: it exists only without a file).
    pub fn parse_issuable(text: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == text && *r != Role::Local)
    }

    /// What this role may do with `permission`.
    pub const fn grants(self, permission: Permission) -> Grant {
        use Grant::{All, Denied, OwnStudies};
        use Permission::*;
        match (self, permission) {
            (_, Public) => All,
            (_, Authenticated) => All,
            (Role::Local, _) => All,
            (Role::Writer, WriteEvents) => OwnStudies,
            (Role::Admin, WriteEvents) => All,
            (Role::Reader, ReadStudy) => OwnStudies,
            (Role::Auditor, ReadStudy | ReadEvents | ReadAudit | Replicate) => All,
            (Role::Admin, Replicate) => All,
            (Role::Integration, WriteEvents | ReadStudy | ReadEvents) => OwnStudies,
            _ => Denied,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an RPC needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Anyone, even unauthenticated (health probes of orchestrators).
    Public,
    /// Any authenticated principal (reflection: the schema only, no data).
    Authenticated,
    /// Append events. Per event: StudyRegistered, ProtocolAmended, StudyLocked, StudyUnlocked and
    /// StudyUnblinded only by admin; every other
    /// event only by a writer whose studies include the event's study (and, for a writer issued
    /// with sites, whose sites include the subject's enrolment site).
    WriteEvents,
    /// Read one study's subjects and outcomes (the request names the study).
    ReadStudy,
    /// Read stored events with their envelopes (Audit.ReadEvents): all studies at once, or, for a
    /// study-scoped grant, only events of one of its studies named in the request.
    ReadEvents,
    /// Read the whole log: verification, replays (all studies at once).
    ReadAudit,
    /// Copy the whole log as stored bytes (a read-only follower, run by operators): every study,
    /// unblinded payloads included, so only auditors and admins.
    Replicate,
}

impl Permission {
    /// Name in the permission table of docs/operations.md.
    pub const fn name(self) -> &'static str {
        match self {
            Permission::Public => "public",
            Permission::Authenticated => "authenticated",
            Permission::WriteEvents => "write events",
            Permission::ReadStudy => "read study",
            Permission::ReadEvents => "read events",
            Permission::ReadAudit => "read audit",
            Permission::Replicate => "replicate",
        }
    }
}

/// How far a role's permission reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Not at all: PERMISSION_DENIED before the handler runs.
    Denied,
    /// Only for the studies in the principal's scope (checked in the handler on the request).
    OwnStudies,
    /// Everywhere.
    All,
}

/// Every RPC by its gRPC path (`/package.Service/Method`) and the permission it needs.
pub const RPC_PERMISSIONS: &[(&str, Permission)] = &[
    ("/myolog.v1.Ingest/Submit", Permission::WriteEvents),
    ("/myolog.v1.Ingest/Append", Permission::WriteEvents),
    ("/myolog.v1.Outcomes/GetSubject", Permission::ReadStudy),
    ("/myolog.v1.Outcomes/GetCohort", Permission::ReadStudy),
    ("/myolog.v1.Outcomes/Watch", Permission::ReadStudy),
    ("/myolog.v1.Audit/ReadEvents", Permission::ReadEvents),
    ("/myolog.v1.Audit/Verify", Permission::ReadAudit),
    ("/myolog.v1.Audit/Replay", Permission::ReadAudit),
    ("/myolog.v1.Audit/ReadStored", Permission::Replicate),
    ("/myolog.v1.Audit/GetSignedHead", Permission::ReadAudit),
    ("/grpc.health.v1.Health/Check", Permission::Public),
    ("/grpc.health.v1.Health/Watch", Permission::Public),
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Permission::Authenticated,
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        Permission::Authenticated,
    ),
];

/// The permission an RPC path needs; `None` (deny) for anything not in the table.
pub fn required(path: &str) -> Option<Permission> {
    RPC_PERMISSIONS
        .iter()
        .find(|(rpc, _)| *rpc == path)
        .map(|(_, permission)| *permission)
}

/// The permission table of docs/operations.md: one row per RPC, one column per role.
pub fn markdown_table() -> String {
    let mut out = String::from("| RPC | permission |");
    for role in Role::ALL {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str("\n| --- | --- |");
    for _ in Role::ALL {
        out.push_str(" --- |");
    }
    out.push('\n');
    for (rpc, permission) in RPC_PERMISSIONS {
        out.push_str(&format!("| `{rpc}` | {} |", permission.name()));
        for role in Role::ALL {
            let cell = match role.grants(*permission) {
                Grant::Denied => "denied",
                Grant::OwnStudies => "own studies",
                Grant::All => "yes",
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_are_denied() {
        for path in [
            "",
            "/",
            "/myolog.v1.Ingest/",
            "/myolog.v1.Ingest/Delete",
            "/myolog.v1.Ingest/submit",
            "/myolog.v1.Ingest/Submit/",
            "myolog.v1.Ingest/Submit",
        ] {
            assert_eq!(required(path), None, "{path}");
        }
    }

    #[test]
    fn every_myolog_rpc_of_the_proto_is_in_the_table() {
        // A new RPC in proto/ is denied to everyone (the local principal included) until it has a
        // row here: this test names it first.
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(myolog_proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        let mut rpcs = Vec::new();
        for file in &set.file {
            let package = file.package();
            for service in &file.service {
                for method in &service.method {
                    rpcs.push(format!("/{package}.{}/{}", service.name(), method.name()));
                }
            }
        }
        let myolog: Vec<_> = rpcs.iter().filter(|r| r.starts_with("/myolog.")).collect();
        assert!(myolog.len() >= 8, "{rpcs:?}");
        for rpc in myolog {
            assert!(
                required(rpc).is_some(),
                "{rpc} has no row in RPC_PERMISSIONS"
            );
        }
        for (path, _) in RPC_PERMISSIONS {
            if path.starts_with("/myolog.") {
                assert!(rpcs.iter().any(|r| r == path), "{path} is not in proto/");
            }
        }
    }

    #[test]
    fn every_path_once() {
        let mut paths: Vec<_> = RPC_PERMISSIONS.iter().map(|(p, _)| *p).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), RPC_PERMISSIONS.len());
    }

    #[test]
    fn the_grants_of_each_role() {
        use Grant::*;
        use Permission::*;
        // (role, permission, grant): writers and readers scoped, auditors read everything and never
        // write, admins write (StudyRegistered only, per event) and read nothing, integrations write
        // and read their own studies' events and outcomes and nothing of the whole log. Every role x
        // permission is listed, so a new role or permission fails here until it is decided.
        let cases = [
            (Role::Writer, WriteEvents, OwnStudies),
            (Role::Writer, ReadStudy, Denied),
            (Role::Writer, ReadEvents, Denied),
            (Role::Writer, ReadAudit, Denied),
            (Role::Reader, WriteEvents, Denied),
            (Role::Reader, ReadStudy, OwnStudies),
            (Role::Reader, ReadEvents, Denied),
            (Role::Reader, ReadAudit, Denied),
            (Role::Auditor, WriteEvents, Denied),
            (Role::Auditor, ReadStudy, All),
            (Role::Auditor, ReadEvents, All),
            (Role::Auditor, ReadAudit, All),
            (Role::Admin, WriteEvents, All),
            (Role::Admin, ReadStudy, Denied),
            (Role::Admin, ReadEvents, Denied),
            (Role::Admin, ReadAudit, Denied),
            (Role::Writer, Replicate, Denied),
            (Role::Reader, Replicate, Denied),
            (Role::Auditor, Replicate, All),
            (Role::Admin, Replicate, All),
            (Role::Local, Replicate, All),
            (Role::Integration, WriteEvents, OwnStudies),
            (Role::Integration, ReadStudy, OwnStudies),
            (Role::Integration, ReadEvents, OwnStudies),
            (Role::Integration, ReadAudit, Denied),
            (Role::Integration, Replicate, Denied),
            (Role::Local, WriteEvents, All),
            (Role::Local, ReadStudy, All),
            (Role::Local, ReadEvents, All),
            (Role::Local, ReadAudit, All),
        ];
        assert_eq!(cases.len(), Role::ALL.len() * 5);
        for (role, permission, grant) in cases {
            assert_eq!(role.grants(permission), grant, "{role} {permission:?}");
        }
        for role in Role::ALL {
            assert_eq!(role.grants(Public), All);
            assert_eq!(role.grants(Authenticated), All);
        }
    }

    #[test]
    fn local_is_not_issuable() {
        assert_eq!(Role::parse_issuable("local"), None);
        assert_eq!(Role::parse_issuable("writer"), Some(Role::Writer));
        assert_eq!(Role::parse_issuable("integration"), Some(Role::Integration));
        assert_eq!(Role::parse_issuable("Writer"), None);
    }

    #[test]
    fn operations_guide_has_the_table() {
        let page = include_str!("../../../../docs/operations.md");
        assert!(
            page.contains(&markdown_table()),
            "docs/operations.md's permission table differs from the code; paste:\n{}",
            markdown_table()
        );
    }
}
