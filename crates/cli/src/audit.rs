//! The audit commands of the `myolog` binary: `replay`, `export` (also `--package`), `report` and
//! `verify --package`. Each opens the log
//! read-only in spirit (it never appends), does its work through `myolog_audit::replay` and friends, and
//! turns every [`AuditError`] into a message on stderr and a non-zero exit code.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use myolog_storage::{EventLog, LogOptions};

use myolog_audit::package::{self, PackageError, PackageFormat, PackageOptions};
use myolog_audit::progress::Progress;
use myolog_audit::replay::{self, AsOf, Format};
use myolog_audit::table::parse_rfc3339;
use myolog_audit::{AuditError, adam, eligibility, endpoints, export, report};

/// Exit code of a failed audit command (a damaged log from `verify` exits 3).
const FAILURE: u8 = 1;

/// The point of the log to look at; the head by default.
#[derive(Debug, Clone, Args)]
pub struct AsOfArgs {
    /// Only the events with sequence <= N.
    #[arg(long, value_name = "N", conflicts_with = "as_of_time")]
    pub as_of_seq: Option<u64>,
    /// Only the events recorded at or before this RFC 3339 time, e.g. 2026-11-25T14:30:00Z.
    #[arg(long, value_name = "T")]
    pub as_of_time: Option<String>,
}

impl AsOfArgs {
    /// The parsed point.
    pub fn as_of(&self) -> Result<AsOf, AuditError> {
        match (&self.as_of_seq, &self.as_of_time) {
            (Some(seq), _) => Ok(AsOf::Sequence(*seq)),
            (None, Some(text)) => parse_rfc3339(text)
                .map(AsOf::Time)
                .ok_or_else(|| AuditError::BadTime(text.clone())),
            (None, None) => Ok(AsOf::Head),
        }
    }
}

/// Output formats of `replay` and `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// JSON Lines: one object per line.
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
}

impl From<OutputFormat> for Format {
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Jsonl => Format::Jsonl,
            OutputFormat::Csv => Format::Csv,
        }
    }
}

/// `myolog replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Directory of the event log.
    #[arg(long, env = "MYOLOG_DATA", default_value = "./myolog-data")]
    pub data: PathBuf,
    #[command(flatten)]
    pub as_of: AsOfArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: OutputFormat,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the cohort statistics (per study x follow-up visit, one record over every subject,
    /// then one per arm) instead of the subject x visit outcomes.
    #[arg(long)]
    pub cohort: bool,
    /// Write the protocol's endpoints instead: one record per subject x endpoint (with
    /// `--cohort`: one table per study x endpoint), each naming the protocol version it used.
    #[arg(long, conflicts_with = "eligibility")]
    pub endpoints: bool,
    /// Write the protocol's eligibility instead: one record per subject x criterion with the
    /// values each rule saw (with `--cohort`: the count table per study x criterion).
    #[arg(long)]
    pub eligibility: bool,
}

/// What `myolog export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum What {
    /// Every event: who, when, what, why, what it supersedes.
    Audit,
    /// The ADaM-style analysis dataset: one row per subject x visit x parameter.
    Adam,
}

/// Formats of `myolog export`: one of `jsonl`/`csv` for `--what`, any of `xpt`/`dataset-json`/`csv`
/// for `--package`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines (`--what` only).
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// SAS XPORT v5, `.xpt` (`--package` only).
    Xpt,
    /// CDISC Dataset-JSON 1.1, `.json` (`--package` only).
    DatasetJson,
    /// CDISC Dataset-JSON 1.1 as NDJSON, `.ndjson`: metadata on line 1, one row a line (`--package`
    /// only; not in the default set).
    DatasetNdjson,
}

impl ExportFormat {
    /// The one table format of `--what audit|adam`: CSV unless given.
    fn table(formats: &[ExportFormat]) -> Result<Format, AuditError> {
        match formats {
            [] | [ExportFormat::Csv] => Ok(Format::Csv),
            [ExportFormat::Jsonl] => Ok(Format::Jsonl),
            _ => Err(AuditError::Package(
                "--what writes one format, csv or jsonl; xpt, dataset-json and dataset-ndjson are formats of --package"
                    .into(),
            )),
        }
    }

    /// The dataset formats of `--package`: all three unless given.
    fn package(formats: &[ExportFormat]) -> Result<Vec<PackageFormat>, AuditError> {
        if formats.is_empty() {
            return Ok(PackageFormat::ALL.to_vec());
        }
        formats
            .iter()
            .map(|format| match format {
                ExportFormat::Xpt => Ok(PackageFormat::Xpt),
                ExportFormat::DatasetJson => Ok(PackageFormat::DatasetJson),
                ExportFormat::DatasetNdjson => Ok(PackageFormat::DatasetNdjson),
                ExportFormat::Csv => Ok(PackageFormat::Csv),
                ExportFormat::Jsonl => Err(AuditError::Package(
                    "jsonl is not a package format: give xpt, dataset-json, dataset-ndjson or csv"
                        .into(),
                )),
            })
            .collect()
    }
}

/// `myolog export --package`: the analysis and tabulation package.
#[derive(Debug, Clone, Default, Args)]
pub struct PackageArgs {
    /// Write the analysis and tabulation package (ADSL, ADEFF, DM, TA/TV/TI/TS, define.xml,
    /// adrg.md, manifest.json) into this directory instead of one dataset.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["what", "out"])]
    pub package: Option<PathBuf>,
    /// The study to export, when the log holds more than one.
    #[arg(long, requires = "package")]
    pub study: Option<String>,
    /// Export a blinded study's arms before it is unblinded (needs --reason; recorded in the
    /// manifest).
    #[arg(long, requires_all = ["package", "reason"])]
    pub unblinded_export: bool,
    /// Why the blinded study's arms are exported early.
    #[arg(long, requires = "unblinded_export")]
    pub reason: Option<String>,
}

impl PackageArgs {
    fn options(&self, formats: Vec<PackageFormat>) -> PackageOptions {
        PackageOptions {
            study: self.study.clone(),
            formats,
            unblinded_reason: if self.unblinded_export {
                Some(self.reason.clone().unwrap_or_default())
            } else {
                None
            },
        }
    }
}

/// `myolog export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Directory of the event log.
    #[arg(long, env = "MYOLOG_DATA", default_value = "./myolog-data")]
    pub data: PathBuf,
    /// The audit trail or the analysis dataset (or give --package).
    #[arg(long, value_enum, required_unless_present = "package")]
    pub what: Option<What>,
    /// Output format: csv (default) or jsonl with --what; with --package any of xpt,
    /// dataset-json, csv (repeat or separate with commas), all three by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub format: Vec<ExportFormat>,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub as_of: AsOfArgs,
    #[command(flatten)]
    pub package: PackageArgs,
}

/// `myolog report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Directory of the event log.
    #[arg(long, env = "MYOLOG_DATA", default_value = "./myolog-data")]
    pub data: PathBuf,
    /// Directory to write `report.html` into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub as_of: AsOfArgs,
}

/// Opens an existing log (never creates one: a typo in `--data` is an error, not an empty log).
pub fn open_log(data: &Path) -> Result<EventLog, AuditError> {
    let options = LogOptions {
        create_if_missing: false,
        ..Default::default()
    };
    EventLog::open(data, options).map_err(AuditError::Open)
}

fn output(out: Option<&Path>) -> Result<Box<dyn Write>, AuditError> {
    Ok(match out {
        Some(path) => Box::new(BufWriter::new(File::create(path).map_err(|source| {
            AuditError::Write {
                path: path.to_path_buf(),
                source,
            }
        })?)),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    })
}

fn exit(command: &str, result: Result<(), AuditError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `myolog replay | head`: the reader has what it wanted; not an error worth a message.
        Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("myolog {command}: {error}");
            ExitCode::from(FAILURE)
        }
    }
}

fn replay_log(data: &Path, as_of: &AsOfArgs, label: &str) -> Result<replay::Replay, AuditError> {
    let as_of = as_of.as_of()?;
    let log = open_log(data)?;
    let mut progress = Progress::for_terminal(log.head().seq, label);
    let replayed = replay::project(&log, as_of, &mut progress)?;
    progress.finish();
    Ok(replayed)
}

/// `myolog replay`.
pub fn run_replay(args: &ReplayArgs) -> ExitCode {
    let result = (|| {
        let replayed = replay_log(&args.data, &args.as_of, "replay")?;
        // The data lock as of the replay point, on stderr so the JSONL/CSV stays one outcome a row.
        for (study, state) in &replayed.projection.studies {
            if let Some(lock) = &state.lock {
                eprintln!(
                    "myolog replay: study {study} is {} (as of sequence {})",
                    lock.describe(),
                    replayed.last_sequence
                );
            }
        }
        let mut out = output(args.out.as_deref())?;
        if args.eligibility && args.cohort {
            eligibility::write_eligibility_tables(&replayed, args.format.into(), &mut out)
        } else if args.eligibility {
            eligibility::write_subject_eligibility(&replayed, args.format.into(), &mut out)
        } else if args.endpoints && args.cohort {
            endpoints::write_endpoint_tables(&replayed, args.format.into(), &mut out)
        } else if args.endpoints {
            endpoints::write_subject_endpoints(&replayed, args.format.into(), &mut out)
        } else if args.cohort {
            replay::write_cohorts(&replayed, args.format.into(), &mut out)
        } else {
            replayed
                .write_all_outcomes(args.format.into(), &mut out)
                .map(drop)
        }
    })();
    exit("replay", result)
}

/// `myolog export`.
pub fn run_export(args: &ExportArgs) -> ExitCode {
    if let Some(dir) = &args.package.package {
        return exit("export", export_package(args, dir));
    }
    let result = (|| match args.what.unwrap_or(What::Adam) {
        What::Audit => {
            let format = ExportFormat::table(&args.format)?;
            let log = open_log(&args.data)?;
            let mut progress = Progress::for_terminal(log.head().seq, "export");
            let mut out = output(args.out.as_deref())?;
            export::write_audit_trail(&log, args.as_of.as_of()?, format, &mut out, &mut progress)?;
            Ok(())
        }
        What::Adam => {
            let format = ExportFormat::table(&args.format)?;
            let replayed = replay_log(&args.data, &args.as_of, "export")?;
            let mut out = output(args.out.as_deref())?;
            adam::write_dataset(&adam::rows(&replayed), format, &mut out)
        }
    })();
    exit("export", result)
}

/// Package errors as audit errors: the message is the package's own.
fn package_error(error: PackageError) -> AuditError {
    AuditError::Package(error.to_string())
}

/// `myolog export --package DIR`.
fn export_package(args: &ExportArgs, dir: &Path) -> Result<(), AuditError> {
    let options = args.package.options(ExportFormat::package(&args.format)?);
    let replayed = replay_log(&args.data, &args.as_of, "export")?;
    let files = package::build(&replayed, &options).map_err(package_error)?;
    package::write(dir, &files).map_err(package_error)?;
    eprintln!(
        "wrote {} files to {} (log as of sequence {})",
        files.len(),
        dir.display(),
        replayed.last_sequence
    );
    Ok(())
}

/// `myolog verify --package DIR --data LOG`: rebuilds the package from the log at the point its
/// manifest names and compares every file. Exit 0 when identical, 3 naming each differing file.
pub fn verify_package(data: &Path, dir: &Path) -> ExitCode {
    let result = (|| {
        let path = dir.join(package::manifest::MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|source| {
            package_error(PackageError::Read {
                path: path.clone(),
                source,
            })
        })?;
        let (sequence, options) =
            package::manifest::Manifest::options_of(&bytes).map_err(package_error)?;
        let as_of = AsOfArgs {
            as_of_seq: Some(sequence),
            as_of_time: None,
        };
        let replayed = replay_log(data, &as_of, "verify")?;
        let rebuilt = package::build(&replayed, &options).map_err(package_error)?;
        package::compare(dir, &rebuilt).map_err(package_error)
    })();
    match result {
        Ok(differences) if differences.is_empty() => {
            println!(
                "ok: package {} matches the log ({} files)",
                dir.display(),
                std::fs::read_dir(dir).map_or(0, Iterator::count)
            );
            ExitCode::SUCCESS
        }
        Ok(differences) => {
            for difference in &differences {
                println!("DIFFERS: {difference}");
            }
            ExitCode::from(3)
        }
        Err(error) => {
            eprintln!("myolog verify: {error}");
            ExitCode::from(FAILURE)
        }
    }
}

/// `myolog report`.
pub fn run_report(args: &ReportArgs) -> ExitCode {
    let result = (|| {
        let replayed = replay_log(&args.data, &args.as_of, "report")?;
        std::fs::create_dir_all(&args.out).map_err(|source| AuditError::Write {
            path: args.out.clone(),
            source,
        })?;
        let path = args.out.join("report.html");
        let html = report::render(&replayed);
        std::fs::write(&path, html).map_err(|source| AuditError::Write {
            path: path.clone(),
            source,
        })?;
        eprintln!("wrote {}", path.display());
        Ok(())
    })();
    exit("report", result)
}
