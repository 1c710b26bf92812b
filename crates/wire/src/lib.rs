//! The only mapping between the protobuf contract (`myolog-proto`) and the domain: requests to
//! validated domain events with field-path violations, stored payloads to events and back, and the
//! typed outcomes of `myolog-projection` to the answers' messages.
//!
//! It holds no state and does no IO; it is not the service (no tonic) and it decides nothing
//! clinical: every rule it applies is the domain's or the scoring crate's.

pub mod event;
pub mod outbound;
pub mod outcome;
pub mod registration;
pub mod stored;

pub use event::*;
pub use outbound::{OutboundError, event_to_proto, source_audit_to_proto};
