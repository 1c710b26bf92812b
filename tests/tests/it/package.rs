//! The analysis and tabulation package (`myolog export --package DIR`, `myolog verify --package DIR`)
//! end to end over real logs: the golden demo log (`tests/data/golden-demo/demo-log.tar.gz`, written
//! by an earlier build, so it predates sex, race and informed-consent dates) and logs written here
//! from the synthetic cohort the way the service stores events.
//!
//! What is checked: every dataset keeps the SAS V5 limits (names <= 8, labels <= 40, values <= 200
//! bytes); every Dataset-JSON file validates against CDISC's Dataset-JSON 1.1 schema committed in
//! `crates/cdisc/tests/schemas/`; every XPORT file read back by pyreadstat and pandas
//! (`crates/cdisc/tests/python/read_xpt.py`) agrees with the Dataset-JSON rows; every Define-XML
//! reference resolves (to definitions and to files in the package) and `xmllint --schema` accepts it;
//! two exports are byte-identical; `verify --package` names a changed, missing or extra file; a
//! blinded study is refused without `--unblinded-export --reason`; and a small package is
//! byte-identical to the reviewed one committed in `tests/data/package/` (see its README).
//!
//! Needs `python3 -m pip install -r requirements-test.txt` and `apt-get install libxml2-utils`; a
//! missing tool fails the test with that hint.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A test should fail loudly at the failing call.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use myolog_audit::package::{self, Difference, PackageFormat, PackageOptions};
use myolog_audit::progress::Progress;
use myolog_audit::replay::{self, AsOf};
use myolog_cli::audit::{AsOfArgs, ExportArgs, ExportFormat, PackageArgs, run_export};
use myolog_cli::command::{VerifyArgs, verify};
use myolog_proto::v1 as pb;
use myolog_storage::{EventLog, ExpectedVersion, LogOptions, NewEvent};
use myolog_synth::{Cohort, VISITS};
use serde_json::Value as Json;

/// The as-of point of the committed golden package: the demo's enrolment, every baseline visit and
/// the first subjects' week 4, small enough to review by hand.
const GOLDEN_AS_OF: u64 = 120;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The golden demo log unpacked into `dir/v1` and migrated to today's format in `dir/log`.
fn golden_log(dir: &Path) -> PathBuf {
    let log = dir.join("log");
    myolog_storage::legacy_v1::migrate(&golden_log_v1(dir), &log, LogOptions::default())
        .expect("the golden log migrates");
    log
}

/// The golden demo log as written (format version 1), unpacked into `dir/v1`.
fn golden_log_v1(dir: &Path) -> PathBuf {
    let log = dir.join("v1");
    std::fs::create_dir_all(&log).unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(repo("tests/data/golden-demo/demo-log.tar.gz"))
        .arg("-C")
        .arg(&log)
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar -xzf demo-log.tar.gz");
    log
}

/// A log in `dir` holding `requests` as the service stores them (decoded and validated by the wire
/// codec, canonically re-encoded, one append per request).
fn offline_log(dir: &Path, requests: Vec<pb::SubmitRequest>) -> PathBuf {
    let path = dir.join("log");
    let log = EventLog::open(&path, LogOptions::default()).unwrap();
    for request in requests {
        let events = request
            .events
            .iter()
            .map(|wire_event| {
                let event =
                    myolog_wire::event_from_proto(wire_event, "event").expect("valid event");
                NewEvent {
                    event_id: event.event_id.to_string(),
                    stream_key: myolog_wire::stream_key(&event),
                    expected_version: ExpectedVersion::Any,
                    event_type: event.body.type_name().into(),
                    schema_version: myolog_wire::stored::SCHEMA_VERSION,
                    payload: myolog_wire::stored::encode(wire_event),
                }
            })
            .collect();
        log.append(events, "test").unwrap();
    }
    path
}

/// A STIR cohort of `n` subjects with every visit; `blinded` registers it blinded.
fn stir_requests(n: usize, blinded: bool) -> Vec<pb::SubmitRequest> {
    let cohort = Cohort::new(7, n).with_stir_protocol();
    let mut enrolment = cohort.enrollment();
    if let Some(pb::event::Body::StudyRegistered(study)) = &mut enrolment.events[0].body {
        study.blinded = blinded;
    }
    let mut requests = vec![enrolment];
    for (visit, _) in VISITS {
        requests.extend((0..cohort.len()).map(|index| cohort.visit_batch(index, visit)));
    }
    requests
}

fn export_args(data: &Path, dir: &Path, as_of_seq: Option<u64>) -> ExportArgs {
    ExportArgs {
        data: data.to_path_buf(),
        what: None,
        format: Vec::new(),
        out: None,
        as_of: AsOfArgs {
            as_of_seq,
            as_of_time: None,
        },
        package: PackageArgs {
            package: Some(dir.to_path_buf()),
            ..PackageArgs::default()
        },
    }
}

fn export(data: &Path, dir: &Path, as_of_seq: Option<u64>) {
    assert_eq!(
        run_export(&export_args(data, dir, as_of_seq)),
        ExitCode::SUCCESS,
        "export --package {}",
        dir.display()
    );
}

/// Every file of a directory: name -> bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

fn json(path: &Path) -> Json {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The dataset names of a package, from its Dataset-JSON files.
fn dataset_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = files(dir)
        .keys()
        .filter_map(|name| name.strip_suffix(".json"))
        .filter(|name| *name != "manifest")
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// One exported package of the whole golden log, shared by the read-only checks.
fn golden_package() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = golden_log(dir.path());
    let out = dir.path().join("package");
    export(&log, &out, None);
    (dir, log, out)
}

#[test]
fn the_package_holds_every_dataset_in_every_format_with_define_guide_and_manifest() {
    let (_dir, _log, out) = golden_package();
    let names: BTreeSet<String> = files(&out).into_keys().collect();
    let mut expected: BTreeSet<String> = ["define.xml", "adrg.md", "manifest.json"]
        .map(String::from)
        .into();
    for dataset in ["adsl", "adeff", "dm", "ta", "te", "tv", "ti", "ts"] {
        for extension in ["xpt", "json", "csv"] {
            expected.insert(format!("{dataset}.{extension}"));
        }
    }
    assert_eq!(names, expected);

    // The manifest: the log point and each other file's checksum.
    let manifest = json(&out.join("manifest.json"));
    assert_eq!(manifest["log"]["as_of_sequence"], 382);
    assert_eq!(manifest["log"]["chain_hash"].as_str().unwrap().len(), 64);
    assert_eq!(manifest["unblinded_export"], Json::Null);
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(listed.len(), expected.len() - 1);
    for file in listed {
        let bytes = std::fs::read(out.join(file["name"].as_str().unwrap())).unwrap();
        assert_eq!(
            file["sha256"].as_str().unwrap(),
            package::manifest::sha256_hex(&bytes),
            "{}",
            file["name"]
        );
    }
}

#[test]
fn every_dataset_keeps_the_sas_v5_limits() {
    let (_dir, _log, out) = golden_package();
    for name in dataset_names(&out) {
        let document = json(&out.join(format!("{name}.json")));
        let dataset = document["name"].as_str().unwrap();
        assert!(dataset.len() <= 8, "{dataset}");
        assert!(document["label"].as_str().unwrap().chars().count() <= 40);
        let columns = document["columns"].as_array().unwrap();
        for column in columns {
            let column_name = column["name"].as_str().unwrap();
            assert!(
                column_name.len() <= 8
                    && column_name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{dataset}.{column_name}"
            );
            assert!(
                column["label"].as_str().unwrap().chars().count() <= 40,
                "{dataset}.{column_name} label"
            );
        }
        for row in document["rows"].as_array().unwrap() {
            for (column, cell) in columns.iter().zip(row.as_array().unwrap()) {
                if let Json::String(text) = cell {
                    assert!(text.len() <= 200, "{dataset}.{}: {text}", column["name"]);
                }
            }
        }
        // PARAMCD carries the parameter only (<= 8 characters), the visit is in AVISIT.
        if dataset == "ADEFF" {
            let at = |n: &str| columns.iter().position(|c| c["name"] == n).unwrap();
            let (paramcd, avisit) = (at("PARAMCD"), at("AVISIT"));
            for row in document["rows"].as_array().unwrap() {
                let code = row[paramcd].as_str().unwrap();
                assert!(code.len() <= 8, "{code}");
                assert!(!code.contains(row[avisit].as_str().unwrap()), "{code}");
            }
        }
    }
}

fn validator() -> jsonschema::Validator {
    let path = repo("crates/cdisc/tests/schemas/dataset-json-1.1/dataset.schema.json");
    jsonschema::draft201909::new(&json(&path)).unwrap()
}

#[test]
fn dataset_json_files_validate_against_the_committed_schema() {
    let (_dir, _log, out) = golden_package();
    let validator = validator();
    for name in dataset_names(&out) {
        let document = json(&out.join(format!("{name}.json")));
        let errors: Vec<String> = validator
            .iter_errors(&document)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}.json: {errors:?}");
        assert_eq!(
            document["records"].as_u64().unwrap() as usize,
            document["rows"].as_array().unwrap().len()
        );
        assert_eq!(document["metaDataRef"], "define.xml");
    }
    // The schema is strict enough to notice a broken file.
    let mut broken = json(&out.join("adsl.json"));
    broken["columns"][0]["dataType"] = Json::from("text");
    assert!(!validator.is_valid(&broken));
}

fn sas_days(iso: &str) -> f64 {
    let parts: Vec<i64> = iso.split('-').map(|p| p.parse().unwrap()).collect();
    let date = myolog_cdisc::CalendarDate::new(
        i32::try_from(parts[0]).unwrap(),
        u8::try_from(parts[1]).unwrap(),
        u8::try_from(parts[2]).unwrap(),
    )
    .unwrap();
    date.sas_days() as f64
}

/// What an XPORT reader gives for a Dataset-JSON cell: text for character variables (missing and
/// empty both ""), numbers for numeric ones, null for a numeric missing.
fn expected_cell(column: &Json, cell: &Json) -> Json {
    let data_type = column["dataType"].as_str().unwrap();
    let numeric_date = column.get("targetDataType") == Some(&Json::from("integer"));
    let character = data_type == "string" || (data_type == "date" && !numeric_date);
    match cell {
        Json::Null if character => Json::from(""),
        Json::Null => Json::Null,
        Json::String(s) if character => Json::from(s.as_str()),
        Json::String(s) if data_type == "date" => Json::from(sas_days(s)),
        Json::String(s) => Json::from(s.parse::<f64>().unwrap()),
        Json::Number(n) => Json::from(n.as_f64().unwrap()),
        other => panic!("unexpected cell {other}"),
    }
}

/// Within the IBM double's precision (at least 53 significant bits) plus one IEEE rounding.
fn same(expected: &Json, actual: &Json) -> bool {
    match (expected, actual) {
        (Json::Number(e), Json::Number(a)) => {
            let (e, a) = (e.as_f64().unwrap(), a.as_f64().unwrap());
            (e - a).abs() <= e.abs() * 2f64.powi(-51)
        }
        _ => expected == actual,
    }
}

#[test]
fn xpt_read_back_by_pyreadstat_and_pandas_agrees_with_dataset_json() {
    let (_dir, _log, out) = golden_package();
    let script = repo("crates/cdisc/tests/python/read_xpt.py");
    for name in dataset_names(&out) {
        let output = Command::new("python3")
            .arg(&script)
            .arg(out.join(format!("{name}.xpt")))
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e})"));
        assert!(
            output.status.success(),
            "read_xpt.py {name}.xpt: {} (python3 -m pip install -r requirements-test.txt)",
            String::from_utf8_lossy(&output.stderr)
        );
        let readers: Json = serde_json::from_slice(&output.stdout).unwrap();
        let document = json(&out.join(format!("{name}.json")));
        let columns = document["columns"].as_array().unwrap();
        for reader in ["pyreadstat", "pandas"] {
            let read = &readers[reader];
            let names: Vec<&Json> = columns.iter().map(|c| &c["name"]).collect();
            assert_eq!(
                read["columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .collect::<Vec<_>>(),
                names,
                "{reader} {name}: columns"
            );
            let rows = read["rows"].as_array().unwrap();
            let expected_rows = document["rows"].as_array().unwrap();
            assert_eq!(rows.len(), expected_rows.len(), "{reader} {name}: rows");
            for (r, (row, expected_row)) in rows.iter().zip(expected_rows).enumerate() {
                for ((column, actual), cell) in columns
                    .iter()
                    .zip(row.as_array().unwrap())
                    .zip(expected_row.as_array().unwrap())
                {
                    let expected = expected_cell(column, cell);
                    // pandas reads SAS's zero as 16^-65 (a known, open pandas bug).
                    let pandas_zero = reader == "pandas"
                        && expected == 0.0
                        && actual.as_f64() == Some(16f64.powi(-65));
                    assert!(
                        pandas_zero || same(&expected, actual),
                        "{reader} {name} row {r} {}: read {actual}, expected {expected}",
                        column["name"]
                    );
                }
            }
        }
        assert_eq!(
            readers["pyreadstat"]["table_name"], document["name"],
            "{name}"
        );
    }
}

#[test]
fn define_xml_references_resolve_and_the_schema_accepts_it() {
    let (_dir, _log, out) = golden_package();
    let text = std::fs::read_to_string(out.join("define.xml")).unwrap();
    let document = roxmltree::Document::parse(&text).unwrap();
    let defined = |tag: &str, attribute: &str| -> BTreeSet<String> {
        document
            .descendants()
            .filter(|n| n.tag_name().name() == tag)
            .filter_map(|n| n.attribute(attribute).map(str::to_string))
            .collect()
    };
    let referenced = |tag: &str, attribute: &str| -> BTreeSet<String> {
        document
            .descendants()
            .filter(|n| n.tag_name().name() == tag)
            .filter_map(|n| {
                n.attributes()
                    .find(|a| a.name() == attribute)
                    .map(|a| a.value().to_string())
            })
            .collect()
    };
    let item_defs = defined("ItemDef", "OID");
    for (tag, attribute, targets) in [
        ("ItemRef", "ItemOID", item_defs.clone()),
        ("ItemRef", "MethodOID", defined("MethodDef", "OID")),
        ("CodeListRef", "CodeListOID", defined("CodeList", "OID")),
        (
            "ValueListRef",
            "ValueListOID",
            defined("ValueListDef", "OID"),
        ),
        (
            "WhereClauseRef",
            "WhereClauseOID",
            defined("WhereClauseDef", "OID"),
        ),
        ("RangeCheck", "ItemOID", item_defs.clone()),
    ] {
        let refs = referenced(tag, attribute);
        assert!(!refs.is_empty(), "no {tag}/@{attribute} in the Define-XML");
        let dangling: Vec<&String> = refs.difference(&targets).collect();
        assert!(
            dangling.is_empty(),
            "{tag}/@{attribute} dangling: {dangling:?}"
        );
    }
    // Every dataset is described, and each def:leaf names a file of the package.
    let groups = defined("ItemGroupDef", "Name");
    let expected: BTreeSet<String> = dataset_names(&out)
        .iter()
        .map(|n| n.to_ascii_uppercase())
        .collect();
    assert_eq!(groups, expected);
    let hrefs = referenced("leaf", "href");
    for href in &hrefs {
        assert!(
            out.join(href).is_file(),
            "def:leaf {href} is not in the package"
        );
    }
    assert!(hrefs.contains("adrg.md"));
    // The rounding rule is stated.
    assert!(text.contains("rounded half away from zero to 6 decimal places"));

    let schema = repo("crates/cdisc/tests/schemas/define-xml-2.1/define/2.1/define2-1-0.xsd");
    let xmllint = |path: &Path| {
        Command::new("xmllint")
            .args(["--noout", "--nonet", "--schema"])
            .arg(&schema)
            .arg(path)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run xmllint ({e}): install it with `apt-get install libxml2-utils`")
            })
    };
    let output = xmllint(&out.join("define.xml"));
    assert!(
        output.status.success(),
        "xmllint rejects the package's Define-XML: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let broken = out.join("broken.xml");
    std::fs::write(&broken, text.replacen("<def:Class ", "<def:Klass ", 1)).unwrap();
    assert!(
        !xmllint(&broken).status.success(),
        "xmllint accepts a broken document"
    );
}

#[test]
fn two_exports_of_the_same_log_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let log = golden_log(dir.path());
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    export(&log, &first, None);
    // A later wall clock changes nothing: every time in the package comes from the log.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    export(&log, &second, None);
    let (a, b) = (files(&first), files(&second));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs between two exports");
    }
}

fn verify_exit(data: &Path, dir: &Path) -> ExitCode {
    verify(&VerifyArgs {
        data: data.to_path_buf(),
        package: Some(dir.to_path_buf()),
        head: myolog_cli::archive::HeadCheckArgs::default(),
    })
}

/// The differences `verify --package` reports, through the library it prints from.
fn differences(data: &Path, dir: &Path, as_of: u64, options: &PackageOptions) -> Vec<Difference> {
    let log = myolog_audit::open_log(data).unwrap();
    let replayed = replay::project(&log, AsOf::Sequence(as_of), &mut Progress::hidden()).unwrap();
    let rebuilt = package::build(&replayed, options).unwrap();
    package::compare(dir, &rebuilt).unwrap()
}

#[test]
fn verify_package_names_a_changed_missing_or_extra_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = golden_log(dir.path());
    let out = dir.path().join("package");
    export(&log, &out, Some(GOLDEN_AS_OF));
    assert_eq!(verify_exit(&log, &out), ExitCode::SUCCESS);
    let options = PackageOptions {
        study: None,
        formats: PackageFormat::ALL.to_vec(),
        unblinded_reason: None,
    };
    assert!(differences(&log, &out, GOLDEN_AS_OF, &options).is_empty());

    // One byte of one dataset changed.
    let path = out.join("adeff.xpt");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 100;
    bytes[last] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(verify_exit(&log, &out), ExitCode::from(3));
    assert_eq!(
        differences(&log, &out, GOLDEN_AS_OF, &options),
        vec![Difference::Changed("adeff.xpt".into())]
    );

    // A file removed and one added.
    export(&log, &out, Some(GOLDEN_AS_OF));
    std::fs::remove_file(out.join("dm.csv")).unwrap();
    std::fs::write(out.join("notes.txt"), "not part of it").unwrap();
    assert_eq!(verify_exit(&log, &out), ExitCode::from(3));
    assert_eq!(
        differences(&log, &out, GOLDEN_AS_OF, &options),
        vec![
            Difference::Missing("dm.csv".into()),
            Difference::Extra("notes.txt".into())
        ]
    );

    // The manifest itself edited (another as-of point) no longer matches the log's chain there.
    std::fs::remove_file(out.join("notes.txt")).unwrap();
    export(&log, &out, Some(GOLDEN_AS_OF));
    let manifest = out.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let chain = json(&manifest)["log"]["chain_hash"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(&manifest, text.replace(&chain, &"0".repeat(64))).unwrap();
    assert_eq!(verify_exit(&log, &out), ExitCode::from(3));
}

#[test]
fn a_blinded_study_is_refused_unless_an_unblinded_export_is_requested_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = offline_log(dir.path(), stir_requests(3, true));
    let out = dir.path().join("package");
    assert_eq!(
        run_export(&export_args(&log, &out, None)),
        ExitCode::from(1),
        "a blinded study's arms must not be exported silently"
    );
    assert!(!out.exists(), "nothing written on refusal");

    let mut args = export_args(&log, &out, None);
    args.package.unblinded_export = true;
    args.package.reason = Some("DSMB closed session, unblinded statistician".into());
    assert_eq!(run_export(&args), ExitCode::SUCCESS);
    let manifest = json(&out.join("manifest.json"));
    assert_eq!(
        manifest["unblinded_export"]["reason"],
        "DSMB closed session, unblinded statistician"
    );
    assert!(
        std::fs::read_to_string(out.join("adrg.md"))
            .unwrap()
            .contains("blinded and not unblinded")
    );
    // The reason is part of the package: verify rebuilds it with the same reason.
    assert_eq!(verify_exit(&log, &out), ExitCode::SUCCESS);

    // A blank reason is no reason.
    let mut args = export_args(&log, &dir.path().join("blank"), None);
    args.package.unblinded_export = true;
    args.package.reason = Some("  ".into());
    assert_eq!(run_export(&args), ExitCode::from(1));
}

/// The value of `column` in each row of a Dataset-JSON document.
fn column_values(document: &Json, column: &str) -> Vec<Json> {
    let at = document["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["name"] == column)
        .unwrap_or_else(|| panic!("no column {column}"));
    document["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[at].clone())
        .collect()
}

#[test]
fn demographics_come_from_the_enrolment_and_older_logs_leave_them_missing() {
    // A log written today: the synthetic cohort reports sex, race and consent dates.
    let dir = tempfile::tempdir().unwrap();
    let log = offline_log(dir.path(), stir_requests(5, false));
    let out = dir.path().join("package");
    let mut args = export_args(&log, &out, None);
    args.format = vec![ExportFormat::DatasetJson];
    assert_eq!(run_export(&args), ExitCode::SUCCESS);
    let dm = json(&out.join("dm.json"));
    assert_eq!(
        column_values(&dm, "SEX"),
        ["F", "F", "M", "F", "F"].map(Json::from).to_vec()
    );
    assert_eq!(column_values(&dm, "RACE")[3], "BLACK OR AFRICAN AMERICAN");
    assert!(column_values(&dm, "RFICDTC").iter().all(Json::is_string));
    assert!(column_values(&dm, "COUNTRY").iter().all(Json::is_null));
    assert!(!out.join("dm.xpt").exists(), "only the formats asked for");

    // The golden log predates those fields: missing, never invented.
    let (_golden, _log, golden) = golden_package();
    let dm = json(&golden.join("dm.json"));
    for column in ["SEX", "RACE", "RFICDTC"] {
        assert!(
            column_values(&dm, column).iter().all(Json::is_null),
            "{column} invented for an old log"
        );
    }
    let adsl = json(&golden.join("adsl.json"));
    assert!(column_values(&adsl, "AGE").iter().all(Json::is_number));
    assert!(column_values(&adsl, "ITTFL").iter().all(|flag| flag == "Y"));
}

#[test]
fn adeff_rows_carry_endpoints_baselines_and_traceability() {
    let (_dir, _log, out) = golden_package();
    let adeff = json(&out.join("adeff.json"));
    let column = |name: &str| column_values(&adeff, name);
    let (paramcd, ablfl, base, chg, crit1, crit2, srcseq, algoid) = (
        column("PARAMCD"),
        column("ABLFL"),
        column("BASE"),
        column("CHG"),
        column("CRIT1"),
        column("CRIT2"),
        column("SRCSEQ"),
        column("ALGOID"),
    );
    for row in 0..paramcd.len() {
        let code = paramcd[row].as_str().unwrap();
        match code {
            // Composite responses: no baseline, no change; their criteria are set.
            "DOI" | "TIS" => {
                assert!(ablfl[row].is_null() && base[row].is_null() && chg[row].is_null());
                assert!(crit1[row].is_string(), "{code} CRIT1");
                assert!(algoid[row].is_string(), "{code} ALGOID");
            }
            _ => assert!(base[row].is_string() || base[row].is_null()),
        }
        if code == "TIS" {
            assert_eq!(crit1[row], "TIS >= 20");
            assert_eq!(crit2[row], "TIS >= 40");
        }
        // Every row names the log events it came from, each a sequence of the golden log.
        let seqs = srcseq[row].as_str().unwrap();
        assert!(
            seqs.split(' ')
                .all(|s| s.parse::<u64>().is_ok_and(|n| (1..=382).contains(&n))),
            "{seqs}"
        );
    }
    assert!(paramcd.iter().any(|c| c == "HAQDI"));
    assert!(ablfl.iter().any(|f| f == "Y"));
}

#[test]
fn a_small_package_matches_the_reviewed_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = golden_log(dir.path());
    let out = dir.path().join("package");
    export(&log, &out, Some(GOLDEN_AS_OF));
    let golden = repo("tests/data/package");
    let built = files(&out);
    // Refresh after a reviewed, intended change: MYOLOG_BLESS_PACKAGE=1 (then review the git diff).
    if std::env::var_os("MYOLOG_BLESS_PACKAGE").is_some() {
        for (name, bytes) in &built {
            std::fs::write(golden.join(name), bytes).unwrap();
        }
    }
    let committed: BTreeMap<String, Vec<u8>> = files(&golden)
        .into_iter()
        .filter(|(name, _)| name != "README.md")
        .collect();
    assert_eq!(
        built.keys().collect::<Vec<_>>(),
        committed.keys().collect::<Vec<_>>(),
        "files of the golden package"
    );
    for (name, bytes) in &built {
        assert!(
            bytes == &committed[name],
            "{name} differs from tests/data/package/{name} (see tests/data/package/README.md)"
        );
    }
}

#[test]
fn formats_are_checked_against_what_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = golden_log(dir.path());
    // JSON Lines is not a dataset format of the package.
    let mut args = export_args(&log, &dir.path().join("jsonl"), Some(GOLDEN_AS_OF));
    args.format = vec![ExportFormat::Jsonl];
    assert_eq!(run_export(&args), ExitCode::from(1));
    // The single-dataset export writes one table format, never XPORT.
    let mut args = export_args(&log, &dir.path().join("unused"), Some(GOLDEN_AS_OF));
    args.package = PackageArgs::default();
    args.what = Some(myolog_cli::audit::What::Adam);
    args.out = Some(dir.path().join("adam.xpt"));
    args.format = vec![ExportFormat::Xpt];
    assert_eq!(run_export(&args), ExitCode::from(1));
    // Two package formats: exactly those files.
    let out = dir.path().join("two");
    let mut args = export_args(&log, &out, Some(GOLDEN_AS_OF));
    args.format = vec![ExportFormat::Xpt, ExportFormat::Csv];
    assert_eq!(run_export(&args), ExitCode::SUCCESS);
    let names: Vec<String> = files(&out).into_keys().collect();
    assert!(names.contains(&"adsl.xpt".to_string()) && names.contains(&"adsl.csv".to_string()));
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".json") && n != "manifest.json")
    );
    assert_eq!(
        json(&out.join("manifest.json"))["formats"],
        serde_json::json!(["xpt", "csv"])
    );
    assert_eq!(verify_exit(&log, &out), ExitCode::SUCCESS);
}

/// `--format dataset-ndjson`: the metadata object on line 1 validates against the same schema (rows
/// are optional there), and the lines after it are the `.json` document's rows, one a line, as many
/// as its `records` says.
#[test]
fn ndjson_files_are_the_json_documents_split_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let log = golden_log(dir.path());
    let rebuilt = {
        let log = myolog_audit::open_log(&log).unwrap();
        let replayed =
            replay::project(&log, AsOf::Sequence(GOLDEN_AS_OF), &mut Progress::hidden()).unwrap();
        package::build(
            &replayed,
            &PackageOptions {
                study: None,
                formats: vec![PackageFormat::DatasetJson, PackageFormat::DatasetNdjson],
                unblinded_reason: None,
            },
        )
        .unwrap()
    };
    let validator = validator();
    let by_name: BTreeMap<&str, &[u8]> = rebuilt
        .iter()
        .map(|file| (file.name.as_str(), file.bytes.as_slice()))
        .collect();
    let mut checked = 0;
    for (name, bytes) in &by_name {
        let Some(stem) = name.strip_suffix(".ndjson") else {
            continue;
        };
        let text = std::str::from_utf8(bytes).unwrap();
        let mut lines = text.lines();
        let header: Json = serde_json::from_str(lines.next().unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&header)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name} line 1: {errors:?}");
        let rows: Vec<Json> = lines
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let whole: Json = serde_json::from_slice(by_name[format!("{stem}.json").as_str()]).unwrap();
        assert_eq!(
            header["records"].as_u64().unwrap() as usize,
            rows.len(),
            "{name}"
        );
        assert_eq!(&Json::Array(rows), &whole["rows"], "{name}");
        let mut without_rows = whole.clone();
        without_rows.as_object_mut().unwrap().remove("rows");
        assert_eq!(header, without_rows, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 8, "one .ndjson per dataset");
}
