//! The EDC side of the bridge that lets electronic data capture exports feed Myolog: a streaming
//! CDISC ODM 1.3.x ClinicalData reader ([`odm`]), REDCap record JSON and Data Entry Trigger parsing
//! ([`redcap`]) and REDCap's logging export ([`redcap_log`]), a per-study mapping file and its
//! skeleton generator ([`mapping`], [`init`]), and the planner that turns source rows into validated
//! Myolog domain events ([`plan`]) with a discrepancy CSV for dry runs ([`discrepancy`]).
//!
//! What this crate is NOT: no network, no gRPC or protobuf (a [`plan::Change`] becomes a domain event
//! with [`plan::Change::to_event`]; `myolog-wire` maps that to the wire), no command line, no async, no
//! HTTP server for the Data Entry Trigger and no REDCap API calls (only the parsing of what they carry;
//! `myolog-redcap-bridge` serves and calls them). It never resolves a DTD or an external entity.

pub mod discrepancy;
pub mod init;
pub mod mapping;
pub mod odm;
pub mod plan;
pub mod redcap;
pub mod redcap_log;
