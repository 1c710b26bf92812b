//! TLS end to end: certificates made at test time (rcgen: a CA, the server's certificate for
//! localhost, client certificates), a real server on 127.0.0.1:0 serving TLS with an optional client
//! CA, real tonic clients. Token callers need no client certificate; a verified client certificate's
//! subject CN is the principal (a `[[client]]` of the principals file) and is recorded as such;
//! unknown, revoked and foreign certificates, and plaintext clients, are refused. The Python client
//! (grpcio) does the same over TLS with and without a client certificate.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use myolog_cli::client::{ConnectError, ServerTls};
use myolog_cli::demo::DemoArgs;
use myolog_cli::demo::{self, DemoError};
use myolog_cli::study::{self, RegisterArgs, StudyError};
use myolog_cli::token::{IssueArgs, issue};
use myolog_proto::v1 as pb;
use myolog_proto::v1::audit_client::AuditClient;
use myolog_proto::v1::ingest_client::IngestClient;
use myolog_server::app::AppConfig;
use myolog_server::auth::tls::{TlsFiles, subject_common_name};
use myolog_server::auth::{Auth, now_unix_nanos};
use myolog_server::server;
use myolog_synth::{Cohort, STUDY};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request};

type Ca = CertifiedIssuer<'static, KeyPair>;

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A certificate for `common_name` (and `names` as subject alternative names) signed by `ca`:
/// (certificate PEM, key PEM, certificate DER).
fn leaf(ca: &Ca, common_name: &str, names: &[&str]) -> (String, String, Vec<u8>) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Myolog tests");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("signed");
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn token(file: &Path, principal: &str, role: &str) -> String {
    issue(
        &IssueArgs {
            principal: principal.into(),
            role: role.into(),
            studies: vec![STUDY.into()],
            sites: Vec::new(),
            file: file.to_path_buf(),
            expires: None,
        },
        now_unix_nanos(),
    )
    .expect("issued")
}

/// A health check over TLS: address, CA file, server name, and SERVING or the start of the error.
type HealthCase<'a> = (
    String,
    Option<&'a Path>,
    Option<&'a str>,
    Result<(), &'a str>,
);

async fn connect(
    url: &str,
    tls: Option<ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let mut endpoint = Channel::from_shared(url.to_string()).expect("url");
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls)?;
    }
    endpoint.connect().await
}

fn authed<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
    }
    request
}

/// The code of Audit.Verify over `channel` (a failed connection counts as UNAVAILABLE).
async fn verify_code(
    channel: Result<Channel, tonic::transport::Error>,
    token: Option<&str>,
) -> Code {
    let Ok(channel) = channel else {
        return Code::Unavailable;
    };
    match AuditClient::new(channel)
        .verify(authed(pb::VerifyRequest {}, token))
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[test]
fn the_common_name_is_read_from_real_certificates() {
    let authority = ca("Myolog test CA");
    // (common name)
    for name in ["edc-stir", "edc@site-1", "ünïcode", "x"] {
        let (_, _, der) = leaf(&authority, name, &["localhost"]);
        assert_eq!(subject_common_name(&der).as_deref(), Some(name));
        // Every truncation of a real certificate is refused, never a panic.
        for cut in 0..der.len() {
            assert_eq!(
                subject_common_name(&der[..cut]),
                None,
                "{name} cut at {cut}"
            );
        }
    }
    assert_eq!(
        subject_common_name(authority.der()).as_deref(),
        Some("Myolog test CA")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_tokens_and_with_client_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let authority = ca("Myolog test CA");
    let stranger_ca = ca("Somebody else's CA");
    let (server_cert, server_key, _) = leaf(&authority, "myolog", &["localhost", "127.0.0.1"]);
    let file = dir.path().join("principals.toml");
    let auditor = token(&file, "inspector", "auditor");
    let admin = token(&file, "dm-admin", "admin");
    let mut text = std::fs::read_to_string(&file).expect("read");
    text.push_str(&format!(
        "\n[[client]]\nprincipal = \"edc-cert\"\nrole = \"writer\"\nstudies = [\"{STUDY}\"]\n\
         \n[[client]]\nprincipal = \"edc-lost\"\nrole = \"writer\"\nstudies = [\"{STUDY}\"]\nrevoked = true\n"
    ));
    std::fs::write(&file, text).expect("write");

    let files = TlsFiles {
        cert: write(dir.path(), "server.pem", &server_cert),
        key: write(dir.path(), "server.key", &server_key),
        client_ca: Some(write(dir.path(), "ca.pem", &authority.pem())),
    };
    let auth = Auth::from_file(&file).expect("principals");
    auth.use_tls(files.load().expect("TLS files"));
    let running = server::start_secured(
        AppConfig::new(dir.path().join("log")),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(Arc::clone(&auth)),
    )
    .await
    .expect("server starts");
    let url = format!("https://127.0.0.1:{}", running.addr.port());
    let client_tls = |identity: Option<(String, String)>| {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(authority.pem()))
            .domain_name("localhost");
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        tls
    };
    let identity = |ca: &Ca, name: &str| {
        let (cert, key, _) = leaf(ca, name, &[]);
        Some((cert, key))
    };

    // (case, client certificate, token, expected code of Audit.Verify)
    let cases = [
        ("token, no certificate", None, Some(&auditor), Code::Ok),
        (
            "neither token nor certificate",
            None,
            None,
            Code::Unauthenticated,
        ),
        (
            "writer certificate reading the log",
            identity(&authority, "edc-cert"),
            None,
            Code::PermissionDenied,
        ),
        (
            "token wins over the certificate",
            identity(&authority, "edc-cert"),
            Some(&auditor),
            Code::Ok,
        ),
        (
            "revoked certificate",
            identity(&authority, "edc-lost"),
            None,
            Code::Unauthenticated,
        ),
        (
            "certificate of no [[client]]",
            identity(&authority, "stranger"),
            None,
            Code::Unauthenticated,
        ),
        (
            "certificate of another CA",
            identity(&stranger_ca, "edc-cert"),
            None,
            Code::Unavailable,
        ),
    ];
    for (case, certificate, token, expected) in cases {
        let channel = connect(&url, Some(client_tls(certificate))).await;
        let code = verify_code(channel, token.map(String::as_str)).await;
        if expected == Code::Unavailable {
            assert!(
                !matches!(
                    code,
                    Code::Ok | Code::PermissionDenied | Code::Unauthenticated
                ),
                "{case}: {code:?}"
            );
        } else {
            assert_eq!(code, expected, "{case}");
        }
    }
    // A plaintext client gets nowhere.
    let plaintext = connect(&format!("http://127.0.0.1:{}", running.addr.port()), None).await;
    let code = verify_code(plaintext, Some(&auditor)).await;
    assert_ne!(code, Code::Ok, "plaintext against TLS");

    // The certificate's principal writes and is recorded as itself.
    let cohort = Cohort::new(2017, 1);
    let (register, enroll): (Vec<_>, Vec<_>) = cohort
        .enrollment()
        .events
        .into_iter()
        .partition(|e| matches!(e.body, Some(pb::event::Body::StudyRegistered(_))));
    let token_channel = connect(&url, Some(client_tls(None)))
        .await
        .expect("TLS connects");
    IngestClient::new(token_channel.clone())
        .append(authed(
            pb::SubmitRequest {
                batch_id: "register".into(),
                events: register,
            },
            Some(&admin),
        ))
        .await
        .expect("admin registers over TLS");
    let cert_channel = connect(&url, Some(client_tls(identity(&authority, "edc-cert"))))
        .await
        .expect("mutual TLS connects");
    let response = IngestClient::new(cert_channel)
        .append(authed(
            pb::SubmitRequest {
                batch_id: "enroll".into(),
                events: enroll,
            },
            None,
        ))
        .await
        .expect("certificate writer enrolls")
        .into_inner();
    assert!(response.rejection.is_none(), "{response:?}");
    let mut events = AuditClient::new(token_channel)
        .read_events(authed(
            pb::ReadEventsRequest {
                study_id: String::new(),
                from_sequence: 1,
                limit: 0,
            },
            Some(&auditor),
        ))
        .await
        .expect("auditor reads")
        .into_inner();
    let mut recorded_by = Vec::new();
    while let Some(event) = events.message().await.expect("event") {
        recorded_by.push(event.recorded_by);
    }
    assert_eq!(
        recorded_by.first().map(String::as_str),
        Some("dm-admin (admin)")
    );
    assert!(recorded_by.len() > 1);
    assert!(
        recorded_by[1..].iter().all(|by| by == "edc-cert (writer)"),
        "{recorded_by:?}"
    );

    // `myolog healthcheck` against the TLS server: (address, CA, server name, SERVING or the start
    // of the error).
    let port = running.addr.port();
    let ca_file = dir.path().join("ca.pem");
    let stranger_file = write(dir.path(), "stranger.pem", &stranger_ca.pem());
    let missing_file = dir.path().join("no-such-ca.pem");
    let cases: [HealthCase<'_>; 9] = [
        (url.clone(), Some(&ca_file), None, Ok(())),
        (format!("127.0.0.1:{port}"), Some(&ca_file), None, Ok(())),
        (url.clone(), Some(&ca_file), Some("localhost"), Ok(())),
        (
            url.clone(),
            Some(&ca_file),
            Some("elsewhere.example"),
            Err("cannot connect"),
        ),
        (
            url.clone(),
            Some(&stranger_file),
            None,
            Err("cannot connect"),
        ),
        (url.clone(), None, None, Err("https://127.0.0.1:")),
        (format!("http://127.0.0.1:{port}"), None, None, Err("")),
        (
            url.clone(),
            Some(&missing_file),
            None,
            Err("reading the TLS CA certificate"),
        ),
        (
            format!("http://127.0.0.1:{port}"),
            Some(&ca_file),
            None,
            Err("http://127.0.0.1:"),
        ),
    ];
    for (addr, ca, server_name, expected) in cases {
        let tls = ServerTls {
            ca: ca.map(Path::to_path_buf),
            server_name: server_name.map(str::to_string),
        };
        let result = myolog_cli::healthcheck::check(&addr, &tls, std::time::Duration::from_secs(5))
            .await
            .map_err(|error| error.to_string());
        match (&result, expected) {
            (Ok(()), Ok(())) => {}
            (Err(error), Err(start)) if error.starts_with(start) => {}
            _ => panic!("{addr} {ca:?} {server_name:?}: {result:?}, expected {expected:?}"),
        }
    }

    // The other client commands reach a TLS server the same way. With the CA they get through the
    // handshake to the server's authentication (this process sends no token: UNAUTHENTICATED is
    // the server's answer, so TLS worked); without it they stop at the address.
    let with_ca = ServerTls {
        ca: Some(ca_file.clone()),
        server_name: Some("localhost".into()),
    };
    for (tls, reached) in [(with_ca, true), (ServerTls::default(), false)] {
        let register = RegisterArgs {
            file: std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../protocols/stir.toml"
            )),
            addr: url.clone(),
            study: None,
            amend: false,
            date: None,
            event_id: None,
            tls: tls.clone(),
        };
        let registered = study::register(&register, &mut Vec::new()).await;
        let outcomes = demo::print_outcomes(&url, &tls, STUDY, "W12", None, &mut Vec::new()).await;
        let demo_args = DemoArgs {
            data: None,
            addr: Some(url.clone()),
            seed: 1,
            tls,
        };
        let demo = demo::run(&demo_args, &mut Vec::new()).await;
        if reached {
            assert!(
                matches!(&registered, Err(StudyError::Rejected(text)) if text.starts_with("Unauthenticated: ")),
                "{registered:?}"
            );
            for result in [outcomes, demo] {
                assert!(
                    matches!(&result, Err(DemoError::Call(status)) if status.code() == Code::Unauthenticated),
                    "{result:?}"
                );
            }
        } else {
            assert!(
                matches!(
                    &registered,
                    Err(StudyError::Connect(ConnectError::MissingCa { .. }))
                ),
                "{registered:?}"
            );
            for result in [outcomes, demo] {
                assert!(
                    matches!(
                        &result,
                        Err(DemoError::Connect(ConnectError::MissingCa { .. }))
                    ),
                    "{result:?}"
                );
            }
        }
    }
    running.stop().await.expect("stops");
}

/// The Python client's side (grpcio): Audit.Verify over TLS as each (case, certificate, token) in
/// argv's JSON, printing one JSON object of case -> status code name.
const PYTHON_TLS_CLIENT: &str = r#"
import json, sys
import grpc
from myolog.v1 import service_pb2, service_pb2_grpc

target, ca_path, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
ca = open(ca_path, "rb").read()
out = {}
for case in cases:
    cert = open(case["cert"], "rb").read() if case.get("cert") else None
    key = open(case["key"], "rb").read() if case.get("key") else None
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(target, creds, options=options) as channel:
        stub = service_pb2_grpc.AuditStub(channel)
        metadata = [("authorization", "Bearer " + case["token"])] if case.get("token") else None
        try:
            reply = stub.Verify(service_pb2.VerifyRequest(), metadata=metadata, timeout=10)
            out[case["name"]] = "OK" if reply.ok else "NOT_OK"
        except grpc.RpcError as error:
            out[case["name"]] = error.code().name
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_over_tls_with_and_without_a_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stubs = dir.path().join("stubs");
    std::fs::create_dir(&stubs).expect("mkdir");
    myolog_tests::python_stubs(&stubs);
    let authority = ca("Myolog test CA");
    let (server_cert, server_key, _) = leaf(&authority, "myolog", &["localhost"]);
    let file = dir.path().join("principals.toml");
    let auditor = token(&file, "inspector", "auditor");
    let mut text = std::fs::read_to_string(&file).expect("read");
    text.push_str("\n[[client]]\nprincipal = \"py-auditor\"\nrole = \"auditor\"\n");
    text.push_str(&format!(
        "\n[[client]]\nprincipal = \"py-writer\"\nrole = \"writer\"\nstudies = [\"{STUDY}\"]\n"
    ));
    std::fs::write(&file, text).expect("write");
    let ca_path = write(dir.path(), "ca.pem", &authority.pem());
    let files = TlsFiles {
        cert: write(dir.path(), "server.pem", &server_cert),
        key: write(dir.path(), "server.key", &server_key),
        client_ca: Some(ca_path.clone()),
    };
    let auth = Auth::from_file(&file).expect("principals");
    auth.use_tls(files.load().expect("TLS files"));
    let running = server::start_secured(
        AppConfig::new(dir.path().join("log")),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(auth),
    )
    .await
    .expect("server starts");
    let client_files = |name: &str| {
        let (cert, key, _) = leaf(&authority, name, &[]);
        (
            write(dir.path(), &format!("{name}.pem"), &cert),
            write(dir.path(), &format!("{name}.key"), &key),
        )
    };
    let (auditor_cert, auditor_key) = client_files("py-auditor");
    let (writer_cert, writer_key) = client_files("py-writer");
    // (case, certificate and key, token, expected status code name)
    let cases = [
        ("token", None, Some(auditor.as_str()), "OK"),
        ("nothing", None, None, "UNAUTHENTICATED"),
        (
            "auditor certificate",
            Some((&auditor_cert, &auditor_key)),
            None,
            "OK",
        ),
        (
            "writer certificate",
            Some((&writer_cert, &writer_key)),
            None,
            "PERMISSION_DENIED",
        ),
    ];
    let json_cases: Vec<serde_json::Value> = cases
        .iter()
        .map(|(name, identity, token, _)| {
            serde_json::json!({
                "name": name,
                "cert": identity.map(|(c, _)| c.display().to_string()),
                "key": identity.map(|(_, k)| k.display().to_string()),
                "token": token,
            })
        })
        .collect();
    let script = write(dir.path(), "tls_client.py", PYTHON_TLS_CLIENT);
    let target = running.addr.to_string();
    let argument = serde_json::Value::Array(json_cases).to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(target)
            .arg(ca_path)
            .arg(argument)
            .env("PYTHONPATH", stubs)
            .output()
    })
    .await
    .expect("join")
    .expect("python3 runs");
    assert!(
        output.status.success(),
        "the Python TLS client failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    for (name, _, _, expected) in cases {
        assert_eq!(report[name], expected, "{name}: {report}");
    }
    running.stop().await.expect("stops");
}
