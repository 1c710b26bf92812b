//! The Myolog service: the tonic services (`Ingest`, `Outcomes`, `Audit`, health, reflection) over
//! the event log, and what guards them.
//!
//! - [`app`]: the ingest path (validate, check, durable append, apply, recompute, broadcast).
//! - [`services`], [`audit_service`], [`server`]: the gRPC services, health, reflection, graceful
//!   shutdown.
//! - [`auth`]: principals, bearer tokens, roles, blinding, limits and the guard before every service.
//! - [`error`]: service errors and the one mapping to `tonic::Status`.
//! - [`follower`]: a read-only follower tailing its primary's `Audit.ReadStored`.
//! - [`metrics`]: Prometheus metrics of the ingest path on a port of their own.
//!
//! It holds no clinical rule (`myolog-projection` and `myolog-scoring` do), no protobuf mapping
//! (`myolog-wire`), no audit output (`myolog-audit`) and no command line (`myolog-cli`).

pub mod app;
pub mod audit_service;
pub mod auth;
pub mod error;
pub mod follower;
pub mod metrics;
pub mod server;
pub mod services;
