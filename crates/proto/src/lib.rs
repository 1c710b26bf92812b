//! Generated protobuf and gRPC code for the `myolog.v1` contracts in `proto/`.
//!
//! The code is generated at build time (see `build.rs`) and included here; `google.rpc` types come from
//! `tonic-types` (`tonic_types::pb`), `google.protobuf` types from `prost-types`.

/// The `myolog.v1` package: events, outcomes and the Ingest, Outcomes and Audit services.
pub mod v1 {
    #![allow(
        missing_docs,
        clippy::all,
        clippy::pedantic,
        missing_debug_implementations
    )]
    include!(concat!(env!("OUT_DIR"), "/myolog.v1.rs"));
}

/// Encoded `FileDescriptorSet` of every file under `proto/` (with imports), for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/myolog_descriptor.bin"));

/// Fully-qualified protobuf type name of an event body, stored as the event type in the log envelope.
pub const EVENT_TYPE_PREFIX: &str = "myolog.v1.";
