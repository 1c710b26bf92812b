//! `myolog serve`: the gRPC service and what runs beside it — the metrics endpoint, the background
//! archiver (`--archive`), a follower's copier (`--follow`), and a promotion from the archive
//! (`--promote`).
//!
//! Background tasks that cannot go on (an archiver fenced off by a newer epoch, a follower fed an
//! event that does not chain) stop the whole server with an error: a primary whose archive has a
//! new writer must not take writes, and a follower that cannot copy must not serve stale reads as
//! if it were current.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use myolog_archive::{ArchiveError, ArchiveTarget, Archiver};
use myolog_server::app::{App, AppConfig, ArchiveGuard};
use myolog_server::follower::{self, FollowerLagHandle, Primary};
use tokio::sync::watch;

use crate::archive::{FOLLOW_TOKEN_ENV, ServeArchiveArgs};
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use myolog_server::app::DEFAULT_PRINCIPAL;

use crate::telemetry;
use crate::telemetry::LogFormat;

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
    /// Archive, follower and signed-head settings.
    #[command(flatten)]
    pub archive: crate::archive::ServeArchiveArgs,
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers at once and returns what resolves on either.
/// They must exist before the server says it is serving: a signal that arrives before its handler
/// is installed takes the default action, and the process dies without a graceful shutdown (a
/// handler installed only when the future is first polled left that window open).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        async fn received(handler: Option<Signal>) {
            match handler {
                Some(mut handler) => {
                    handler.recv().await;
                }
                // Without a handler the signal keeps its default action; nothing to wait for.
                None => std::future::pending::<()>().await,
            }
        }
        let interrupt = received(signal(SignalKind::interrupt()).ok());
        let terminate = received(signal(SignalKind::terminate()).ok());
        async move {
            tokio::select! {
                () = interrupt => tracing::info!("SIGINT received"),
                () = terminate => tracing::info!("SIGTERM received"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C received");
        }
    }
}

/// How long shutdown waits for the archiver's last segment (inside Kubernetes' default 30 s grace).
const ARCHIVE_SHUTDOWN_WAIT: Duration = Duration::from_secs(15);

/// Why a background task stopped the server (first one wins).
#[derive(Clone)]
struct Fatal(Arc<Mutex<Option<String>>>, Arc<watch::Sender<bool>>);

impl Fatal {
    fn new() -> Self {
        let (tx, _) = watch::channel(false);
        Fatal(Arc::default(), Arc::new(tx))
    }

    fn raise(&self, message: String) {
        tracing::error!(error = %message, "stopping the server");
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(message);
        }
        self.1.send_replace(true);
    }

    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn wait(&self) {
        let mut rx = self.1.subscribe();
        let _ = rx.wait_for(|raised| *raised).await;
    }
}

pub async fn serve(args: ServeArgs) -> ExitCode {
    telemetry::init(args.log_format, "info");
    match serve_inner(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "myolog serve failed");
            eprintln!("myolog serve: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_inner(args: ServeArgs) -> Result<(), String> {
    // First of all: a SIGTERM during start-up then stops the server as soon as it serves.
    let signals = shutdown_signal();
    let auth = args
        .security
        .authenticator(args.addr, &args.principal)
        .map_err(|error| format!("refusing to start: {error}"))?;
    let settings = &args.archive;
    if settings.archive_url().is_some() && settings.follow.is_some() {
        return Err(
            "--archive and --follow go apart: a follower copies its primary, which archives".into(),
        );
    }
    if settings.archive_url().is_none()
        && (settings.promote || settings.ack_after_archive || settings.max_archive_lag.is_some())
    {
        return Err("--promote, --ack-after-archive and --max-archive-lag need --archive".into());
    }
    let target = match settings.archive_url() {
        Some(url) => Some(crate::archive::target(url).map_err(|e| e.to_string())?),
        None => None,
    };
    let primary = match &settings.follow {
        Some(url) => Some(primary(url, settings)?),
        None => None,
    };
    let head_key = match &settings.head_key {
        Some(path) => Some(crate::archive::load_head_key(path, &args.data)?),
        None => None,
    };
    if settings.promote
        && let Some(target) = &target
    {
        promote(target, &args.data).await?;
    }
    let config = AppConfig {
        data_dir: args.data.clone(),
        principal: args.principal.clone(),
        max_events_per_batch: args.security.limits.max_events_per_batch,
        follow: settings.follow.clone(),
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.addr))?;
    let metrics_listener = myolog_server::metrics::bind(args.metrics.metrics_addr)
        .await
        .map_err(|error| {
            format!(
                "cannot listen for metrics on {}: {error}",
                args.metrics.metrics_addr
            )
        })?;
    let app = App::open(config)
        .await
        .map_err(|error| format!("cannot start: {error}"))?;
    // Read (and recorded) with the log open: the volume's epoch, raised by `myolog promote`, wins
    // over a stale setting, so a promoted primary keeps its epoch across restarts.
    let epoch = match &target {
        Some(_) => myolog_archive::writer_epoch(app.log().path(), settings.archive_epoch)
            .map_err(|error| format!("cannot start: {error}"))?,
        None => 0,
    };
    if let Some(key) = head_key {
        tracing::info!(public_key = %key.public_key().to_hex(), "Audit.GetSignedHead signs with this key");
        app.set_head_key(key);
    }
    let fatal = Fatal::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopping = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    // The archiver: started before serving when writes depend on it, else retried in the
    // background so an object-store outage never keeps the service from taking data.
    let archiver_task = match target {
        Some(target) => {
            let started = start_archiver(&app, target.clone(), epoch, settings).await;
            let archiver = match started {
                Ok(archiver) => Some(archiver),
                Err(error) if is_fatal(&error) || settings.archive_required() => {
                    return Err(format!("archive {}: {error}", target.description()));
                }
                Err(error) => {
                    tracing::warn!(archive = %target.description(), %error, "archive unreachable; serving anyway and retrying");
                    None
                }
            };
            Some(tokio::spawn(run_archiver(
                Arc::clone(&app),
                target,
                epoch,
                settings.clone(),
                archiver,
                fatal.clone(),
                stopping(),
            )))
        }
        None => None,
    };

    let follower_lag = FollowerLagHandle::default();
    let follower_task = primary.map(|primary| {
        let app = Arc::clone(&app);
        let fatal = fatal.clone();
        let lag = follower_lag.clone();
        let poll = Duration::from_millis(settings.follow_poll_ms.max(1));
        let shutdown = stopping();
        tracing::info!(primary = %primary.url, "read-only follower: copying the primary's log");
        tokio::spawn(async move {
            if let Err(error) = follower::run(app, primary, poll, lag, shutdown).await {
                fatal.raise(format!("the follower stopped: {error}"));
            }
        })
    });

    let gauges = {
        let app = Arc::clone(&app);
        let primary = settings.follow.clone();
        let lag = follower_lag.clone();
        let mut shutdown = Box::pin(stopping());
        tokio::spawn(async move {
            loop {
                if let Some(archive) = app.archive_lag() {
                    app.metrics().set_archive_lag(&archive);
                }
                if let Some(primary) = &primary {
                    app.metrics().set_follower_lag(primary, &lag.get());
                }
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        })
    };

    let mut draining = app.draining();
    tracing::info!(addr = %args.metrics.metrics_addr, "metrics on GET /metrics, health details on GET /health");
    let metrics_task = tokio::spawn(myolog_server::metrics::serve(
        metrics_listener,
        Arc::clone(app.metrics()),
        async move {
            let _ = draining.wait_for(|d| *d).await;
        },
    ));
    myolog_server::auth::spawn_reload_on_sighup(Arc::clone(&auth));
    let fatal_wait = fatal.clone();
    let result =
        myolog_server::server::serve_secured(listener, Arc::clone(&app), auth, async move {
            tokio::select! {
                () = signals => {}
                () = fatal_wait.wait() => {}
            }
        })
        .await;
    let _ = metrics_task.await;
    // Stop the background tasks; the archiver ships everything durable before it returns.
    stop_tx.send_replace(true);
    let _ = gauges.await;
    if let Some(task) = follower_task {
        let _ = task.await;
    }
    if let Some(task) = archiver_task {
        // The archiver ships what waits; an unreachable store must not hold the shutdown past the
        // orchestrator's grace period. What is left is durable in the log and shipped next start.
        if tokio::time::timeout(ARCHIVE_SHUTDOWN_WAIT, task)
            .await
            .is_err()
        {
            tracing::warn!(
                lag = ?app.archive_lag(),
                "the archive did not take the last segment in time; the next start ships it"
            );
        }
    }
    // Let stream tasks let go of the app, then close the log (joins the writer, flushes).
    for _ in 0..200 {
        if Arc::strong_count(&app) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = tokio::task::spawn_blocking(move || drop(app)).await;
    if let Some(message) = fatal.get() {
        return Err(message);
    }
    result.map_err(|error| format!("server failed: {error}"))
}

/// Errors no retry fixes: another writer owns the archive, or it is another log's.
fn is_fatal(error: &ArchiveError) -> bool {
    matches!(
        error,
        ArchiveError::Fenced { .. }
            | ArchiveError::ForeignLog { .. }
            | ArchiveError::ArchiveAheadOfLog { .. }
            | ArchiveError::Segment { .. }
    )
}

async fn start_archiver(
    app: &Arc<App>,
    target: ArchiveTarget,
    epoch: u64,
    settings: &ServeArchiveArgs,
) -> Result<Archiver, ArchiveError> {
    let archiver =
        Archiver::start(app.log().clone(), target.clone(), epoch, settings.policy()).await?;
    app.set_archive_guard(ArchiveGuard {
        lag: archiver.lag_handle(),
        max_lag_events: settings.max_archive_lag,
        ack_after_archive: settings.ack_after_archive,
    });
    tracing::info!(archive = %target.description(), epoch, archived_seq = archiver.archived().seq, "archiving the log");
    Ok(archiver)
}

/// Runs the archiver until `shutdown` (then it ships everything durable), starting it first if
/// it could not start before serving.
async fn run_archiver(
    app: Arc<App>,
    target: ArchiveTarget,
    epoch: u64,
    settings: ServeArchiveArgs,
    archiver: Option<Archiver>,
    fatal: Fatal,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let archiver = match archiver {
        Some(archiver) => archiver,
        None => loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            match start_archiver(&app, target.clone(), epoch, &settings).await {
                Ok(archiver) => break archiver,
                Err(error) if is_fatal(&error) => {
                    fatal.raise(format!("archive {}: {error}", target.description()));
                    return;
                }
                Err(error) => {
                    tracing::warn!(archive = %target.description(), %error, "archive still unreachable");
                }
            }
        },
    };
    match archiver.run(shutdown).await {
        Ok(head) => {
            tracing::info!(
                archived_seq = head.seq,
                "archiver stopped: everything durable is archived"
            );
        }
        Err(error) => fatal.raise(format!("archive {}: {error}", target.description())),
    }
}

/// `--promote`: [`myolog_archive::promote`] before serving (what `myolog promote` does).
async fn promote(target: &ArchiveTarget, data: &std::path::Path) -> Result<(), String> {
    let report = myolog_archive::promote(target, data, myolog_storage::LogOptions::default())
        .await
        .map_err(|error| format!("promote from {}: {error}", target.description()))?;
    tracing::warn!(
        epoch = report.epoch,
        previous_epoch = report.previous_epoch,
        archived_seq = report.archived.seq,
        appended = report.events_appended,
        log_seq = report.log_head.seq,
        "promote: caught up from the archive; taking archive epoch {} (recorded on the data volume, \
         kept by restarts)",
        report.epoch
    );
    Ok(())
}

fn primary(url: &str, settings: &ServeArchiveArgs) -> Result<Primary, String> {
    let tls = crate::client::ServerTls {
        ca: settings.follow_tls_ca.clone(),
        server_name: None,
    };
    let endpoint = tls.endpoint(url).map_err(|e| e.to_string())?;
    let authorization = match std::env::var(FOLLOW_TOKEN_ENV) {
        Ok(token) if !token.trim().is_empty() => {
            let header = format!("Bearer {}", token.trim());
            myolog_server::auth::tokens::parse_bearer(header.as_bytes())
                .map_err(|_| format!("{FOLLOW_TOKEN_ENV} is not a Myolog token"))?;
            Some(
                header
                    .parse()
                    .map_err(|_| format!("{FOLLOW_TOKEN_ENV} is not a Myolog token"))?,
            )
        }
        _ => None,
    };
    Ok(Primary {
        url: tls.url(url),
        endpoint,
        authorization,
    })
}
