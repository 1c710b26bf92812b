//! Running the gRPC server: the three Myolog services, grpc.health.v1 and server reflection (v1 and
//! v1alpha) on one listener, with graceful shutdown that drains streams.
//!
//! Health is NOT_SERVING until the log is open and the projection rebuilt (which [`App::open`] does
//! before [`serve`] is called), SERVING while running and NOT_SERVING again once shutdown starts.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use myolog_proto::v1::audit_server::AuditServer;
use myolog_proto::v1::ingest_server::IngestServer;
use myolog_proto::v1::outcomes_server::OutcomesServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::app::{App, AppConfig, StartError};
use crate::auth::Auth;
use crate::auth::interceptor::Guarded;
use crate::services::Services;

/// Service names reported as SERVING (besides the overall "" status).
pub const SERVICE_NAMES: [&str; 3] = ["myolog.v1.Ingest", "myolog.v1.Outcomes", "myolog.v1.Audit"];

/// How long shutdown waits for open calls to finish after streams were told to drain.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then drains: health turns NOT_SERVING,
/// Submit and Watch streams finish their current message and end, in-flight calls complete.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let auth = Auth::local(app.principal());
    serve_secured(listener, app, auth, shutdown).await
}

/// [`serve`] with `auth` guarding every service but health (see [`crate::auth`]).
pub async fn serve_secured(
    listener: TcpListener,
    app: Arc<App>,
    auth: Arc<Auth>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(myolog_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartError::Task(format!("reflection: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(myolog_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| StartError::Task(format!("reflection: {e}")))?;

    let services = Services::new(Arc::clone(&app));
    for name in SERVICE_NAMES {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    health.set_service_status("", ServingStatus::Serving).await;
    tracing::info!(addr = ?listener.local_addr().ok(), data = %app.data_dir().display(), "serving");

    let drain_app = Arc::clone(&app);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested: draining streams");
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        for name in SERVICE_NAMES {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        drain_app.start_draining();
    };
    let (drained_tx, drained_rx) = oneshot::channel::<()>();
    let max_message = auth.limits().max_message_bytes;
    let mut builder = Server::builder();
    if let Some(tls) = auth.tls() {
        builder = builder.tls_config(tls)?;
    }
    let router = builder
        .add_service(health_service)
        .add_service(Guarded::new(reflection_v1, Arc::clone(&auth)))
        .add_service(Guarded::new(reflection_v1alpha, Arc::clone(&auth)))
        .add_service(Guarded::new(
            IngestServer::new(services.clone()).max_decoding_message_size(max_message),
            Arc::clone(&auth),
        ))
        .add_service(Guarded::new(
            OutcomesServer::new(services.clone()).max_decoding_message_size(max_message),
            Arc::clone(&auth),
        ))
        .add_service(Guarded::new(
            AuditServer::new(services).max_decoding_message_size(max_message),
            auth,
        ));
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let serving = router.serve_with_incoming_shutdown(incoming, async move {
        signal.await;
        let _ = drained_tx.send(());
    });
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => result?,
        () = async {
            // Once shutdown started, give open calls DRAIN_TIMEOUT to finish.
            let _ = drained_rx.await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => tracing::warn!("drain timeout: closing remaining connections"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// A server running in the background on a local port (for `demo`, tests and benchmarks).
#[derive(Debug)]
pub struct Running {
    /// The bound address (port chosen by the OS when asked for port 0).
    pub addr: SocketAddr,
    /// The app (for in-process checks).
    pub app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), StartError>>,
}

impl Running {
    /// `http://addr`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down gracefully and waits until the server has stopped and released the log.
    pub async fn stop(mut self) -> Result<(), StartError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = (&mut self.task)
            .await
            .map_err(|e| StartError::Task(e.to_string()))?;
        // Release the log (the writer thread joins when the last handle drops): wait briefly for
        // stream tasks that still hold the app to end.
        let app = self.app;
        for _ in 0..500 {
            if Arc::strong_count(&app) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::task::spawn_blocking(move || drop(app))
            .await
            .map_err(|e| StartError::Task(e.to_string()))?;
        result
    }
}

/// Opens the log in `config.data_dir`, rebuilds the projection and serves on `addr` in the background.
pub async fn start(config: AppConfig, addr: SocketAddr) -> Result<Running, StartError> {
    start_secured(config, addr, None).await
}

/// [`start`] with `auth` in front of the services (`None`: the local principal).
pub async fn start_secured(
    config: AppConfig,
    addr: SocketAddr,
    auth: Option<Arc<Auth>>,
) -> Result<Running, StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let app = App::open(config).await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let auth = auth.unwrap_or_else(|| Auth::local(app.principal()));
    let task = tokio::spawn(serve_secured(
        listener,
        Arc::clone(&app),
        auth,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(Running {
        addr,
        app,
        stop: Some(stop),
        task,
    })
}
