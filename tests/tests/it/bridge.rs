//! `myolog bridge` against a real Myolog server and a stand-in REDCap over real HTTP (and HTTPS) on
//! loopback: the stand-in answers the API's documented shapes (`content=metadata`, `content=record`
//! flat JSON with `records[]`, `fields[]`, `dateRangeBegin`, `exportDataAccessGroups`; a
//! de-identified token gets no date columns; `content=log` as a JSON array of `timestamp`,
//! `username`, `action`, `details` filtered by `logtype`, `record` and `beginTime`) from the
//! STIR-shaped project; the Data Entry Trigger is a real form-encoded POST. Restarts of Myolog, of
//! REDCap and of the bridge itself lose nothing and double nothing; corrections carry REDCap's log,
//! reconciliation finds what no trigger or poll reported, deleted records are retracted.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use myolog_cli::client::Bearer;
use myolog_proto::v1 as pb;
use myolog_redcap_bridge::bridge::{Bridge, BridgeConfig};
use myolog_server::app::AppConfig;
use myolog_server::server::{self, Running};
use myolog_tests::Clients;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const TOKEN: &str = "0123456789ABCDEF0123456789ABCDEF";
const DEIDENTIFIED_TOKEN: &str = "FEDCBA9876543210FEDCBA9876543210";
const SECRET: &str = "trigger-secret-0123456789";
/// Fields REDCap removes from a de-identified export (the project's date-validated fields).
const DATE_FIELDS: [&str; 2] = ["visit_date", "rand_date"];

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/edc")
        .join(name)
}

/// The stand-in REDCap project: flat record rows with their last change, and every API call made.
#[derive(Debug, Default)]
struct Project {
    /// (last change as `YYYY-MM-DD HH:MM:SS`, flat record row).
    rows: Vec<(String, serde_json::Map<String, serde_json::Value>)>,
    metadata: String,
    calls: Vec<BTreeMap<String, String>>,
    /// REDCap's logging: (record, entry as the API exports it).
    log: Vec<(String, serde_json::Value)>,
}

impl Project {
    fn stir() -> Self {
        let rows: Vec<serde_json::Value> = serde_json::from_str(
            &std::fs::read_to_string(data("stir_records.json")).expect("records"),
        )
        .expect("json");
        Self {
            rows: rows
                .into_iter()
                .filter_map(|row| row.as_object().cloned())
                .map(|row| ("2024-06-01 09:00:00".to_string(), row))
                .collect(),
            metadata: std::fs::read_to_string(data("stir_metadata.json")).expect("metadata"),
            calls: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Logs an entry as REDCap's Logging page holds it.
    fn log(&mut self, record: &str, at: &str, user: &str, action: &str, details: &str) {
        self.log.push((
            record.to_string(),
            serde_json::json!({
                "timestamp": at, "username": user, "action": action, "details": details,
            }),
        ));
    }

    /// Deletes a record, as a user with delete rights does (REDCap logs it).
    fn delete(&mut self, record: &str, at: &str, user: &str) {
        self.rows
            .retain(|(_, row)| row.get("record_id").and_then(|v| v.as_str()) != Some(record));
        self.log(
            record,
            at,
            user,
            &format!("Delete record {record}"),
            &format!("record_id = '{record}'"),
        );
    }

    /// A copy of every row of `from` as record `to`, last changed `at`.
    fn copy_record(&mut self, from: &str, to: &str, at: &str) {
        let copies: Vec<_> = self
            .rows
            .iter()
            .filter(|(_, row)| row.get("record_id").and_then(|v| v.as_str()) == Some(from))
            .map(|(_, row)| {
                let mut row = row.clone();
                row.insert("record_id".into(), to.into());
                (at.to_string(), row)
            })
            .collect();
        self.rows.extend(copies);
    }

    /// Changes one value of one event row, as a data entry would, stamped `at`.
    fn change(&mut self, event: &str, field: &str, value: &str, at: &str) {
        let row = self
            .rows
            .iter_mut()
            .find(|(_, row)| row.get("redcap_event_name").and_then(|v| v.as_str()) == Some(event))
            .expect("event row");
        row.0 = at.to_string();
        row.1.insert(field.into(), value.into());
    }
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() + 1 => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                index += 2;
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8(out).expect("utf-8")
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// REDCap's API as documented: a form-encoded POST to one URL, `token` and `content` deciding.
fn answer(project: &Mutex<Project>, body: &[u8]) -> Response<Full<Bytes>> {
    let text = String::from_utf8_lossy(body);
    let params: BTreeMap<String, String> = text
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (form_decode(key), form_decode(value)))
        .collect();
    let mut project = project.lock().expect("lock");
    project.calls.push(params.clone());
    let token = params.get("token").map(String::as_str);
    let deidentified = token == Some(DEIDENTIFIED_TOKEN);
    if token != Some(TOKEN) && !deidentified {
        return json(
            StatusCode::FORBIDDEN,
            r#"{"error":"You do not have permissions to use the API"}"#.into(),
        );
    }
    let listed = |prefix: &str| -> Vec<String> {
        params
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(_, value)| value.clone())
            .collect()
    };
    match params.get("content").map(String::as_str) {
        Some("metadata") => json(StatusCode::OK, project.metadata.clone()),
        Some("record") => {
            let records = listed("records[");
            let fields = listed("fields[");
            let since = params.get("dateRangeBegin");
            let groups = params.get("exportDataAccessGroups").map(String::as_str) == Some("true");
            let mut out = Vec::new();
            for (changed, row) in &project.rows {
                let id = row
                    .get("record_id")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                if !records.is_empty() && !records.iter().any(|r| r == id) {
                    continue;
                }
                if since.is_some_and(|since| changed.as_str() < since.as_str()) {
                    continue;
                }
                let mut kept = serde_json::Map::new();
                for (key, value) in row {
                    let system = matches!(
                        key.as_str(),
                        "redcap_event_name" | "redcap_repeat_instrument" | "redcap_repeat_instance"
                    ) || (groups && key == "redcap_data_access_group");
                    // A checkbox field asked as `f` comes back as its options `f___code`.
                    let base = key.split_once("___").map_or(key.as_str(), |(base, _)| base);
                    let asked = fields.is_empty() || fields.iter().any(|f| f == base);
                    if deidentified && DATE_FIELDS.contains(&key.as_str()) {
                        continue;
                    }
                    if system || asked {
                        kept.insert(key.clone(), value.clone());
                    }
                }
                out.push(serde_json::Value::Object(kept));
            }
            json(StatusCode::OK, serde_json::Value::Array(out).to_string())
        }
        Some("log") => {
            let logtype = params.get("logtype").map(String::as_str).unwrap_or("");
            let record = params.get("record");
            let begin = params.get("beginTime");
            let entries: Vec<serde_json::Value> = project
                .log
                .iter()
                .filter(|(id, _)| record.is_none_or(|record| record == id))
                .filter(|(_, entry)| {
                    let action = entry["action"].as_str().unwrap_or_default();
                    match logtype {
                        "record_delete" => action.starts_with("Delete record"),
                        "record_edit" => action.starts_with("Update record"),
                        "record" | "" => true,
                        _ => false,
                    }
                })
                .filter(|(_, entry)| {
                    begin.is_none_or(|begin| {
                        entry["timestamp"].as_str().unwrap_or("") >= begin.as_str()
                    })
                })
                .map(|(_, entry)| entry.clone())
                .collect();
            json(
                StatusCode::OK,
                serde_json::Value::Array(entries).to_string(),
            )
        }
        Some("event") => json(
            StatusCode::OK,
            r#"[{"event_name":"Baseline","arm_num":1,"unique_event_name":"baseline_arm_1"}]"#
                .into(),
        ),
        other => json(
            StatusCode::BAD_REQUEST,
            format!(
                r#"{{"error":"The value of the parameter \"content\" is not valid: {other:?}"}}"#
            ),
        ),
    }
}

/// The stand-in REDCap, serving until its stop channel fires.
struct Redcap {
    addr: SocketAddr,
    https: bool,
    project: Arc<Mutex<Project>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Redcap {
    async fn start(addr: SocketAddr, project: Arc<Mutex<Project>>) -> Self {
        Self::serve(addr, project, None).await
    }

    /// The stand-in over HTTPS with `tls` (a certificate signed by a test CA).
    async fn start_tls(project: Arc<Mutex<Project>>, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::serve(SocketAddr::from(([127, 0, 0, 1], 0)), project, Some(tls)).await
    }

    async fn serve(
        addr: SocketAddr,
        project: Arc<Mutex<Project>>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let https = tls.is_some();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let listener = TcpListener::bind(addr).await.expect("bind REDCap");
        let addr = listener.local_addr().expect("addr");
        let (stop, mut stopped) = oneshot::channel::<()>();
        let shared = Arc::clone(&project);
        let task = tokio::spawn(async move {
            let mut connections = Vec::new();
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { continue };
                let project = Arc::clone(&shared);
                let acceptor = acceptor.clone();
                connections.push(tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let project = Arc::clone(&project);
                        async move {
                            let body = request.into_body().collect().await.map(|b| b.to_bytes());
                            let response = match body {
                                Ok(body) => answer(&project, &body),
                                Err(_) => json(StatusCode::BAD_REQUEST, "{}".into()),
                            };
                            Ok::<_, Infallible>(response)
                        }
                    });
                    match acceptor {
                        Some(acceptor) => {
                            // A client that does not trust the certificate ends the handshake.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                }));
            }
            // Down means down: open connections go too.
            for connection in connections {
                connection.abort();
            }
        });
        Self {
            addr,
            https,
            project,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/api/", self.addr)
    }

    async fn stop(mut self) -> (SocketAddr, Arc<Mutex<Project>>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        (self.addr, self.project)
    }
}

/// One plain HTTP/1.1 request to the bridge's endpoint: (status, body).
async fn http(addr: SocketAddr, method: &str, target: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The Data Entry Trigger REDCap posts when a form of `record` is saved.
fn trigger_body(record: &str, event: &str, instrument: &str) -> String {
    format!(
        "redcap_url=http%3A%2F%2F127.0.0.1%2F&project_url=http%3A%2F%2F127.0.0.1%2Fredcap_v14.0.0%2Findex.php%3Fpid%3D42\
         &project_id=42&username=jane.doe&record={record}&redcap_event_name={event}\
         &redcap_data_access_group=site_a&instrument={instrument}&{instrument}_complete=2\
         &redcap_repeat_instance=1&redcap_repeat_instrument="
    )
}

/// A bridge running in the background.
struct RunningBridge {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningBridge {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The bridge's configuration and Myolog's address.
#[derive(Debug, Clone)]
struct BridgeArgs {
    config: BridgeConfig,
    myolog: String,
}

fn bridge_args(dir: &Path, redcap: &str, myolog: &str, token_file: &Path) -> BridgeArgs {
    let config = BridgeConfig {
        redcap_url: redcap.to_string(),
        redcap_token_file: token_file.to_path_buf(),
        redcap_ca_file: None,
        mapping: dir.join("stir_redcap.mapping.toml"),
        trigger_secret_file: Some(dir.join("trigger.secret")),
        redcap_project_id: Some(42),
        poll_secs: 3600,
        poll_overlap_secs: 86_400,
        state: None,
        ledger: None,
        reconcile_every_secs: 0,
        reconcile_report_dir: None,
    };
    BridgeArgs {
        config,
        myolog: myolog.to_string(),
    }
}

async fn start_bridge(args: BridgeArgs) -> RunningBridge {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind bridge");
    let addr = listener.local_addr().expect("addr");
    let ingest = tonic::transport::Endpoint::from_shared(args.myolog).expect("Myolog's URL");
    let bridge = Bridge::start(args.config).await.expect("the bridge starts");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        bridge
            .run(listener, ingest, Bearer::default(), async {
                let _ = stopped.await;
            })
            .await
            .expect("the bridge runs");
    });
    RunningBridge { addr, stop, task }
}

/// Waits until the log holds `events` events (or fails after a minute).
async fn wait_for_head(server_url: &str, events: u64) {
    let mut last = 0;
    for _ in 0..600 {
        if let Ok(channel) = tonic::transport::Channel::from_shared(server_url.to_string())
            .expect("url")
            .connect()
            .await
        {
            let mut audit = pb::audit_client::AuditClient::new(channel);
            if let Ok(report) = audit.verify(pb::VerifyRequest {}).await {
                last = report.into_inner().head_sequence;
                if last >= events {
                    assert_eq!(last, events, "no more than expected (nothing doubled)");
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the log holds {last} events, expected {events}");
}

/// Every stored event, once ReadEvents shows `head` of them (a Verify can see the head a moment
/// before a ReadEvents started at the same time does).
async fn read_all(server: &Running, head: u64) -> Vec<pb::LoggedEvent> {
    let mut clients = Clients::connect(server).await;
    for _ in 0..100 {
        let events = clients.read_all().await;
        if events.len() as u64 >= head {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    clients.read_all().await
}

async fn register(server: &Running) {
    Clients::connect(server)
        .await
        .append(pb::SubmitRequest {
            batch_id: "register".into(),
            events: vec![pb::Event {
                event_id: "STIR.registered".into(),
                study_id: "STIR".into(),
                clinical_date: "2024-01-01".into(),
                body: Some(pb::event::Body::StudyRegistered(pb::StudyRegistered {
                    title: "STIR-shaped REDCap project".into(),
                    population: pb::Population::Adult as i32,
                    baseline_visit_id: "BL".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }],
        })
        .await;
}

fn setup(dir: &Path) -> PathBuf {
    std::fs::copy(
        data("stir_redcap.mapping.toml"),
        dir.join("stir_redcap.mapping.toml"),
    )
    .expect("mapping");
    std::fs::write(dir.join("trigger.secret"), SECRET).expect("secret");
    let token = dir.join("redcap.token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("token");
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_pulls_triggered_and_polled_records_and_survives_restarts_of_either_side() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = setup(dir.path());
    let log = dir.path().join("log");
    let myolog = server::start(AppConfig::new(&log), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("myolog starts");
    let myolog_addr = myolog.addr;
    let url = myolog.url();
    register(&myolog).await;
    let project = Arc::new(Mutex::new(Project::stir()));
    let redcap = Redcap::start(SocketAddr::from(([127, 0, 0, 1], 0)), Arc::clone(&project)).await;
    let args = bridge_args(dir.path(), &redcap.url(), &url, &token);

    // First start: the first poll takes every record; STIR-01's enrolment and 24 forms go in.
    let bridge = start_bridge(args.clone()).await;
    let mut head = 1 + 25;
    wait_for_head(&url, head).await;
    {
        let project = project.lock().expect("lock");
        let pull = project
            .calls
            .iter()
            .find(|call| call.get("records[0]").map(String::as_str) == Some("STIR-01"))
            .expect("the record was pulled by id");
        let fields: Vec<&str> = pull
            .iter()
            .filter(|(key, _)| key.starts_with("fields["))
            .map(|(_, value)| value.as_str())
            .collect();
        assert!(
            fields.contains(&"pga_vas") && fields.contains(&"visit_date"),
            "{fields:?}"
        );
        assert!(
            !fields.contains(&"ae_term"),
            "only mapped fields leave REDCap: {fields:?}"
        );
        assert!(
            project
                .calls
                .iter()
                .all(|call| !call.contains_key("dateRangeBegin")),
            "the first poll takes everything"
        );
    }

    // A saved form: the trigger names the record; the changed value goes in as a correction.
    project
        .lock()
        .expect("lock")
        .change("week_4_arm_1", "pga_vas", "4.5", "2024-06-02 10:00:00");
    let target = format!("/trigger?secret={SECRET}");
    let body = trigger_body("STIR-01", "week_4_arm_1", "globals");
    assert_eq!(
        http(
            bridge.addr,
            "POST",
            "/trigger?secret=wrong-secret-0000000",
            &body
        )
        .await
        .0,
        403
    );
    assert_eq!(
        http(bridge.addr, "POST", &target, "project_id=42").await.0,
        400
    );
    let other_project = body.replace("project_id=42", "project_id=43");
    let (status, text) = http(bridge.addr, "POST", &target, &other_project).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("project 43"), "{text}");
    let (status, text) = http(bridge.addr, "POST", &target, &body).await;
    assert_eq!((status, text.as_str()), (200, "queued STIR-01\n"));
    head += 1;
    wait_for_head(&url, head).await;
    let events = read_all(&myolog, head).await;
    assert_eq!(
        events.last().map(|e| e.event_type.as_str()),
        Some("myolog.v1.AssessmentCorrected"),
        "{:?}",
        events
            .iter()
            .map(|e| (e.sequence, e.event_type.as_str(), e.event_id.as_str()))
            .collect::<Vec<_>>()
    );

    // Myolog down: the trigger is still taken (queued on disk); the bridge retries until Myolog
    // is back, and sends the change once.
    myolog.stop().await.expect("myolog stops");
    project
        .lock()
        .expect("lock")
        .change("week_8_arm_1", "ck", "700", "2024-06-03 10:00:00");
    let (status, _) = http(
        bridge.addr,
        "POST",
        &target,
        &trigger_body("STIR-01", "week_8_arm_1", "enzymes"),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let myolog = server::start(AppConfig::new(&log), myolog_addr)
        .await
        .expect("myolog restarts on the same address");
    head += 1;
    wait_for_head(&url, head).await;

    // REDCap down: the pull fails and is retried until REDCap answers again.
    let (redcap_addr, project) = redcap.stop().await;
    project
        .lock()
        .expect("lock")
        .change("week_12_arm_1", "haq_di", "0.75", "2024-06-04 10:00:00");
    let (status, _) = http(
        bridge.addr,
        "POST",
        &target,
        &trigger_body("STIR-01", "week_12_arm_1", "haq"),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, health) = http(bridge.addr, "GET", "/healthz", "").await;
    assert_eq!(status, 200);
    assert!(health.contains("\"pending_records\":1"), "{health}");
    assert!(health.contains("REDCap unreachable"), "{health}");
    let redcap = Redcap::start(redcap_addr, Arc::clone(&project)).await;
    head += 1;
    wait_for_head(&url, head).await;

    // The bridge itself restarts with a record still queued (REDCap down again when the trigger
    // came): the new process finds it in its state and sends it; its first poll asks only for
    // records changed since the last poll.
    let (redcap_addr, project) = redcap.stop().await;
    project
        .lock()
        .expect("lock")
        .change("week_16_arm_1", "ck", "170", "2024-06-05 10:00:00");
    let (status, _) = http(
        bridge.addr,
        "POST",
        &target,
        &trigger_body("STIR-01", "week_16_arm_1", "enzymes"),
    )
    .await;
    assert_eq!(status, 200);
    let (_, metrics) = http(bridge.addr, "GET", "/metrics", "").await;
    for name in [
        "myolog_bridge_records_pulled_total",
        "myolog_bridge_events_sent_total 28",
        "myolog_bridge_errors_total",
        "myolog_bridge_discrepancies_total 0",
        "myolog_bridge_lag_seconds",
        "myolog_bridge_pending_records 1",
        "myolog_bridge_last_error_timestamp",
    ] {
        assert!(metrics.contains(name), "{name}: {metrics}");
    }
    bridge.stop().await;
    let state =
        std::fs::read_to_string(dir.path().join("stir_redcap.mapping.bridge.json")).expect("state");
    assert!(state.contains("STIR-01"), "queued on disk: {state}");
    let redcap = Redcap::start(redcap_addr, Arc::clone(&project)).await;
    let bridge = start_bridge(args.clone()).await;
    head += 1;
    wait_for_head(&url, head).await;
    assert!(
        project
            .lock()
            .expect("lock")
            .calls
            .iter()
            .any(|call| call.contains_key("dateRangeBegin")),
        "the restarted bridge polls incrementally"
    );

    // Nothing doubled: every stored event id is distinct, and a trigger with nothing new sends nothing.
    let (status, _) = http(
        bridge.addr,
        "POST",
        &target,
        &trigger_body("STIR-01", "baseline_arm_1", "globals"),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let events = read_all(&myolog, head).await;
    assert_eq!(events.len() as u64, head);
    let mut ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, head);
    bridge.stop().await;
    redcap.stop().await;
    myolog.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_de_identified_redcap_token_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let token = dir.path().join("deidentified.token");
    std::fs::write(&token, DEIDENTIFIED_TOKEN).expect("token");
    let project = Arc::new(Mutex::new(Project::stir()));
    let redcap = Redcap::start(SocketAddr::from(([127, 0, 0, 1], 0)), project).await;
    let args = bridge_args(dir.path(), &redcap.url(), "http://127.0.0.1:9", &token);
    let error = Bridge::start(args.config).await.expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("de-identified"), "{text}");
    assert!(text.contains("visit_date"), "{text}");
    assert!(text.contains("Full Data Set"), "{text}");
    redcap.stop().await;
}

/// Myolog, the STIR stand-in and a bridge that has sent STIR-01's enrolment and 24 forms.
struct Running3 {
    dir: tempfile::TempDir,
    myolog: Running,
    url: String,
    project: Arc<Mutex<Project>>,
    redcap: Redcap,
    args: BridgeArgs,
    bridge: RunningBridge,
}

/// The events of STIR-01's first import (enrolment and 24 forms).
const FIRST_IMPORT: u64 = 25;

async fn start_all(configure: impl FnOnce(&mut BridgeArgs)) -> Running3 {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = setup(dir.path());
    let myolog = server::start(
        AppConfig::new(dir.path().join("log")),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .expect("myolog starts");
    let url = myolog.url();
    register(&myolog).await;
    let project = Arc::new(Mutex::new(Project::stir()));
    let redcap = Redcap::start(SocketAddr::from(([127, 0, 0, 1], 0)), Arc::clone(&project)).await;
    let mut args = bridge_args(dir.path(), &redcap.url(), &url, &token);
    configure(&mut args);
    let bridge = start_bridge(args.clone()).await;
    wait_for_head(&url, 1 + FIRST_IMPORT).await;
    Running3 {
        dir,
        myolog,
        url,
        project,
        redcap,
        args,
        bridge,
    }
}

impl Running3 {
    async fn stop(self) {
        self.bridge.stop().await;
        self.redcap.stop().await;
        self.myolog.stop().await.expect("stops");
    }
}

/// An event's source audit as (user, timestamp, UTC offset, time zone, reason).
fn audit_of(event: &pb::LoggedEvent) -> [String; 5] {
    let audit = event
        .event
        .as_ref()
        .and_then(|event| event.source_audit.clone())
        .unwrap_or_default();
    [
        audit.user,
        audit.timestamp,
        audit.utc_offset,
        audit.time_zone,
        audit.reason,
    ]
}

/// A time as REDCap's log writes it (`YYYY-MM-DD HH:MM`, its server's clock), `minutes_ago`.
fn log_time(minutes_ago: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut text = myolog_redcap_bridge::bridge::redcap_time(now - minutes_ago * 60);
    text.truncate(16);
    text
}

/// The reason the STIR mapping states when the source gives none.
fn default_reason() -> String {
    myolog_edc::mapping::Mapping::from_toml(
        &std::fs::read_to_string(data("stir_redcap.mapping.toml")).expect("mapping"),
    )
    .expect("mapping")
    .default_reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_carries_the_user_time_and_reason_of_redcaps_log() {
    let running = start_all(|_| {}).await;
    let target = format!("/trigger?secret={SECRET}");
    let mut head = 1 + FIRST_IMPORT;
    // (event, instrument, field, new value, REDCap's log entry for it, expected source audit)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        Option<(&'a str, &'a str, &'a str)>,
        [String; 5],
    );
    let zone = "America/New_York".to_string();
    let (first, second, third) = (log_time(30), log_time(20), log_time(10));
    let cases: Vec<Case> = vec![
        // The project requires a reason: it is in the entry's details.
        (
            "week_4_arm_1",
            "globals",
            "pga_vas",
            "4.5",
            Some((
                first.as_str(),
                "jane.doe",
                "pga_vas = '4.5', globals_complete = '2'\nReason for change: transcription error; value from the source document",
            )),
            [
                "jane.doe".into(),
                first.clone(),
                String::new(),
                zone.clone(),
                "transcription error; value from the source document".into(),
            ],
        ),
        // An entry without a reason: REDCap's user and time, the stated default reason.
        (
            "week_8_arm_1",
            "enzymes",
            "ck",
            "700",
            Some((second.as_str(), "john.roe", "ck = '700'")),
            [
                "john.roe".into(),
                second.clone(),
                String::new(),
                zone.clone(),
                default_reason(),
            ],
        ),
        // No entry for the value (an older one sets another value): the default reason alone.
        (
            "week_12_arm_1",
            "haq",
            "haq_di",
            "0.75",
            Some((third.as_str(), "jane.doe", "haq_di = '0.5'")),
            [
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                default_reason(),
            ],
        ),
    ];
    for (event, instrument, field, value, entry, expected) in cases {
        {
            let mut project = running.project.lock().expect("lock");
            project.change(event, field, value, "2024-06-02 10:00:00");
            if let Some((at, user, details)) = entry {
                project.log("STIR-01", at, user, "Update record STIR-01", details);
            }
        }
        let (status, _) = http(
            running.bridge.addr,
            "POST",
            &target,
            &trigger_body("STIR-01", event, instrument),
        )
        .await;
        assert_eq!(status, 200);
        head += 1;
        wait_for_head(&running.url, head).await;
        let events = read_all(&running.myolog, head).await;
        let last = events.last().expect("event");
        assert_eq!(last.event_type, "myolog.v1.AssessmentCorrected", "{event}");
        assert_eq!(audit_of(last), expected, "{event} {field}");
    }
    // The log was asked for the record only, since a time REDCap reads as `YYYY-MM-DD HH:MM`.
    let log_call = running
        .project
        .lock()
        .expect("lock")
        .calls
        .iter()
        .find(|call| {
            call.get("content").map(String::as_str) == Some("log")
                && call.get("logtype").map(String::as_str) == Some("record")
        })
        .cloned()
        .expect("the record's log was read");
    assert_eq!(log_call.get("record").map(String::as_str), Some("STIR-01"));
    let begin = log_call.get("beginTime").expect("beginTime");
    assert_eq!(begin.len(), 16, "{begin}");
    assert_eq!(
        (&begin[4..5], &begin[10..11], &begin[13..14]),
        ("-", " ", ":")
    );
    running.stop().await;
}

/// How a record leaves REDCap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deletion {
    /// A user deletes it: REDCap logs "Delete record", and the poll reads the log.
    Logged,
    /// It is gone without a log entry the bridge may read: the next reconciliation finds it absent.
    Unlogged,
}

/// Waits until the bridge's state records a completed reconciliation.
async fn wait_for_reconciliation(state: &Path) {
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(state)
            && let Ok(value) = serde_json::from_str::<serde_json::Value>(&text)
            && value["last_reconcile_began"].as_u64().is_some()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no reconciliation recorded in {}", state.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_deleted_in_redcap_retracts_what_was_imported_from_it() {
    for (how, expected_reason) in [
        (
            Deletion::Logged,
            "\"Delete record STIR-01\" by jane.doe at ",
        ),
        (
            Deletion::Unlogged,
            "record STIR-01 is no longer in the project (found absent by the bridge",
        ),
    ] {
        check_deletion(how, expected_reason).await;
    }
}

async fn check_deletion(how: Deletion, expected_reason: &str) {
    let mut running = start_all(|args| {
        args.config.poll_secs = 1;
        args.config.reconcile_every_secs = 3600;
    })
    .await;
    let state = running.dir.path().join("stir_redcap.mapping.bridge.json");
    wait_for_reconciliation(&state).await;
    let head = 1 + FIRST_IMPORT;
    let before = read_all(&running.myolog, head).await;
    let forms: Vec<String> = before
        .iter()
        .filter(|event| event.event_type == "myolog.v1.AssessmentRecorded")
        .map(|event| event.event_id.clone())
        .collect();
    assert!(!forms.is_empty());
    let deleted_at = log_time(5);
    match how {
        // No trigger fires on a deletion; the poll reads REDCap's log and finds it.
        Deletion::Logged => {
            running
                .project
                .lock()
                .expect("lock")
                .delete("STIR-01", &deleted_at, "jane.doe")
        }
        // Gone without a trace the bridge can read; the restarted bridge's reconciliation (the
        // last one made a day and more ago) finds it absent.
        Deletion::Unlogged => {
            running.bridge.stop().await;
            running
                .project
                .lock()
                .expect("lock")
                .rows
                .retain(|(_, row)| {
                    row.get("record_id").and_then(|v| v.as_str()) != Some("STIR-01")
                });
            let mut value: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&state).expect("state"))
                    .expect("json");
            value["last_reconcile_began"] = serde_json::json!(1);
            std::fs::write(&state, value.to_string()).expect("state");
            running.bridge = start_bridge(running.args.clone()).await;
        }
    }
    let head = head + forms.len() as u64;
    wait_for_head(&running.url, head).await;
    let events = read_all(&running.myolog, head).await;
    let mut retracted = Vec::new();
    for event in &events[before.len()..] {
        let Some(pb::event::Body::AssessmentRetracted(retraction)) =
            event.event.as_ref().and_then(|event| event.body.clone())
        else {
            panic!("{event:?}");
        };
        assert!(
            retraction.reason.starts_with("deleted in REDCap: ")
                && retraction.reason.contains(expected_reason),
            "{how:?}: {}",
            retraction.reason
        );
        let audit = audit_of(event);
        let expected_audit = match how {
            Deletion::Logged => ("jane.doe", deleted_at.as_str()),
            Deletion::Unlogged => ("", ""),
        };
        assert_eq!(
            (audit[0].as_str(), audit[1].as_str()),
            expected_audit,
            "{how:?}"
        );
        retracted.push(retraction.retracts_event_id);
    }
    retracted.sort();
    let mut expected = forms.clone();
    expected.sort();
    assert_eq!(retracted, expected, "{how:?}: every imported form, once");
    // The earlier values stay in the log.
    assert!(
        forms
            .iter()
            .all(|id| events.iter().any(|e| &e.event_id == id))
    );
    let (_, metrics) = http(running.bridge.addr, "GET", "/metrics", "").await;
    assert!(
        metrics.contains("myolog_bridge_records_deleted_total 1"),
        "{how:?}: {metrics}"
    );
    // Polls and reconciliations that follow retract nothing more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(read_all(&running.myolog, head).await.len() as u64, head);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_sends_what_no_trigger_or_poll_reported_and_reports_one_sided_subjects() {
    let reports = tempfile::tempdir().expect("reports");
    let report_dir = reports.path().to_path_buf();
    let mut running = start_all(|args| {
        args.config.reconcile_every_secs = 3600;
        args.config.reconcile_report_dir = Some(report_dir.clone());
    })
    .await;
    running.bridge.stop().await;
    // While the bridge is down: a value changed in REDCap that the date-range poll does not see
    // (an import backdated by REDCap's own tools, say), a record created the same way, and a
    // subject entered in Myolog by another client.
    {
        let mut project = running.project.lock().expect("lock");
        project.change("week_16_arm_1", "ck", "150", "2024-01-01 00:00:00");
        project.copy_record("STIR-01", "STIR-02", "2024-01-01 00:00:00");
    }
    Clients::connect(&running.myolog)
        .await
        .append(pb::SubmitRequest {
            batch_id: "elsewhere".into(),
            events: vec![pb::Event {
                event_id: "STIR.S-99.enrolled".into(),
                study_id: "STIR".into(),
                subject_id: "S-99".into(),
                clinical_date: "2024-02-01".into(),
                body: Some(pb::event::Body::SubjectEnrolled(pb::SubjectEnrolled {
                    arm: "placebo".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }],
        })
        .await;
    // The last reconciliation is a day and more old: the restarted bridge reconciles at start.
    let state_path = running.dir.path().join("stir_redcap.mapping.bridge.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).expect("state")).expect("json");
    assert!(state["last_reconcile_began"].as_u64().is_some(), "{state}");
    state["last_reconcile_began"] = serde_json::json!(1);
    std::fs::write(&state_path, state.to_string()).expect("state");
    for report in std::fs::read_dir(&report_dir).expect("reports") {
        std::fs::remove_file(report.expect("entry").path()).expect("remove");
    }
    running.bridge = start_bridge(running.args.clone()).await;
    // STIR-01's week 16 correction, STIR-02's enrolment and forms.
    let head = 1 + FIRST_IMPORT + 1 + 1 + FIRST_IMPORT;
    wait_for_head(&running.url, head).await;
    let events = read_all(&running.myolog, head).await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "myolog.v1.AssessmentCorrected" && e.stream == "STIR/STIR-01"),
        "the hidden change went in"
    );
    // The report: one JSON and one CSV file.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&report_dir)
        .expect("reports")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let csv = std::fs::read_to_string(&files[0]).expect("csv");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[1]).expect("json")).expect("json");
    assert_eq!(
        report["redcap_only_subjects"],
        serde_json::json!(["STIR-02"])
    );
    assert_eq!(report["myolog_only_subjects"], serde_json::json!(["S-99"]));
    let differences = report["differences"].as_array().expect("differences");
    assert!(
        differences
            .iter()
            .any(|d| d["subject"] == "STIR-01" && d["visit"] == "W16" && d["kind"] == "corrected"),
        "{report}"
    );
    assert!(csv.contains("myolog_only_subject,S-99"), "{csv}");
    assert!(csv.contains("redcap_only_subject,STIR-02"), "{csv}");
    let (_, health) = http(running.bridge.addr, "GET", "/healthz", "").await;
    let health: serde_json::Value = serde_json::from_str(&health).expect("health");
    assert_eq!(
        health["reconciliation"]["myolog_only_subjects"],
        serde_json::json!(["S-99"])
    );
    let (_, metrics) = http(running.bridge.addr, "GET", "/metrics", "").await;
    for line in [
        "myolog_bridge_reconcile_myolog_only_subjects 1",
        "myolog_bridge_reconcile_redcap_only_subjects 1",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
    running.stop().await;
}

/// A CA and a certificate for 127.0.0.1 it signed: (CA PEM, server config).
fn https_identity() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Test REDCap CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
    let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca).expect("signed");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .expect("server config");
    (ca.pem(), Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_reaches_redcap_over_https_trusting_the_given_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = setup(dir.path());
    let myolog = server::start(
        AppConfig::new(dir.path().join("log")),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .expect("myolog starts");
    let url = myolog.url();
    register(&myolog).await;
    let (ca_pem, tls) = https_identity();
    let ca_file = dir.path().join("redcap-ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("ca");
    let project = Arc::new(Mutex::new(Project::stir()));
    let redcap = Redcap::start_tls(Arc::clone(&project), tls).await;
    assert!(redcap.url().starts_with("https://127.0.0.1:"));
    // Neither the system's roots nor anything else vouch for the test CA: refused.
    let args = bridge_args(dir.path(), &redcap.url(), &url, &token);
    let refused = Bridge::start(args.config.clone()).await;
    assert!(refused.is_err(), "an unknown CA is not trusted");
    assert!(
        project.lock().expect("lock").calls.is_empty(),
        "nothing was answered"
    );
    // With the CA file: the bridge starts and imports over HTTPS.
    let mut trusting = args.clone();
    trusting.config.redcap_ca_file = Some(ca_file);
    let bridge = start_bridge(trusting).await;
    wait_for_head(&url, 1 + FIRST_IMPORT).await;
    bridge.stop().await;
    redcap.stop().await;
    myolog.stop().await.expect("stops");
}
