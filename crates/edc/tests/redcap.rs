//! REDCap formats: the record JSON as rows (events, repeating instruments, checkboxes, data access
//! groups, form statuses), its malformed shapes as errors, the Data Entry Trigger body, and the
//! discrepancy CSV's quoting.

mod common;

use common::{fixture, fixture_text, render_row};
use myolog_edc::discrepancy::write_csv;
use myolog_edc::odm::KeyPath;
use myolog_edc::plan::Discrepancy;
use myolog_edc::redcap::{
    DataEntryTrigger, FormCompletion, RedcapMetadata, parse_choices, parse_data_entry_trigger,
    records_to_rows,
};

fn metadata() -> RedcapMetadata {
    RedcapMetadata::from_json(&fixture_text("stir_metadata.json")).expect("metadata")
}

#[test]
fn flat_records_become_the_rows_redcap_odm_would_give() {
    let rows = records_to_rows(
        &fixture_text("stir_records.json"),
        &metadata(),
        "Project.STIR",
    )
    .expect("rows");
    let rendered: Vec<String> = rows.iter().map(render_row).collect();
    let find = |needle: &str| {
        rendered
            .iter()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no row with {needle}:\n{}", rendered.join("\n")))
            .clone()
    };
    assert_eq!(
        find("ItemOID=pga_vas] = \"6.5\""),
        "SubjectData[SubjectKey=STIR-01]/StudyEventData[StudyEventOID=Event.baseline_arm_1,RepeatKey=1]/FormData[FormOID=Form.globals,RepeatKey=1]/ItemGroupData[ItemGroupOID=globals]/ItemData[ItemOID=pga_vas] = \"6.5\" site=site_a study=Project.STIR block=1"
    );
    // Checkbox options are their own items; the status item sits in its form.
    assert!(find("ItemOID=pred_change___2] = \"1\"").contains("Event.week_4_arm_1"));
    assert!(find("ItemOID=globals_complete] = \"2\"").contains("FormOID=Form.globals"));
    // Repeating instrument instances are form repeat keys, and carry only their own fields.
    assert!(
        find("ItemOID=ae_term] = \"Nausea\"").contains("FormData[FormOID=Form.ae,RepeatKey=2]")
    );
    let ae_rows = rendered
        .iter()
        .filter(|line| line.contains("FormOID=Form.ae,"))
        .count();
    assert_eq!(ae_rows, 4, "two instances, each a term and a status");
    // The record id is the subject, not an item; blank columns give no row.
    assert!(
        !rendered
            .iter()
            .any(|line| line.contains("ItemOID=record_id]"))
    );
    assert!(!rendered.iter().any(|line| line.ends_with("= \"\"")));
    // Per event: visit 5 (date, 3 checkbox options, status), globals 4, mmt8 2, haq 2, enzymes 4,
    // medication 2; then the baseline enrolment 3 and the adverse events 4.
    assert_eq!(rows.len(), 5 * 19 + 3 + 4);
}

#[test]
fn malformed_record_json_is_an_error_naming_the_row() {
    // (records JSON, expected error)
    let cases = [
        ("{}", "records: expected a JSON array of objects"),
        ("[1]", "records[0]: expected an object"),
        (
            r#"[{"record_id": ""}]"#,
            "records[0]: record_id is missing or empty",
        ),
        (
            r#"[{"record_id": "A", "pga_vas": true}]"#,
            "records[0].pga_vas: expected text or a number, found a boolean",
        ),
        (
            r#"[{"record_id": "A", "redcap_repeat_instance": "0"}]"#,
            "records[0].redcap_repeat_instance: \"0\" is not a positive whole number",
        ),
        ("[", "not valid JSON"),
    ];
    for (json, expected) in cases {
        let error = records_to_rows(json, &metadata(), "P")
            .expect_err(json)
            .to_string();
        assert!(error.contains(expected), "{json}: {error}");
    }
    // A column the dictionary does not know is kept, in a form that says so, for the planner to report.
    let rows =
        records_to_rows(r#"[{"record_id": "A", "mystery": "7"}]"#, &metadata(), "P").expect("rows");
    assert_eq!(
        rows[0].key.form.as_ref().map(|form| form.oid.as_str()),
        Some("Form.(not in the data dictionary)")
    );
}

#[test]
fn dictionary_choices_and_forms() {
    assert_eq!(
        parse_choices("1, Yes | 0, No |  , blank | 99, Not, applicable"),
        [
            ("1".to_string(), "Yes".to_string()),
            ("0".to_string(), "No".to_string()),
            ("99".to_string(), "Not, applicable".to_string())
        ]
    );
    let metadata = metadata();
    assert_eq!(
        metadata.forms(),
        [
            "enrolment",
            "visit",
            "globals",
            "mmt8",
            "haq",
            "enzymes",
            "medication",
            "ae"
        ]
    );
    assert_eq!(metadata.form_of("pred_change___3"), Some("visit"));
    assert_eq!(metadata.form_of("ck_unit___1"), None, "not a checkbox");
    assert_eq!(metadata.form_of("haq_complete"), Some("haq"));
    assert_eq!(metadata.form_of("nothing_complete"), None);
    assert!(RedcapMetadata::from_json("[]").is_err());
    assert!(RedcapMetadata::from_json(r#"[{"field_name": "a"}]"#).is_err());
}

#[test]
fn data_entry_trigger_body_is_parsed_into_a_typed_value() {
    let trigger = parse_data_entry_trigger(&fixture("det_body.txt")).expect("trigger");
    assert_eq!(
        trigger,
        DataEntryTrigger {
            project_id: 42,
            username: Some("jane.doe".to_string()),
            instrument: "globals".to_string(),
            record: "STIR-01".to_string(),
            event_name: Some("week_4_arm_1".to_string()),
            data_access_group: Some("site_a".to_string()),
            status: Some(FormCompletion::Complete),
            repeat_instance: Some(1),
            repeat_instrument: None,
            redcap_url: Some("https://redcap.example.org/".to_string()),
            project_url: Some(
                "https://redcap.example.org/redcap_v14.0.0/index.php?pid=42".to_string()
            ),
        }
    );
    // (body, expected error or None when accepted)
    let cases: [(&[u8], Option<&str>); 8] = [
        (b"project_id=1&instrument=a+b&record=R%2B1", None),
        (b"instrument=a&record=R", Some("project_id is missing")),
        (
            b"project_id=x&instrument=a&record=R",
            Some("is not a whole number"),
        ),
        (b"project_id=1&record=R", Some("instrument is missing")),
        (
            b"project_id=1&instrument=a&record=R&a_complete=3",
            Some("a_complete \"3\" is not 0, 1 or 2"),
        ),
        (
            b"project_id=1&project_id=2&instrument=a&record=R",
            Some("project_id is given twice"),
        ),
        (
            b"project_id=1&instrument=a&record=R%zz",
            Some("bad percent escape"),
        ),
        (
            b"project_id=1&instrument=a&record=%C3%28",
            Some("not UTF-8"),
        ),
    ];
    for (body, expected) in cases {
        let result = parse_data_entry_trigger(body);
        match (result, expected) {
            (Ok(trigger), None) => {
                assert_eq!(trigger.instrument, "a b");
                assert_eq!(trigger.record, "R+1");
            }
            (Err(error), Some(expected)) => {
                assert!(error.to_string().contains(expected), "{error}")
            }
            (other, expected) => panic!(
                "{:?}: {other:?}, expected {expected:?}",
                String::from_utf8_lossy(body)
            ),
        }
    }
}

#[test]
fn discrepancy_csv_quotes_what_needs_quoting() {
    let discrepancies = [
        Discrepancy {
            path: KeyPath::default(),
            value: Some("a,b".to_string()),
            problem: "say \"no\"\nthen stop".to_string(),
        },
        Discrepancy {
            path: KeyPath {
                subject_key: Some("S-1".into()),
                ..KeyPath::default()
            },
            value: None,
            problem: "plain".to_string(),
        },
    ];
    let mut out = Vec::new();
    write_csv(&mut out, &discrepancies).expect("write");
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        "key_path,value,problem\r\nODM,\"a,b\",\"say \"\"no\"\"\nthen stop\"\r\nSubjectData[SubjectKey=S-1],,plain\r\n"
    );
}
