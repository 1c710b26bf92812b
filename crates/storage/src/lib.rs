//! The append-only, hash-chained, durable event log on sled. The only crate that knows sled.
