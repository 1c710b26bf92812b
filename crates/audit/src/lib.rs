//! Audit tools over the event log alone: replay every outcome as of any point with its provenance,
//! export the audit trail and an ADaM-style analysis dataset, and draw a self-contained HTML report.
//!
//! Everything here is recomputed from the stored events through the same projection and outcome code
//! the service runs (`myolog-projection`), with events decoded by the same codec (`myolog-wire`), so
//! an inspector's replay and the service's live answer cannot drift apart.
//!
//! It is not the service: no gRPC (the server wraps [`replay`] as `Audit.Replay`), no command line
//! (the `myolog` binary parses the arguments), and it never writes to the log.
//!
//! - [`replay`]: the log up to a sequence or a time, projected and scored; provenance per outcome.
//! - [`export`]: the audit trail (who, when, what, why, what it supersedes).
//! - [`adam`]: one row per subject x visit x parameter with the columns ADaM statisticians expect.
//! - [`package`]: the analysis and tabulation package (ADSL, ADEFF, DM, TA/TV/TI/TS in XPORT,
//!   Dataset-JSON and CSV, Define-XML, reviewer's guide, manifest) and its verification.
//! - [`endpoints`], [`eligibility`]: the protocol's endpoints and eligibility, per subject and as tables.
//! - [`report`], [`svg`]: the HTML page and its hand-written SVG charts.
//! - [`table`]: RFC 4180 CSV and timestamps; [`progress`]: the terminal-only progress bar.

pub mod adam;
pub mod eligibility;
pub mod endpoints;
pub mod export;
pub mod package;
pub mod progress;
pub mod replay;
pub mod report;
pub mod svg;
pub mod table;
#[cfg(test)]
mod test_log;

use std::path::PathBuf;

/// Why an audit command failed. Every failure is a value: the commands map it to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("opening the event log: {0}")]
    Open(myolog_storage::StorageError),
    #[error("reading the event log: {0}")]
    Read(#[from] myolog_storage::StorageError),
    #[error("event {seq} cannot be decoded: {reason}")]
    Decode { seq: u64, reason: String },
    #[error("as-of sequence {requested} is beyond the log's head {head}")]
    BeyondHead { requested: u64, head: u64 },
    #[error("as-of time {0:?} is not an RFC 3339 UTC time such as 2026-11-25T14:30:00Z")]
    BadTime(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Worker(&'static str),
    #[error("serialising JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Package(String),
}

/// Opens an existing log (never creates one: a typo in `--data` is an error, not an empty log).
pub fn open_log(data: &std::path::Path) -> Result<myolog_storage::EventLog, AuditError> {
    let options = myolog_storage::LogOptions {
        create_if_missing: false,
        ..Default::default()
    };
    myolog_storage::EventLog::open(data, options).map_err(AuditError::Open)
}

/// A stored event decoded and validated exactly as the service decodes it at start-up.
pub fn decode_stored(
    stored: &myolog_storage::RecordedEvent,
) -> Result<myolog_domain::event::Event, String> {
    myolog_wire::stored::decode(stored.schema_version, &stored.payload)
}

/// The engine version every replayed outcome names: this build of the `myolog` crates.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

impl AuditError {
    /// Whether the error is stdout's reader going away (e.g. `| head`).
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            AuditError::Output(error) => error.kind() == std::io::ErrorKind::BrokenPipe,
            AuditError::Json(error) => {
                error.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe)
            }
            _ => false,
        }
    }
}
