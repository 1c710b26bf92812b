//! The stored payload codec: what the log keeps of each event is the request's `myolog.v1.Event`
//! re-encoded canonically (unknown fields dropped), under a payload schema version; reading it back
//! decodes and validates it exactly as an incoming request is.

use myolog_domain::event::Event;
use myolog_proto::v1 as pb;
use prost::Message;

/// The payload schema version of every event this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Canonical bytes of a decoded request event: a retry with the same content encodes to the same
/// bytes, so the log recognises it as a duplicate.
pub fn encode(event: &pb::Event) -> Vec<u8> {
    event.encode_to_vec()
}

/// Decodes a stored payload back to a validated domain event; a payload of another schema version
/// or one that no longer validates is an error naming why.
pub fn decode(schema_version: u32, payload: &[u8]) -> Result<Event, String> {
    if schema_version != SCHEMA_VERSION {
        return Err(format!(
            "unsupported payload schema version {schema_version}"
        ));
    }
    let wire_event = pb::Event::decode(payload).map_err(|e| e.to_string())?;
    crate::event::event_from_proto(&wire_event, "event").map_err(|violations| {
        violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ")
    })
}
