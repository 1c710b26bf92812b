//! `myolog study validate | register | export`: a protocol file checked, sent to a running server
//! (StudyRegistered, or ProtocolAmended with `--amend`), or written out as the SDTM trial design
//! datasets. The domain parses and validates (it does no IO); this module reads and writes the files
//! and talks gRPC, so a protocol author gets the same errors here as the server gives on ingest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use myolog_domain::protocol::{Protocol, StudyData, TdmOptions, check_trial_design};
use myolog_proto::v1 as pb;
use pb::ingest_client::IngestClient;
use tonic_types::StatusExt;

use crate::client::Bearer;

/// `myolog study`.
#[derive(Debug, Clone, Args)]
pub struct StudyArgs {
    #[command(subcommand)]
    pub command: StudyCommand,
}

/// The study subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum StudyCommand {
    /// Check a protocol file: its summary, or every error (file, key path, expected) one per line;
    /// then the SDTM trial design check of its datasets, each finding with the rule it broke.
    Validate {
        /// The protocol file (TOML).
        file: PathBuf,
        /// An event log: the check then sees TS with SSTDTC (earliest informed consent), ACTSUB and
        /// the data cut-off filled from it, as `study export --data` writes them.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Send a protocol file to a running server: StudyRegistered, or ProtocolAmended with --amend.
    /// The token, if the server needs one, comes from MYOLOG_TOKEN.
    Register(RegisterArgs),
    /// Write the SDTM trial design datasets TA, TE, TV, TI and TS as CSV files into a directory.
    Export {
        /// The protocol file (TOML).
        file: PathBuf,
        /// Directory to write ta.csv, te.csv, tv.csv, ti.csv and ts.csv into (created if missing).
        #[arg(long)]
        tdm: PathBuf,
        /// An event log: TS then gets SSTDTC (earliest informed consent), ACTSUB and the data cut-off.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Also export the TS values the protocol marks as assumptions [D]; they are named either way.
        #[arg(long)]
        with_assumptions: bool,
    },
}

/// `myolog study register`.
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    /// The protocol file (TOML).
    pub file: PathBuf,
    /// Server URL (`http://host:port`) or `host:port`.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// Study id in the log (default: the protocol's study id). Another id registers the protocol
    /// under it, recorded in the event (`protocol_study_id`), and outcomes name both ids.
    #[arg(long)]
    pub study: Option<String>,
    /// Send the file as an amendment (ProtocolAmended) of the study's registered protocol.
    #[arg(long)]
    pub amend: bool,
    /// Clinical date of the event, YYYY-MM-DD (default: today, UTC).
    #[arg(long)]
    pub date: Option<String>,
    /// Event id (default `<study>.protocol.v<version>`, so sending the same file again is a retry).
    #[arg(long)]
    pub event_id: Option<String>,
    #[command(flatten)]
    pub tls: crate::client::ServerTls,
}

/// Why a study command failed (printed on stderr; exit 1).
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every protocol error, one per line.
    #[error("{0}")]
    Protocol(#[from] myolog_domain::protocol::ProtocolErrors),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("MYOLOG_TOKEN: {0}")]
    Token(#[from] crate::client::InvalidToken),
    #[error(transparent)]
    Connect(#[from] crate::client::ConnectError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The server's rejection, with each field violation on its own line.
    #[error("{0}")]
    Rejected(String),
    #[error("reading the log: {0}")]
    Log(#[from] myolog_audit::AuditError),
    #[error("the log has no study registered with protocol {0}")]
    NoStudy(String),
}

/// `study export` options beyond the file and directory.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// The event log to take SSTDTC, ACTSUB and the data cut-off from.
    pub data: Option<PathBuf>,
    /// Export TS values the protocol marks as assumptions.
    pub with_assumptions: bool,
}

/// Runs a study command, printing its result; exit 1 on any error.
pub fn run(args: &StudyArgs) -> ExitCode {
    let mut stdout = std::io::stdout();
    let result = match &args.command {
        StudyCommand::Validate { file, data } => validate_with(file, data.as_deref(), &mut stdout),
        StudyCommand::Export {
            file,
            tdm,
            data,
            with_assumptions,
        } => export_with(
            file,
            tdm,
            &ExportOptions {
                data: data.clone(),
                with_assumptions: *with_assumptions,
            },
            &mut stdout,
        ),
        StudyCommand::Register(register_args) => {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(register(register_args, &mut stdout)),
                Err(error) => Err(StudyError::Runtime(error)),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// Reads and validates a protocol file. The file name in errors is the path as given.
pub fn load(file: &Path) -> Result<(Protocol, String), StudyError> {
    let text = std::fs::read_to_string(file).map_err(|source| StudyError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let protocol = Protocol::from_toml(&file.display().to_string(), &text)?;
    Ok((protocol, text))
}

/// `myolog study validate FILE`: the protocol's summary on `out`, the TS values that are assumptions,
/// then the SDTM trial design check of the datasets the protocol alone gives (a finding is reported,
/// not an invalid protocol: SSTDTC, for one, can only come from the data).
pub fn validate(file: &Path, out: &mut impl Write) -> Result<(), StudyError> {
    validate_with(file, None, out)
}

/// `myolog study validate FILE [--data LOG]`: as [`validate`], with the data-dependent TS values
/// (SSTDTC, ACTSUB, DCUTDTC) filled from the log before the check, so a log whose subjects have
/// consent dates passes the SSTDTC rule and one without them still fails it, naming the rule.
pub fn validate_with(
    file: &Path,
    data: Option<&Path>,
    out: &mut impl Write,
) -> Result<(), StudyError> {
    let (protocol, _) = load(file)?;
    let study_data = match data {
        Some(log) => Some(study_data(&protocol, log)?),
        None => None,
    };
    let from_log = study_data.as_ref().map(|data| {
        format!(
            "TS values from the log: {} subject(s), earliest informed consent {}, data cut-off {}",
            data.subjects,
            data.earliest_consent
                .map_or_else(|| "none recorded".to_string(), |date| date.to_string()),
            data.cutoff
                .as_ref()
                .map_or_else(|| "none".to_string(), |(date, _)| date.to_string()),
        )
    });
    // The fullest export the file gives: assumption-valued parameters are checked too, and named.
    let datasets = protocol.trial_design_with(&TdmOptions {
        include_assumptions: true,
        data: study_data,
    });
    let findings = check_trial_design(&datasets);
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(out, "{}: valid", file.display())?;
        writeln!(out, "{}", protocol.summary())?;
        if let Some(from_log) = &from_log {
            writeln!(out, "{from_log}")?;
        }
        if !datasets.assumptions_included.is_empty() {
            writeln!(
                out,
                "TS values that are assumptions [D] (exported only with --with-assumptions): {}",
                datasets.assumptions_included.join(", ")
            )?;
        }
        if findings.is_empty() {
            writeln!(out, "SDTM trial design check: no findings")?;
        } else {
            writeln!(
                out,
                "SDTM trial design check: {} finding(s)",
                findings.len()
            )?;
            for finding in &findings {
                writeln!(out, "  {finding}")?;
            }
        }
        Ok(())
    };
    write(out).map_err(|source| StudyError::Write {
        path: PathBuf::from("<stdout>"),
        source,
    })
}

/// What the log says about the study of `protocol` for TS: the earliest informed consent, the
/// number of enrolled subjects, and the latest clinical date as the data cut-off.
pub fn study_data(protocol: &Protocol, log: &Path) -> Result<StudyData, StudyError> {
    let log = myolog_audit::open_log(log)?;
    let replay = myolog_audit::replay::project(
        &log,
        myolog_audit::replay::AsOf::Head,
        &mut myolog_audit::progress::Progress::hidden(),
    )?;
    let own = &protocol.study().id;
    let study = replay
        .projection
        .studies
        .iter()
        .find(|(id, study)| {
            id.as_str() == own
                || study
                    .protocol
                    .as_ref()
                    .is_some_and(|history| &history.current().study().id == own)
        })
        .map(|(_, study)| study)
        .ok_or_else(|| StudyError::NoStudy(protocol.reference().to_string()))?;
    let subjects = study.subjects.values();
    let earliest_consent = subjects
        .clone()
        .filter_map(|subject| subject.facts.informed_consent_date())
        .min();
    let latest = subjects
        .clone()
        .flat_map(|subject| {
            let visits = subject.visits.values().filter_map(|visit| visit.last_date);
            let doses = subject.doses.iter().map(|(date, _)| *date);
            std::iter::once(subject.enrolled_on)
                .chain(visits)
                .chain(doses)
        })
        .max();
    Ok(StudyData {
        earliest_consent,
        subjects: u32::try_from(study.subjects.len()).unwrap_or(u32::MAX),
        cutoff: latest.map(|date| {
            (
                date,
                format!(
                    "Latest clinical date in the event log up to sequence {}",
                    replay.last_sequence
                ),
            )
        }),
    })
}

/// `myolog study export FILE --tdm DIR`: the datasets from the protocol alone, assumptions left out.
pub fn export(file: &Path, dir: &Path, out: &mut impl Write) -> Result<(), StudyError> {
    export_with(file, dir, &ExportOptions::default(), out)
}

/// `myolog study export FILE --tdm DIR [--data LOG] [--with-assumptions]`: ta.csv, te.csv, tv.csv,
/// ti.csv, ts.csv; each path written on `out`, then which TS parameters are assumptions and whether
/// they were exported.
pub fn export_with(
    file: &Path,
    dir: &Path,
    options: &ExportOptions,
    out: &mut impl Write,
) -> Result<(), StudyError> {
    let (protocol, _) = load(file)?;
    let data = match &options.data {
        Some(log) => Some(study_data(&protocol, log)?),
        None => None,
    };
    let datasets = protocol.trial_design_with(&TdmOptions {
        include_assumptions: options.with_assumptions,
        data,
    });
    std::fs::create_dir_all(dir).map_err(|source| StudyError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    if !datasets.assumptions_included.is_empty() {
        let _ = writeln!(
            out,
            "TS values that are assumptions [D], exported as asked: {}",
            datasets.assumptions_included.join(", ")
        );
    }
    if !datasets.assumptions_left_out.is_empty() {
        let _ = writeln!(
            out,
            "TS values that are assumptions [D], left out (--with-assumptions exports them): {}",
            datasets.assumptions_left_out.join(", ")
        );
    }
    for (name, csv) in datasets.to_csv_files() {
        let path = dir.join(&name);
        std::fs::write(&path, csv).map_err(|source| StudyError::Write {
            path: path.clone(),
            source,
        })?;
        let _ = writeln!(out, "wrote {}", path.display());
    }
    Ok(())
}

/// The StudyRegistered (or, with `amend`, ProtocolAmended) event that carries a protocol file.
pub fn protocol_event(
    protocol: &Protocol,
    file_name: &str,
    toml: &str,
    study: &str,
    amend: bool,
    clinical_date: &str,
    event_id: &str,
) -> pb::Event {
    let body = if amend {
        pb::event::Body::ProtocolAmended(pb::ProtocolAmended {
            protocol_file: file_name.to_string(),
            protocol_toml: toml.to_string(),
        })
    } else {
        // Title, population and baseline visit are taken from the protocol by the server. A study
        // id other than the protocol's (`--study`) is the explicit choice the server requires to
        // register the protocol under it; under its own id the event stays as it always was.
        let own = &protocol.study().id;
        pb::event::Body::StudyRegistered(pb::StudyRegistered {
            title: protocol.study().title.clone(),
            protocol_file: file_name.to_string(),
            protocol_toml: toml.to_string(),
            protocol_study_id: if study == own {
                String::new()
            } else {
                own.clone()
            },
            ..Default::default()
        })
    };
    pb::Event {
        source_audit: None,
        event_id: event_id.to_string(),
        study_id: study.to_string(),
        subject_id: String::new(),
        visit_id: String::new(),
        clinical_date: clinical_date.to_string(),
        body: Some(body),
    }
}

/// `myolog study register FILE --addr URL [--amend]`: one Append; prints the acknowledgement.
pub async fn register(args: &RegisterArgs, out: &mut impl Write) -> Result<(), StudyError> {
    let (protocol, toml) = load(&args.file)?;
    let file_name = args.file.file_name().map_or_else(
        || args.file.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let study = args
        .study
        .clone()
        .unwrap_or_else(|| protocol.study().id.clone());
    let event_id = args
        .event_id
        .clone()
        .unwrap_or_else(|| format!("{study}.protocol.v{}", protocol.version()));
    let date = args.date.clone().unwrap_or_else(today_utc);
    let event = protocol_event(
        &protocol, &file_name, &toml, &study, args.amend, &date, &event_id,
    );
    let channel = args.tls.connect(&args.addr).await?;
    let mut client = IngestClient::with_interceptor(channel, Bearer::from_env()?);
    let response = client
        .append(pb::SubmitRequest {
            batch_id: event_id.clone(),
            events: vec![event],
        })
        .await
        .map_err(|status| StudyError::Rejected(rejection_text(&status)))?
        .into_inner();
    let what = if args.amend { "amended" } else { "registered" };
    for ack in &response.acks {
        let _ = writeln!(
            out,
            "{what} study {study} with protocol {} ({file_name}): event {} sequence {}{}",
            protocol.reference(),
            ack.event_id,
            ack.sequence,
            if ack.duplicate {
                " (already in the log)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// A rejection as text: the status, then each field violation on its own line.
fn rejection_text(status: &tonic::Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(bad_request) = status.get_details_bad_request() {
        for violation in bad_request.field_violations {
            text.push_str(&format!(
                "\n  {}: {}",
                violation.field, violation.description
            ));
        }
    }
    text
}

/// Today's date in UTC as YYYY-MM-DD.
fn today_utc() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    myolog_synth::date_from_days(i64::try_from(seconds / 86_400).unwrap_or(0))
}
