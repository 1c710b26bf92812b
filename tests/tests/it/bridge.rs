//! `myolog bridge` against a real Myolog server and a stand-in REDCap over real HTTP on loopback: the
//! stand-in answers the API's documented shapes (`content=metadata`, `content=record` flat JSON with
//! `records[]`, `fields[]`, `dateRangeBegin`, `exportDataAccessGroups`; a de-identified token gets no
//! date columns) from the STIR-shaped project; the Data Entry Trigger is a real form-encoded POST.
//! Restarts of Myolog, of REDCap and of the bridge itself lose nothing and double nothing.

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
use myolog_cli::bridge::{Bridge, BridgeArgs};
use myolog_cli::client::{Bearer, ServerTls};
use myolog_proto::v1 as pb;
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
        }
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
    project: Arc<Mutex<Project>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Redcap {
    async fn start(addr: SocketAddr, project: Arc<Mutex<Project>>) -> Self {
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
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }));
            }
            // Down means down: open connections go too.
            for connection in connections {
                connection.abort();
            }
        });
        Self {
            addr,
            project,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/api/", self.addr)
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

fn bridge_args(dir: &Path, redcap: &str, myolog: &str, token_file: &Path) -> BridgeArgs {
    BridgeArgs {
        redcap_url: redcap.to_string(),
        redcap_token_file: token_file.to_path_buf(),
        redcap_ca: None,
        mapping: dir.join("stir_redcap.mapping.toml"),
        addr: myolog.to_string(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        trigger_secret_file: Some(dir.join("trigger.secret")),
        redcap_project_id: Some(42),
        poll_secs: 3600,
        poll_overlap_secs: 86_400,
        state: None,
        ledger: None,
        tls: ServerTls::default(),
    }
}

async fn start_bridge(args: BridgeArgs) -> RunningBridge {
    let listener = TcpListener::bind(args.listen).await.expect("bind bridge");
    let addr = listener.local_addr().expect("addr");
    let bridge = Bridge::start(args).await.expect("the bridge starts");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        bridge
            .run(listener, Bearer::default(), async {
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
    let error = Bridge::start(args).await.expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("de-identified"), "{text}");
    assert!(text.contains("visit_date"), "{text}");
    assert!(text.contains("Full Data Set"), "{text}");
    redcap.stop().await;
}
