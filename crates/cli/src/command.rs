//! The `myolog` command line: `serve`, `healthcheck`, `score`, `verify`, `migrate`, `demo`,
//! `outcomes`, the audit commands `replay`, `export` and `report` ([`crate::audit`]), `token` and
//! `study`. Every flag of `serve` also reads a `MYOLOG_*` environment variable.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::telemetry::{self, LogFormat};

/// Myolog: dermatomyositis trial outcomes from a tamper-evident event log.
#[derive(Debug, Parser)]
// A fixed width, so `--help` and docs/reference/cli.md are the same text on every terminal.
#[command(name = "myolog", version, about, term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC service (Ingest, Outcomes, Audit, health, reflection).
    Serve(Box<crate::serve::ServeArgs>),
    /// Exit 0 only if the server at --addr reports SERVING (grpc.health.v1).
    Healthcheck(HealthcheckArgs),
    /// Score JSON cases from stdin (one object, or JSON Lines); one JSON result per case on stdout.
    Score,
    /// Walk the log's hash chain; non-zero exit naming the first bad sequence on any damage.
    Verify(VerifyArgs),
    /// Stream a synthetic STIR-like cohort through a real gRPC server and print the outcomes.
    Demo(crate::demo::DemoArgs),
    /// Print a study's outcomes at one visit (per subject and cohort) and its eligibility from a
    /// running server.
    Outcomes(OutcomesArgs),
    /// Recompute every outcome from the log alone, as of a sequence or a time, with provenance.
    Replay(crate::audit::ReplayArgs),
    /// Export the audit trail or the ADaM-style analysis dataset as CSV or JSON Lines, or (with
    /// --package DIR) the analysis and tabulation package: ADSL, ADEFF, DM, trial design, Define-XML.
    Export(crate::audit::ExportArgs),
    /// Write a self-contained HTML report with SVG charts and the cohort tables.
    Report(crate::audit::ReportArgs),
    /// Issue bearer tokens (printed once; only their hashes go to the principals file).
    Token(crate::token::TokenArgs),
    /// Validate a protocol file, register it with a running server, or export its SDTM trial design.
    Study(crate::study::StudyArgs),
    /// Ship a stopped log's events not yet archived to an archive (file:///dir or s3://bucket/prefix).
    Archive(crate::archive::ArchiveArgs),
    /// Rebuild a log from an archive, whole or as of a point; --verify-only is the drill.
    Restore(crate::archive::RestoreArgs),
    /// Make a stopped follower's volume the new primary's: catch it up from the archive and record
    /// a writer epoch newer than any in the archive (fencing the old primary off).
    Promote(crate::promote::PromoteArgs),
    /// Sign a log's head with an Ed25519 key (one JSON line), or print the key's public half.
    Head(crate::archive::HeadArgs),
    /// Import an EDC export (CDISC ODM) into a running server through the study's mapping file.
    Import(crate::edc::ImportArgs),
    /// Write a skeleton mapping file from an EDC's data dictionary.
    Mapping(crate::edc::MappingArgs),
    /// Run the REDCap connector of one study: Data Entry Trigger endpoint, incremental poll,
    /// /healthz and /metrics.
    Bridge(crate::bridge::BridgeArgs),
    /// Convert a log of the older on-disk format (version 1) into a new directory and verify it.
    Migrate(crate::migrate::MigrateArgs),
}

/// `myolog outcomes`.
#[derive(Debug, Clone, Args)]
pub struct OutcomesArgs {
    /// Server URL (`http://host:port`) or `host:port`.
    #[arg(
        long,
        env = "MYOLOG_HEALTHCHECK_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub addr: String,
    /// Study id.
    #[arg(long, default_value = myolog_synth::STUDY)]
    pub study: String,
    /// Visit id. The default is the week-12 encounter as the demo records it under STIR's protocol.
    #[arg(long, default_value = myolog_synth::STIR_VISIT_IDS[3].1)]
    pub visit: String,
    /// Version of the study's protocol to compute endpoints, schedule and eligibility by (a study
    /// registered at version 1 and amended twice has 1, 2 and 3). Default: the latest.
    #[arg(long)]
    pub protocol_version: Option<u32>,
    #[command(flatten)]
    pub tls: crate::client::ServerTls,
}

/// `myolog healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// Server URL (`http://host:port`) or `host:port`.
    #[arg(
        long,
        env = "MYOLOG_HEALTHCHECK_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub addr: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
    #[command(flatten)]
    pub tls: crate::client::ServerTls,
}

/// `myolog verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Directory of the event log.
    #[arg(long, env = "MYOLOG_DATA", default_value = "./myolog-data")]
    pub data: PathBuf,
    /// Instead of the log's chain, check an analysis package (`myolog export --package`): rebuild
    /// it from the log at the point its manifest names and name every file that differs (exit 3).
    #[arg(long, value_name = "DIR")]
    pub package: Option<PathBuf>,
    /// Also check the log against a signed head.
    #[command(flatten)]
    pub head: crate::archive::HeadCheckArgs,
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Score => score(),
        Command::Verify(args) => verify(&args),
        Command::Replay(args) => crate::audit::run_replay(&args),
        Command::Export(args) => crate::audit::run_export(&args),
        Command::Report(args) => crate::audit::run_report(&args),
        Command::Token(args) => crate::token::run(&args),
        Command::Study(args) => crate::study::run(&args),
        Command::Archive(args) => crate::archive::run_archive(&args),
        Command::Restore(args) => crate::archive::run_restore(&args),
        Command::Head(args) => crate::archive::run_head(&args),
        Command::Promote(args) => crate::promote::run(&args),
        Command::Migrate(args) => crate::migrate::run(&args),
        Command::Mapping(args) => match &args.command {
            crate::edc::MappingCommand::Init(init) => {
                match crate::edc::mapping_init(init, &mut std::io::stdout()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => {
                        eprintln!("myolog mapping init: {error}");
                        ExitCode::FAILURE
                    }
                }
            }
        },
        command => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("myolog: cannot start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(run_async(command))
        }
    }
}

async fn run_async(command: Command) -> ExitCode {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Healthcheck(args) => {
            match crate::healthcheck::check(
                &args.addr,
                &args.tls,
                Duration::from_secs(args.timeout_secs),
            )
            .await
            {
                Ok(()) => {
                    println!("SERVING");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("myolog healthcheck: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo(args) => {
            telemetry::init(LogFormat::Text, "warn");
            match crate::demo::run(&args, &mut std::io::stdout()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("myolog demo: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Outcomes(args) => {
            telemetry::init(LogFormat::Text, "warn");
            let mut stdout = std::io::stdout();
            match crate::demo::print_outcomes(
                &args.addr,
                &args.tls,
                &args.study,
                &args.visit,
                args.protocol_version,
                &mut stdout,
            )
            .await
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("myolog outcomes: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Import(args) => {
            telemetry::init(LogFormat::Text, "warn");
            let crate::edc::ImportFormat::Odm(args) = &args.format;
            let mut stdout = std::io::stdout();
            let bearer = match crate::client::Bearer::from_env() {
                Ok(bearer) => bearer,
                Err(error) => {
                    eprintln!("myolog import odm: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match crate::edc::import_odm(args, bearer, &mut stdout).await {
                Ok(summary) => {
                    // The summary goes to stderr: on a dry run stdout is the discrepancy CSV.
                    eprint!("{}", summary.render());
                    ExitCode::from(summary.exit_code())
                }
                Err(error) => {
                    eprintln!("myolog import odm: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bridge(args) => {
            telemetry::init(LogFormat::Text, "info");
            match crate::bridge::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("myolog bridge: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Score
        | Command::Mapping(_)
        | Command::Verify(_)
        | Command::Replay(_)
        | Command::Export(_)
        | Command::Report(_)
        | Command::Token(_)
        | Command::Study(_)
        | Command::Archive(_)
        | Command::Restore(_)
        | Command::Head(_)
        | Command::Promote(_)
        | Command::Migrate(_) => ExitCode::FAILURE,
    }
}

async fn serve(args: Box<crate::serve::ServeArgs>) -> ExitCode {
    crate::serve::serve(*args).await
}

fn score() -> ExitCode {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    match crate::score::run(stdin.lock(), stdout.lock()) {
        Ok(summary) => ExitCode::from(u8::try_from(summary.exit_code()).unwrap_or(1)),
        Err(error) => {
            eprintln!("myolog score: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `myolog verify`: prints the report; exit 3 naming the first bad sequence on damage, 1 on errors.
pub fn verify(args: &VerifyArgs) -> ExitCode {
    if let Some(dir) = &args.package {
        return crate::audit::verify_package(&args.data, dir);
    }
    let options = myolog_storage::LogOptions {
        create_if_missing: false,
        ..Default::default()
    };
    let log = match myolog_storage::EventLog::open(&args.data, options) {
        Ok(log) => log,
        Err(error) => {
            eprintln!("myolog verify: {error}");
            return ExitCode::FAILURE;
        }
    };
    match log.verify() {
        Ok(report) => match &report.first_bad {
            None => {
                println!(
                    "ok: {} events verified; head sequence {} hash {}",
                    report.events_checked, report.head.seq, report.head.hash
                );
                match crate::archive::check_head(&log, &args.head) {
                    Ok(None) => ExitCode::SUCCESS,
                    Ok(Some(line)) => {
                        println!("{line}");
                        ExitCode::SUCCESS
                    }
                    Err(error) => {
                        println!("MISMATCH: {error}");
                        ExitCode::from(3)
                    }
                }
            }
            Some(failure) => {
                println!(
                    "DAMAGED: first bad sequence {}: {} ({} events before it verified)",
                    failure.seq, failure.reason, report.events_checked
                );
                ExitCode::from(3)
            }
        },
        Err(error) => {
            eprintln!("myolog verify: {error}");
            ExitCode::FAILURE
        }
    }
}
