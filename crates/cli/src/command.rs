//! The `myolog` command line: `serve`, `healthcheck`, `score`, `verify`, `demo`, `outcomes`, the
//! audit commands `replay`, `export` and `report` ([`crate::audit`]), `token` and `study`. Every
//! flag of `serve` also reads a `MYOLOG_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::telemetry::{self, LogFormat};
use myolog_server::app::{App, AppConfig, DEFAULT_PRINCIPAL};

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
    Serve(ServeArgs),
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
    /// Export the audit trail or the ADaM-style analysis dataset as CSV or JSON Lines.
    Export(crate::audit::ExportArgs),
    /// Write a self-contained HTML report with SVG charts and the cohort tables.
    Report(crate::audit::ReportArgs),
    /// Issue bearer tokens (printed once; only their hashes go to the principals file).
    Token(crate::token::TokenArgs),
    /// Validate a protocol file, register it with a running server, or export its SDTM trial design.
    Study(crate::study::StudyArgs),
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

/// Command-line and environment settings of the metrics endpoint, for `serve` to flatten in.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Address of the Prometheus metrics endpoint (`GET /metrics`).
    #[arg(long = "metrics-addr", env = "MYOLOG_METRICS_ADDR", default_value = myolog_server::metrics::DEFAULT_METRICS_ADDR)]
    pub metrics_addr: SocketAddr,
}

/// `myolog serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MYOLOG_ADDR", default_value = "127.0.0.1:50051")]
    pub addr: SocketAddr,
    /// Directory of the event log (created if missing).
    #[arg(long, env = "MYOLOG_DATA", default_value = "./myolog-data")]
    pub data: PathBuf,
    /// Log line format on stderr.
    #[arg(long, env = "MYOLOG_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Recorded-by of every appended event (until authentication exists).
    #[arg(long, env = "MYOLOG_PRINCIPAL", default_value = DEFAULT_PRINCIPAL)]
    pub principal: String,
    /// The Prometheus metrics endpoint.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Principals file and plaintext policy (crate::auth).
    #[command(flatten)]
    pub security: crate::token::SecurityArgs,
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
        Command::Score
        | Command::Verify(_)
        | Command::Replay(_)
        | Command::Export(_)
        | Command::Report(_)
        | Command::Token(_)
        | Command::Study(_) => ExitCode::FAILURE,
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    telemetry::init(args.log_format, "info");
    let auth = match args.security.authenticator(args.addr, &args.principal) {
        Ok(auth) => auth,
        Err(error) => {
            tracing::error!(%error, "refusing to start");
            return ExitCode::FAILURE;
        }
    };
    let config = AppConfig {
        data_dir: args.data.clone(),
        principal: args.principal.clone(),
        max_events_per_batch: args.security.limits.max_events_per_batch,
    };
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(addr = %args.addr, %error, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let metrics_listener = match myolog_server::metrics::bind(args.metrics.metrics_addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(addr = %args.metrics.metrics_addr, %error, "cannot listen for metrics");
            return ExitCode::FAILURE;
        }
    };
    let app = match App::open(config).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let mut draining = app.draining();
    tracing::info!(addr = %args.metrics.metrics_addr, "metrics on GET /metrics");
    let metrics_task = tokio::spawn(myolog_server::metrics::serve(
        metrics_listener,
        std::sync::Arc::clone(app.metrics()),
        async move {
            let _ = draining.wait_for(|d| *d).await;
        },
    ));
    myolog_server::auth::spawn_reload_on_sighup(std::sync::Arc::clone(&auth));
    let result =
        myolog_server::server::serve_secured(listener, app.clone(), auth, shutdown_signal()).await;
    let _ = metrics_task.await;
    // Let stream tasks let go of the app, then close the log (joins the writer, flushes).
    for _ in 0..200 {
        if std::sync::Arc::strong_count(&app) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = tokio::task::spawn_blocking(move || drop(app)).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
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
                ExitCode::SUCCESS
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
