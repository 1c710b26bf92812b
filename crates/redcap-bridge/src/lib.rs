//! The long-running REDCap connector behind `myolog bridge`, one process per study: the Data Entry
//! Trigger endpoint with `/healthz` and `/metrics`, the poll, send and reconciliation loops
//! ([`bridge`]), the REDCap API client ([`redcap_api`]), the reconciliation's findings and report
//! ([`reconcile`]), and what the bridge shares with `myolog import odm`:
//! the mapping and ledger files ([`files`]) and sending planned changes through `Ingest.Append`
//! ([`send`]).
//!
//! What this crate is NOT: no command line (the `myolog` binary parses arguments and calls
//! [`bridge::run`]), no parsing of ODM or REDCap JSON and no planning (that is `myolog-edc`, which
//! does no IO), no gRPC server.

pub mod bridge;
pub mod files;
pub mod reconcile;
pub mod redcap_api;
pub mod send;
