//! The EDC bridge's client side: `myolog import odm FILE --mapping MAP` and `myolog mapping init`.
//! The file is read and planned by `myolog-edc` (streaming ODM, the mapping, the ledger of what was
//! sent); each planned change becomes the `myolog.v1.Event` any client would send
//! (`myolog_wire::event_to_proto`) and goes through the public Ingest.Append in batches by subject,
//! so the server checks an import exactly as it checks everyone else.
//!
//! What was sent is remembered in a ledger file next to the mapping (`<mapping>.ledger.json`, or
//! `--ledger`), not rebuilt from the log: the ledger holds the source's values as read, before codes
//! and units were applied, which is what a later Snapshot must be compared with to tell an unchanged
//! form from a corrected one, and which the log does not hold in that form. It is written once, after
//! the last batch, atomically (temporary file, fsync, rename), with every refused change taken back
//! out of it. A run killed before that leaves the previous ledger, so the next run plans the very
//! same changes with the very same event ids: what was stored is answered as a duplicate and the rest
//! goes in (resumable, never doubled).

use std::collections::BTreeSet;
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use myolog_edc::mapping::Mapping;
use myolog_edc::odm::OdmReader;
use myolog_edc::plan::{Plan, SentLedger};
use myolog_proto::v1::ingest_client::IngestClient;
pub use myolog_redcap_bridge::files::{
    FileError, default_ledger_path, load_ledger, load_mapping, write_atomically,
};
pub use myolog_redcap_bridge::send::{
    OutboundError, Retry, SendOutcome, send_changes, wire_events,
};

use crate::client::{Bearer, ServerTls};

/// `myolog import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub format: ImportFormat,
}

/// What is imported.
#[derive(Debug, Clone, Subcommand)]
pub enum ImportFormat {
    /// A CDISC ODM 1.3 ClinicalData file (REDCap, OpenClinica, Rave exports), Snapshot or
    /// Transactional, through the mapping file of its study.
    Odm(ImportOdmArgs),
}

/// `myolog import odm`.
#[derive(Debug, Clone, Args)]
pub struct ImportOdmArgs {
    /// The ODM XML file.
    pub file: PathBuf,
    /// The study's mapping file (TOML; `myolog mapping init` writes a skeleton).
    #[arg(long)]
    pub mapping: PathBuf,
    /// Server URL (`http://host:port`) or `host:port`; the token is read from MYOLOG_TOKEN (an
    /// integration or writer token of the mapping's study).
    #[arg(long, env = "MYOLOG_IMPORT_ADDR", required_unless_present = "dry_run")]
    pub addr: Option<String>,
    /// What was sent before (default: next to the mapping, `<mapping>.ledger.json`).
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// Plan only: write the discrepancies (CSV) and the summary; send and store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the discrepancy CSV goes (`key_path,value,problem`); default: stdout on a dry run,
    /// none otherwise (the summary still lists every refused record).
    #[arg(long, value_name = "FILE")]
    pub discrepancies: Option<PathBuf>,
    /// Most events in one Ingest.Append (a subject with more is split).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    #[command(flatten)]
    pub tls: ServerTls,
}

/// `myolog mapping`.
#[derive(Debug, Clone, Args)]
pub struct MappingArgs {
    #[command(subcommand)]
    pub command: MappingCommand,
}

/// The mapping subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum MappingCommand {
    /// Write a skeleton mapping file (every event and item as a commented line, nothing mapped)
    /// from an ODM file's MetaDataVersion or a REDCap data dictionary.
    Init(MappingInitArgs),
}

/// `myolog mapping init`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["from_odm", "from_redcap_metadata"])))]
pub struct MappingInitArgs {
    /// An ODM file with a Study/MetaDataVersion (REDCap, OpenClinica and Rave exports have one).
    #[arg(long, value_name = "FILE")]
    pub from_odm: Option<PathBuf>,
    /// A REDCap data dictionary as the API's `content=metadata` JSON.
    #[arg(long, value_name = "FILE")]
    pub from_redcap_metadata: Option<PathBuf>,
    /// The REDCap project's events (`content=event` JSON) of a longitudinal project.
    #[arg(long, value_name = "FILE", requires = "from_redcap_metadata")]
    pub redcap_events: Option<PathBuf>,
    /// The REDCap project's name for its StudyOID (`Project.<name>`); default: the file's stem.
    #[arg(long, requires = "from_redcap_metadata")]
    pub project: Option<String>,
    /// Write the skeleton here (refused if the file exists); default: stdout.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// Why an import could not run (nothing was stored, or the run stopped and may be resumed).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file (mapping, ledger, input or output) that cannot be read, written or understood.
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{path}: {error}; nothing was sent")]
    Odm {
        path: PathBuf,
        error: myolog_edc::odm::OdmError,
    },
    #[error("{0}")]
    Connect(#[from] crate::client::ConnectError),
    #[error("{0}")]
    Token(#[from] crate::client::InvalidToken),
    #[error("event {event_id} cannot be sent: {message}")]
    Outbound { event_id: String, message: String },
    #[error(
        "the server stopped answering ({0}); what was acknowledged is stored and recorded in the \
         ledger: run the same import again to send the rest"
    )]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

impl From<OutboundError> for ImportError {
    fn from(error: OutboundError) -> Self {
        ImportError::Outbound {
            event_id: error.event_id,
            message: error.message,
        }
    }
}

fn read_text(path: &Path) -> Result<String, ImportError> {
    std::fs::read_to_string(path).map_err(|source| {
        ImportError::File(FileError::Read {
            path: path.to_path_buf(),
            source,
        })
    })
}

/// A change the server refused (the rest of the import went in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub event_id: String,
    /// The source key paths of the change.
    pub sources: Vec<String>,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub subjects: usize,
    pub visits: usize,
    pub planned: usize,
    /// Stored by this run.
    pub sent: usize,
    /// Already in the log (acknowledged as duplicates).
    pub already_present: usize,
    /// Of `sent`: corrections and retractions.
    pub corrections: usize,
    pub retractions: usize,
    /// Unchanged since the ledger's last import (not sent at all).
    pub unchanged: usize,
    pub context_rows: usize,
    pub discrepancies: usize,
    pub refused: Vec<Refused>,
    pub dry_run: bool,
}

impl ImportSummary {
    /// 0: everything imported; 2: imported, but some records were refused (discrepancies or the
    /// server's rejections) and are listed.
    pub fn exit_code(&self) -> u8 {
        if self.discrepancies == 0 && self.refused.is_empty() {
            0
        } else {
            2
        }
    }

    /// The summary lines printed after an import.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let verb = if self.dry_run { "planned" } else { "imported" };
        out.push_str(&format!(
            "{verb}: {} subjects, {} visits, {} changes planned\n",
            self.subjects, self.visits, self.planned
        ));
        if !self.dry_run {
            out.push_str(&format!(
                "events sent: {} stored ({} corrections, {} retractions), {} already present\n",
                self.sent, self.corrections, self.retractions, self.already_present
            ));
        }
        out.push_str(&format!(
            "unchanged since the last import: {}; context rows (never applied): {}\n",
            self.unchanged, self.context_rows
        ));
        out.push_str(&format!(
            "discrepancies: {} (records not imported; see the CSV)\n",
            self.discrepancies
        ));
        out.push_str(&format!("rejected by the server: {}\n", self.refused.len()));
        for refused in &self.refused {
            let sources = if refused.sources.is_empty() {
                String::new()
            } else {
                format!(" from {}", refused.sources.join(", "))
            };
            out.push_str(&format!(
                "  {}{sources}: {}\n",
                refused.event_id, refused.reason
            ));
        }
        out
    }
}

/// Plans a whole ODM file against the ledger (which the plan updates).
pub fn plan_file(
    file: &Path,
    mapping: &Mapping,
    ledger: &mut SentLedger,
) -> Result<Plan, ImportError> {
    let reader = std::fs::File::open(file).map_err(|source| {
        ImportError::File(FileError::Read {
            path: file.to_path_buf(),
            source,
        })
    })?;
    myolog_edc::plan::plan(OdmReader::new(BufReader::new(reader)), mapping, ledger).map_err(
        |error| ImportError::Odm {
            path: file.to_path_buf(),
            error,
        },
    )
}

fn progress_bar(total: usize) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    // The template is a constant; should it ever fail to parse, the default style is kept.
    if let Ok(style) = ProgressStyle::with_template(
        "import [{bar:40}] {human_pos}/{human_len} events ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

/// Runs `myolog import odm` with the caller's token (the command reads MYOLOG_TOKEN): the summary on success (its exit code says whether records were
/// refused), an error when nothing could be done or the server stopped answering.
pub async fn import_odm(
    args: &ImportOdmArgs,
    bearer: Bearer,
    out: &mut impl Write,
) -> Result<ImportSummary, ImportError> {
    let mapping = load_mapping(&args.mapping)?;
    let ledger_path = args
        .ledger
        .clone()
        .unwrap_or_else(|| default_ledger_path(&args.mapping));
    let previous = load_ledger(&ledger_path)?;
    let mut ledger = previous.clone();
    let plan = plan_file(&args.file, &mapping, &mut ledger)?;
    let events = wire_events(&plan.changes)?;
    let mut subjects = BTreeSet::new();
    let mut visits = BTreeSet::new();
    for event in &events {
        subjects.insert((event.study_id.clone(), event.subject_id.clone()));
        if !event.visit_id.is_empty() {
            visits.insert((
                event.study_id.clone(),
                event.subject_id.clone(),
                event.visit_id.clone(),
            ));
        }
    }
    let mut summary = ImportSummary {
        subjects: subjects.len(),
        visits: visits.len(),
        planned: plan.changes.len(),
        unchanged: plan.unchanged,
        context_rows: plan.context_rows,
        discrepancies: plan.discrepancies.len(),
        dry_run: args.dry_run,
        ..ImportSummary::default()
    };
    let csv_error = |path: &Path, source| {
        ImportError::File(FileError::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    match (&args.discrepancies, args.dry_run) {
        (Some(path), _) => {
            let mut csv = Vec::new();
            myolog_edc::discrepancy::write_csv(&mut csv, &plan.discrepancies)
                .map_err(|source| csv_error(path, source))?;
            write_atomically(path, &csv)?;
        }
        (None, true) => {
            myolog_edc::discrepancy::write_csv(out, &plan.discrepancies)
                .map_err(|source| csv_error(Path::new("stdout"), source))?;
        }
        (None, false) => {}
    }
    if args.dry_run {
        return Ok(summary);
    }
    let addr = args
        .addr
        .as_deref()
        .ok_or_else(|| ImportError::Other("--addr is required unless --dry-run".into()))?;
    let channel = args.tls.connect(addr).await?;
    let mut client = IngestClient::with_interceptor(channel, bearer);
    let bar = progress_bar(events.len());
    let outcome = send_changes(
        &mut client,
        &plan.changes,
        &events,
        usize::from(args.batch_size),
        Retry::IMPORT,
        |done| {
            if let Some(bar) = &bar {
                bar.inc(done as u64);
            }
        },
    )
    .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    outcome.revert_unsent(&mut ledger, &previous, &plan.changes);
    write_atomically(&ledger_path, ledger.to_json().as_bytes())?;
    summary.sent = outcome.sent;
    summary.already_present = outcome.already_present;
    summary.corrections = outcome.corrections;
    summary.retractions = outcome.retractions;
    summary.refused = outcome
        .refused
        .iter()
        .map(|(index, reason)| Refused {
            event_id: plan.changes[*index].event_id().to_string(),
            sources: plan.changes[*index]
                .sources()
                .iter()
                .map(ToString::to_string)
                .collect(),
            reason: reason.clone(),
        })
        .collect();
    if let Some((_, reason)) = outcome.stopped {
        return Err(ImportError::Unavailable(reason));
    }
    Ok(summary)
}

/// Runs `myolog mapping init`: the skeleton to `--out` (never over an existing file) or stdout.
pub fn mapping_init(args: &MappingInitArgs, out: &mut impl Write) -> Result<(), ImportError> {
    let dictionary = match (&args.from_odm, &args.from_redcap_metadata) {
        (Some(path), _) => {
            let file = std::fs::File::open(path).map_err(|source| {
                ImportError::File(FileError::Read {
                    path: path.clone(),
                    source,
                })
            })?;
            myolog_edc::init::dictionary_from_odm(BufReader::new(file)).map_err(|error| {
                ImportError::Odm {
                    path: path.clone(),
                    error,
                }
            })?
        }
        (None, Some(path)) => {
            let metadata = myolog_edc::redcap::RedcapMetadata::from_json(&read_text(path)?)
                .map_err(|error| ImportError::Other(format!("{}: {error}", path.display())))?;
            let events = match &args.redcap_events {
                Some(events) => redcap_event_names(events)?,
                None => Vec::new(),
            };
            let project = args.project.clone().unwrap_or_else(|| {
                path.file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "project".into())
            });
            myolog_edc::init::dictionary_from_redcap(&metadata, &project, &events)
        }
        (None, None) => {
            return Err(ImportError::Other(
                "give --from-odm FILE or --from-redcap-metadata FILE".into(),
            ));
        }
    };
    let skeleton = myolog_edc::init::skeleton(&dictionary);
    match &args.out {
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|source| {
                    ImportError::File(FileError::Write {
                        path: path.clone(),
                        source,
                    })
                })?;
            file.write_all(skeleton.as_bytes()).map_err(|source| {
                ImportError::File(FileError::Write {
                    path: path.clone(),
                    source,
                })
            })?;
        }
        None => out.write_all(skeleton.as_bytes()).map_err(|source| {
            ImportError::File(FileError::Write {
                path: PathBuf::from("stdout"),
                source,
            })
        })?,
    }
    Ok(())
}

/// The unique event names of REDCap's `content=event` JSON (`[{"unique_event_name": ...}, ...]`).
pub fn redcap_event_names(path: &Path) -> Result<Vec<String>, ImportError> {
    let text = read_text(path)?;
    parse_redcap_events(&text)
        .map_err(|message| ImportError::Other(format!("{}: {message}", path.display())))
}

/// [`redcap_event_names`] on text.
pub fn parse_redcap_events(text: &str) -> Result<Vec<String>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|error| format!("not valid JSON: {error}"))?;
    let Some(list) = value.as_array() else {
        return Err("expected a JSON array of events".into());
    };
    list.iter()
        .enumerate()
        .map(|(index, event)| {
            event
                .get("unique_event_name")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("[{index}].unique_event_name: expected text"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redcap_events_are_read_or_refused_by_position() {
        assert_eq!(
            parse_redcap_events(
                r#"[{"unique_event_name":"baseline_arm_1","event_name":"Baseline"}]"#
            ),
            Ok(vec!["baseline_arm_1".to_string()])
        );
        assert_eq!(
            parse_redcap_events(r#"[{"unique_event_name":"a"},{"event_name":"b"}]"#),
            Err("[1].unique_event_name: expected text".to_string())
        );
        assert!(parse_redcap_events("{}").is_err());
    }

    #[test]
    fn the_exit_code_says_whether_records_were_refused() {
        let mut summary = ImportSummary::default();
        assert_eq!(summary.exit_code(), 0);
        summary.discrepancies = 1;
        assert_eq!(summary.exit_code(), 2);
        summary.discrepancies = 0;
        summary.refused.push(Refused {
            event_id: "e".into(),
            sources: vec![],
            reason: "r".into(),
        });
        assert_eq!(summary.exit_code(), 2);
    }
}
