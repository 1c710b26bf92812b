//! CDISC submission formats for Myolog: from a dataset description and its rows, write SAS XPORT v5
//! (`.xpt`), CDISC Dataset-JSON 1.1 (`.json`, `.ndjson`), CSV, and the Define-XML 2.1 document that
//! describes them.
//!
//! What this crate is NOT: it knows no clinical meaning (no ADSL/ADEFF/DM derivations, no scoring, no
//! event log); another module builds [`Dataset`]s from the log and calls the writers. It does no IO
//! except writing to the `std::io::Write` the caller gives, reads no clock (every time stamp is a
//! caller-supplied [`DateTime`], so equal inputs give equal bytes), and has no command line or wire.
//!
//! Conventions (rounding, dates, missing versus empty) are described in `docs/cdisc-formats.md`.
//! The tests validate the output against CDISC's published schemas, committed under
//! `crates/cdisc/tests/schemas/` (Dataset-JSON 1.1 JSON Schema; Define-XML 2.1.0 XML Schema, checked with
//! xmllint), and against an XPORT file written by SAS (`crates/cdisc/tests/data/cdisc-example/`).
//!
//! Entry points: [`xpt::write_xpt`], [`dataset_json::write_json`], [`dataset_json::write_ndjson`],
//! [`csv::write_csv`], [`define_xml::write_define`]. Each validates its input first
//! ([`Dataset::validate`]) and refuses with a [`CdiscError`] naming the dataset, column and row.

pub mod csv;
pub mod dataset_json;
pub mod dates;
pub mod define_xml;
pub mod error;
pub mod ibm;
pub mod model;
pub mod xpt;

pub use dates::{CalendarDate, DateTime, TimeOfDay};
pub use error::CdiscError;
pub use model::{Column, DataType, Dataset, Purpose, SasFormat, TargetDataType, Value};
