//! State built from the log's events and every outcome read from it, as typed values: the studies,
//! subjects and visits of the projection (`state`), the ingest preconditions a batch is checked
//! against, the scoring of each subject x visit under the protocol version in force (`score`), the
//! per-visit, per-subject and per-cohort outcomes with their protocol endpoints (`outcome`) and
//! protocol eligibility (`eligibility`).
//!
//! It is not the wire (no protobuf: the `wire` crate maps these values), not the log (no storage:
//! the callers apply events they read or appended) and does no IO: the service and the audit
//! commands build the same projection from the same events and read the same outcomes from it.

pub mod eligibility;
pub mod outcome;
pub mod report;
pub mod score;
pub mod state;
mod violation;

pub use state::{Projection, Study, Subject, Touched, Visit};
pub use violation::Violation;
