//! `myolog bridge`: the arguments of the long-running REDCap connector and one call into
//! `myolog-redcap-bridge`, which holds the connector itself (trigger endpoint, REDCap client, poll,
//! reconciliation, metrics).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use myolog_redcap_bridge::bridge::{BridgeConfig, BridgeError};
use myolog_redcap_bridge::reconcile::parse_duration;
use tokio::net::TcpListener;

use crate::client::{Bearer, ServerTls};

/// `myolog bridge`.
#[derive(Debug, Clone, Args)]
pub struct BridgeArgs {
    /// REDCap API endpoint, e.g. `https://redcap.example.org/api/`.
    #[arg(long, env = "MYOLOG_BRIDGE_REDCAP_URL")]
    pub redcap_url: String,
    /// File holding the REDCap API token of the project (a file, so it never shows in `ps`).
    #[arg(long, env = "MYOLOG_BRIDGE_REDCAP_TOKEN_FILE")]
    pub redcap_token_file: PathBuf,
    /// CA certificate (PEM) trusted for REDCap's HTTPS besides the system's roots (a REDCap
    /// behind an institution's own CA).
    #[arg(
        long,
        alias = "redcap-ca",
        env = "MYOLOG_BRIDGE_REDCAP_CA_FILE",
        value_name = "FILE"
    )]
    pub redcap_ca_file: Option<PathBuf>,
    /// The study's mapping file.
    #[arg(long, env = "MYOLOG_BRIDGE_MAPPING")]
    pub mapping: PathBuf,
    /// Myolog server URL; the integration token is read from MYOLOG_TOKEN.
    #[arg(long, env = "MYOLOG_BRIDGE_ADDR")]
    pub addr: String,
    /// Address of the bridge's HTTP endpoint: the Data Entry Trigger (`POST /trigger`), `/healthz`
    /// and `/metrics`.
    #[arg(long, env = "MYOLOG_BRIDGE_LISTEN", default_value = "127.0.0.1:8790")]
    pub listen: SocketAddr,
    /// File holding a shared secret the trigger URL must carry (`/trigger?secret=...`): 16 to 128
    /// characters from A-Z a-z 0-9 _ -.
    #[arg(long, env = "MYOLOG_BRIDGE_TRIGGER_SECRET_FILE")]
    pub trigger_secret_file: Option<PathBuf>,
    /// The REDCap project id (as in its URLs, `pid=`): a trigger from another project is refused
    /// instead of pulling a record id that means another subject there.
    #[arg(long, env = "MYOLOG_BRIDGE_REDCAP_PROJECT_ID")]
    pub redcap_project_id: Option<u64>,
    /// Seconds between two incremental polls of REDCap (records changed since the last one).
    #[arg(long, env = "MYOLOG_BRIDGE_POLL_SECS", default_value_t = 300)]
    pub poll_secs: u64,
    /// Seconds each poll reaches back before the previous one began: REDCap reads `dateRangeBegin`
    /// in its server's local time, so a day covers any time zone; a record seen twice is planned as
    /// unchanged and sends nothing.
    #[arg(
        long,
        env = "MYOLOG_BRIDGE_POLL_OVERLAP_SECS",
        default_value_t = 86_400
    )]
    pub poll_overlap_secs: u64,
    /// The bridge's state (pending record ids, last poll): default `<mapping>.bridge.json`.
    #[arg(long, env = "MYOLOG_BRIDGE_STATE")]
    pub state: Option<PathBuf>,
    /// The ledger of what was sent: default `<mapping>.ledger.json` (shared with `import odm`).
    #[arg(long, env = "MYOLOG_BRIDGE_LEDGER")]
    pub ledger: Option<PathBuf>,
    /// How often the bridge reconciles all of REDCap against Myolog (`30m`, `24h`, `7d`; `0`:
    /// never); one runs at start when the last one is older. What is missing in Myolog is sent.
    #[arg(
        long,
        env = "MYOLOG_BRIDGE_RECONCILE_EVERY",
        default_value = "24h",
        value_parser = parse_duration
    )]
    pub reconcile_every: u64,
    /// Directory for each reconciliation's report (`reconcile-<unix time>.json` and `.csv`):
    /// subjects on one side only and values Myolog did not hold.
    #[arg(long, env = "MYOLOG_BRIDGE_RECONCILE_REPORT_DIR", value_name = "DIR")]
    pub reconcile_report_dir: Option<PathBuf>,
    #[command(flatten)]
    pub tls: ServerTls,
}

impl BridgeArgs {
    /// The connector's configuration (everything but where Myolog is and how to reach it).
    pub fn config(&self) -> BridgeConfig {
        BridgeConfig {
            redcap_url: self.redcap_url.clone(),
            redcap_token_file: self.redcap_token_file.clone(),
            redcap_ca_file: self.redcap_ca_file.clone(),
            mapping: self.mapping.clone(),
            trigger_secret_file: self.trigger_secret_file.clone(),
            redcap_project_id: self.redcap_project_id,
            poll_secs: self.poll_secs,
            poll_overlap_secs: self.poll_overlap_secs,
            state: self.state.clone(),
            ledger: self.ledger.clone(),
            reconcile_every_secs: self.reconcile_every,
            reconcile_report_dir: self.reconcile_report_dir.clone(),
        }
    }
}

/// Runs `myolog bridge` until SIGINT or SIGTERM; the integration token is read from MYOLOG_TOKEN.
pub async fn run(args: BridgeArgs) -> Result<(), BridgeError> {
    let bearer = Bearer::from_env().map_err(|error| BridgeError::Config(error.to_string()))?;
    let ingest = args
        .tls
        .endpoint(&args.addr)
        .map_err(|error| BridgeError::Config(error.to_string()))?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|error| BridgeError::Config(format!("listen on {}: {error}", args.listen)))?;
    myolog_redcap_bridge::bridge::run(
        args.config(),
        listener,
        ingest,
        bearer,
        crate::serve::shutdown_signal(),
    )
    .await
}
