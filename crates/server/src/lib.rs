//! The Myolog service: tonic services over the event log and the scoring engine, proto <-> domain
//! mapping, projections rebuilt from the log, and the `myolog` command line.
//!
//! - [`wire`]: proto <-> domain mapping with field-path violations.
//! - [`error`]: service errors and the one mapping to `tonic::Status`.
//! - [`projection`], [`outcomes`], [`scored`]: per-visit assessments, per-subject and cohort outcomes.
//! - [`eligibility`]: protocol eligibility per subject and per cohort, and which protocol version a
//!   read asks for.
//! - [`app`]: the ingest path (validate, check, durable append, apply, recompute, broadcast).
//! - [`services`], [`server`]: the gRPC services, health, reflection, graceful shutdown.
//! - [`auth`]: principals, bearer tokens, the permission table and the guard before every service.
//! - [`audit`]: replay as of any point, verify, audit-trail and ADaM exports, the HTML report.
//! - [`metrics`]: Prometheus metrics of the ingest path on a port of their own.
//! - [`cli`], [`demo`], [`synth`], [`healthcheck`]: the binary's commands.
//! - [`study_cli`]: `myolog study validate | register | export` (protocol files).
//! - [`registration`]: a registered protocol's study id against the registered study id.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod demo;
pub mod error;
pub mod healthcheck;
pub mod metrics;
pub mod prng;
pub mod registration;
pub mod score_cli;
pub mod server;
pub mod services;
pub mod study_cli;
pub mod synth;
pub mod telemetry;
pub mod wire;
