//! Rows -> Myolog changes on the fixture exports: expected plans per source shape, idempotent
//! re-imports, corrections and retractions from Snapshot changes and Transactional records, bad records
//! reported while the rest goes through, REDCap JSON planned like REDCap ODM, and the discrepancy CSV.

mod common;

use common::{check, fixture, fixture_text, render_assessment, render_plan};
use myolog_domain::event::EventBody;
use myolog_edc::discrepancy::write_csv;
use myolog_edc::mapping::Mapping;
use myolog_edc::odm::read_slice;
use myolog_edc::plan::{Change, Plan, SentLedger, plan};
use myolog_edc::redcap::{RedcapMetadata, records_to_rows};

fn mapping(name: &str) -> Mapping {
    Mapping::from_toml(&fixture_text(name)).unwrap_or_else(|errors| panic!("{name}: {errors}"))
}

fn plan_bytes(bytes: &[u8], mapping: &Mapping, ledger: &mut SentLedger) -> Plan {
    plan(read_slice(bytes), mapping, ledger).unwrap_or_else(|error| panic!("{error}"))
}

/// Plans a fixture with a fresh ledger and compares with `expected/<fixture>.plan.txt`.
fn check_plan(source: &str, mapping_file: &str) -> (Plan, SentLedger) {
    let mut ledger = SentLedger::default();
    let plan = plan_bytes(&fixture(source), &mapping(mapping_file), &mut ledger);
    check(&render_plan(&plan), &format!("{source}.plan.txt"));
    (plan, ledger)
}

fn ids(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .map(|change| change.event_id().to_string())
        .collect()
}

#[test]
fn stir_redcap_project_plans_enrolments_assessments_doses_and_reports_bad_records() {
    let (plan, _) = check_plan("redcap_longitudinal_stir.xml", "stir_redcap.mapping.toml");
    // Bad records do not stop the rest: both subjects have all their other visits.
    assert!(plan.changes.len() > 40, "{}", plan.changes.len());
    assert_eq!(plan.discrepancies.len(), 4, "{:?}", plan.discrepancies);
}

#[test]
fn every_instrument_at_item_level_is_built_by_the_domain_types() {
    let (plan, _) = check_plan("all_instruments.xml", "all_instruments.mapping.toml");
    // Baseline: HAQ, CDASI, MMT-8 and enzymes; week 4: only the MMT-8, the other three held.
    assert_eq!(plan.changes.len(), 5, "{}", render_plan(&plan));
}

#[test]
fn reimporting_the_same_file_yields_the_same_ids_and_nothing_to_send() {
    let bytes = fixture("redcap_longitudinal_stir.xml");
    let mapping = mapping("stir_redcap.mapping.toml");
    let mut first_ledger = SentLedger::default();
    let first = plan_bytes(&bytes, &mapping, &mut first_ledger);
    let mut fresh = SentLedger::default();
    let again = plan_bytes(&bytes, &mapping, &mut fresh);
    assert_eq!(ids(&first), ids(&again));
    assert_eq!(first_ledger, fresh);
    // With what was sent remembered, the same file sends nothing.
    let mut ledger = SentLedger::from_json(&first_ledger.to_json()).expect("ledger JSON");
    let repeat = plan_bytes(&bytes, &mapping, &mut ledger);
    assert!(repeat.changes.is_empty(), "{}", render_plan(&repeat));
    assert_eq!(repeat.unchanged, first.changes.len());
    // Every id is unique and within the domain's 64 characters.
    let mut unique = ids(&first);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), first.changes.len());
    assert!(
        unique
            .iter()
            .all(|id| id.len() == 44 && id.starts_with("edc-"))
    );
}

#[test]
fn a_changed_snapshot_value_is_a_correction_of_the_event_sent_before() {
    let original = fixture_text("redcap_longitudinal_stir.xml");
    let mapping = mapping("stir_redcap.mapping.toml");
    let mut ledger = SentLedger::default();
    let first = plan_bytes(original.as_bytes(), &mapping, &mut ledger);
    let sent_globals = first
        .changes
        .iter()
        .find_map(|change| match change {
            Change::Event { event, .. }
                if event.subject.as_ref().is_some_and(|s| s.as_str() == "STIR-01")
                    && event.visit.as_ref().is_some_and(|v| v.as_str() == "BL")
                    && matches!(&event.body, EventBody::AssessmentRecorded(a) if a.kind().key() == "globals") =>
            {
                Some(event.event_id.clone())
            }
            _ => None,
        })
        .expect("STIR-01 baseline globals");
    let changed = original.replacen(r#"Value="6.5""#, r#"Value="6.0""#, 1);
    assert_ne!(changed, original);
    let second = plan_bytes(changed.as_bytes(), &mapping, &mut ledger);
    assert_eq!(second.changes.len(), 1, "{}", render_plan(&second));
    let Change::Event { event, .. } = &second.changes[0] else {
        panic!("a correction");
    };
    assert_ne!(event.event_id, sent_globals);
    let EventBody::AssessmentCorrected {
        supersedes,
        reason,
        corrected,
    } = &event.body
    else {
        panic!("{:?}", event.body);
    };
    assert_eq!(supersedes, &sent_globals);
    assert_eq!(reason.as_str(), myolog_edc::mapping::DEFAULT_REASON);
    assert_eq!(
        render_assessment(corrected),
        "globals physician=6cm patient=7cm extramuscular=4.2cm"
    );
    // The corrected value is now what was sent: importing it again sends nothing.
    let third = plan_bytes(changed.as_bytes(), &mapping, &mut ledger);
    assert!(third.changes.is_empty());
    // A corrected visit date corrects each instrument of that visit, dated anew.
    let redated = changed.replacen(r#"Value="2024-01-15""#, r#"Value="2024-01-16""#, 1);
    let fourth = plan_bytes(redated.as_bytes(), &mapping, &mut ledger);
    let corrected: Vec<String> = fourth
        .changes
        .iter()
        .map(|change| match change {
            Change::Event { event, .. } => format!(
                "{} {} {}",
                event
                    .visit
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                event.clinical_date,
                matches!(event.body, EventBody::AssessmentCorrected { .. })
            ),
            Change::Retraction { .. } => "retraction".to_string(),
        })
        .collect();
    assert_eq!(
        corrected,
        ["BL 2024-01-16 true"; 4],
        "{}",
        render_plan(&fourth)
    );
    // The dose is reported instead: the domain has no dose correction. The other four are the file's own.
    assert_eq!(fourth.discrepancies.len(), 5, "{:?}", fourth.discrepancies);
    assert!(
        fourth.discrepancies[0]
            .problem
            .starts_with("the dose changed after it was sent")
    );
}

#[test]
fn transactional_insert_update_context_and_removals_become_record_correct_and_retract() {
    let (plan, ledger) = check_plan("transactional_changes.xml", "transactional.mapping.toml");
    let kinds: Vec<&str> = plan
        .changes
        .iter()
        .map(|change| match change {
            Change::Event { event, .. } => match event.body {
                EventBody::AssessmentRecorded(_) => "record",
                EventBody::AssessmentCorrected { .. } => "correct",
                _ => "other",
            },
            Change::Retraction { .. } => "retract",
        })
        .collect();
    assert_eq!(kinds, ["record", "correct", "correct", "retract"]);
    assert_eq!(plan.context_rows, 1);
    // Each change supersedes the one before it.
    for pair in plan.changes.windows(2) {
        let superseded = match &pair[1] {
            Change::Event { event, .. } => match &event.body {
                EventBody::AssessmentCorrected { supersedes, .. } => supersedes.clone(),
                other => panic!("{other:?}"),
            },
            Change::Retraction { supersedes, .. } => supersedes.clone(),
        };
        assert_eq!(&superseded, pair[0].event_id());
    }
    // The retracted instrument is gone from the ledger; the visit's date stays known.
    assert!(ledger.get("STIR", "STIR-01", "W12", "globals").is_none());
}

#[test]
fn rave_audit_pages_apply_one_subject_block_at_a_time() {
    check_plan("rave_clinical_audit_records.xml", "rave.mapping.toml");
}

#[test]
fn redcap_classic_visits_come_from_the_visit_item_of_each_instance() {
    check_plan(
        "redcap_classic_repeating.xml",
        "redcap_classic.mapping.toml",
    );
}

#[test]
fn openclinica_forms_not_complete_are_not_imported() {
    check_plan("openclinica3_audit_logs.xml", "openclinica.mapping.toml");
}

#[test]
fn windows_1252_file_plans_and_writes_its_discrepancies_as_csv() {
    let (plan, _) = check_plan("windows1252.xml", "transactional.mapping.toml");
    let mut csv = Vec::new();
    write_csv(&mut csv, &plan.discrepancies).expect("write");
    check(
        &String::from_utf8(csv).expect("utf-8"),
        "windows1252.xml.discrepancies.csv",
    );
}

#[test]
fn redcap_record_json_plans_the_same_events_as_the_project_xml() {
    let mapping = mapping("stir_redcap.mapping.toml");
    let metadata =
        RedcapMetadata::from_json(&fixture_text("stir_metadata.json")).expect("metadata");
    let rows = records_to_rows(
        &fixture_text("stir_records.json"),
        &metadata,
        "Project.STIR",
    )
    .expect("records");
    let mut ledger = SentLedger::default();
    let from_json = plan(rows.into_iter().map(Ok), &mapping, &mut ledger).expect("plan");
    let mut ledger = SentLedger::default();
    let from_xml = plan_bytes(
        &fixture("redcap_longitudinal_stir.xml"),
        &mapping,
        &mut ledger,
    );
    // The same facts (an enrolment, 5 visits x 5 instruments less the week 16 MMT-8 not done); ids
    // differ since REDCap's XML names item groups its JSON does not have.
    let bodies = |plan: &Plan, subject: &str| -> Vec<String> {
        plan.changes
            .iter()
            .filter_map(|change| match change {
                Change::Event { event, .. }
                    if event
                        .subject
                        .as_ref()
                        .is_some_and(|s| s.as_str() == subject) =>
                {
                    Some(format!(
                        "{:?} {} {:?}",
                        event.visit, event.clinical_date, event.body
                    ))
                }
                _ => None,
            })
            .collect()
    };
    let json_bodies = bodies(&from_json, "STIR-01");
    assert_eq!(json_bodies.len(), 25, "{json_bodies:#?}");
    assert_eq!(json_bodies, bodies(&from_xml, "STIR-01"));
    // The repeating adverse event instrument is ignored, not reported; nothing else is wrong.
    assert!(
        from_json.discrepancies.is_empty(),
        "{:?}",
        from_json.discrepancies
    );
}

#[test]
fn an_unmapped_event_and_an_unknown_visit_code_are_reported_with_their_key_paths() {
    let text =
        fixture_text("stir_redcap.mapping.toml").replace("\"Event.week_16_arm_1\" = \"W16\"\n", "");
    let mapping = Mapping::from_toml(&text).expect("mapping");
    let mut ledger = SentLedger::default();
    let plan = plan_bytes(
        &fixture("redcap_longitudinal_stir.xml"),
        &mapping,
        &mut ledger,
    );
    let unmapped: Vec<String> = plan
        .discrepancies
        .iter()
        .filter(|d| d.problem.contains("not mapped to a visit"))
        .map(|d| d.path.to_string())
        .collect();
    // globals, mmt8, haq, enzymes and medication for each subject (STIR-02's globals are incomplete).
    assert_eq!(unmapped.len(), 9, "{unmapped:#?}");
    assert!(unmapped.contains(
        &"SubjectData[SubjectKey=STIR-01]/StudyEventData[StudyEventOID=Event.week_16_arm_1,RepeatKey=1]/FormData[FormOID=Form.mmt8,RepeatKey=1]".to_string()
    ));
    assert!(plan.changes.iter().all(|change| match change {
        Change::Event { event, .. } => event.visit.as_ref().is_none_or(|v| v.as_str() != "W16"),
        Change::Retraction { .. } => false,
    }));
}

#[test]
fn data_of_another_study_is_refused_when_the_mapping_pins_the_source_study() {
    let mapping = mapping("stir_redcap.mapping.toml");
    let other =
        fixture_text("redcap_longitudinal_stir.xml").replace("Project.STIR", "Project.OTHER");
    let mut ledger = SentLedger::default();
    let plan = plan_bytes(other.as_bytes(), &mapping, &mut ledger);
    assert!(plan.changes.is_empty());
    let problems: Vec<String> = plan
        .discrepancies
        .iter()
        .map(|d| format!("{}: {}", d.path, d.problem))
        .collect();
    assert_eq!(
        problems,
        [
            "SubjectData[SubjectKey=STIR-01]: StudyOID Project.OTHER is not this mapping's study (study.source_oid = \"Project.STIR\")",
            "SubjectData[SubjectKey=STIR-02]: StudyOID Project.OTHER is not this mapping's study (study.source_oid = \"Project.STIR\")",
        ]
    );
    assert!(ledger.is_empty());
}

#[test]
fn a_reading_error_discards_the_plan_and_leaves_the_ledger_as_it_was() {
    let mapping = mapping("stir_redcap.mapping.toml");
    let original = fixture("redcap_longitudinal_stir.xml");
    let truncated = &original[..original.len() - 2000];
    let mut ledger = SentLedger::default();
    let result = plan(read_slice(truncated), &mapping, &mut ledger);
    assert!(result.is_err());
    assert!(ledger.is_empty());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever a damaged export holds, planning gives a plan or a reading error, never a panic, and
    /// every id it plans is a valid Myolog id.
    #[test]
    fn planning_mutated_exports_never_panics(
        which in 0usize..3,
        edits in proptest::collection::vec(
            (proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()),
            1..8,
        ),
    ) {
        let (source, mapping_file) = [
            ("redcap_longitudinal_stir.xml", "stir_redcap.mapping.toml"),
            ("transactional_changes.xml", "transactional.mapping.toml"),
            ("redcap_classic_repeating.xml", "redcap_classic.mapping.toml"),
        ][which];
        let mut bytes = fixture(source);
        for (index, byte) in edits {
            let at = index.index(bytes.len());
            // Printable bytes keep most mutations well-formed, so values, not syntax, get damaged.
            bytes[at] = b' ' + byte % 95;
        }
        let mut ledger = SentLedger::default();
        if let Ok(plan) = plan(read_slice(&bytes), &mapping(mapping_file), &mut ledger) {
            for change in &plan.changes {
                proptest::prop_assert!(change.event_id().as_str().len() <= 64);
            }
        }
    }
}

#[test]
fn a_record_sent_from_the_xml_export_is_unchanged_when_its_json_arrives() {
    // `import odm` of the project's XML, then the bridge pulls the same record as JSON with the same
    // ledger: the key paths differ (the JSON has no item groups), the values do not, so nothing new.
    let mapping = mapping("stir_redcap.mapping.toml");
    let mut ledger = SentLedger::default();
    let from_xml = plan_bytes(
        &fixture("redcap_longitudinal_stir.xml"),
        &mapping,
        &mut ledger,
    );
    assert!(!from_xml.changes.is_empty());
    let metadata =
        RedcapMetadata::from_json(&fixture_text("stir_metadata.json")).expect("metadata");
    let rows = records_to_rows(
        &fixture_text("stir_records.json"),
        &metadata,
        "Project.STIR",
    )
    .expect("records");
    let from_json = plan(rows.into_iter().map(Ok), &mapping, &mut ledger).expect("plan");
    assert!(from_json.changes.is_empty(), "{}", render_plan(&from_json));
    assert_eq!(from_json.unchanged, 24, "STIR-01's 24 forms");
}

#[test]
fn a_refused_change_is_taken_back_out_of_the_ledger() {
    // A form sent, then removed (a retraction) that the server refuses: the ledger must hold the
    // form again, so that the next run plans the same retraction.
    let mapping = mapping("transactional.mapping.toml");
    let record_only = br#"<?xml version="1.0"?>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" FileType="Snapshot" FileOID="f" CreationDateTime="2024-04-08T00:00:00">
<ClinicalData StudyOID="S" MetaDataVersionOID="v1">
<SubjectData SubjectKey="STIR-01"><StudyEventData StudyEventOID="SE.W12"><FormData FormOID="F"><ItemGroupData ItemGroupOID="G">
<ItemData ItemOID="IT.VISDAT" Value="2024-04-08"/><ItemData ItemOID="IT.PTGA_MM" Value="40"/>
</ItemGroupData></FormData></StudyEventData></SubjectData></ClinicalData></ODM>"#;
    let mut sent = SentLedger::default();
    let first = plan_bytes(record_only, &mapping, &mut sent);
    assert_eq!(first.changes.len(), 1, "{}", render_plan(&first));
    assert_eq!(sent.len(), 1);
    let removal = br#"<?xml version="1.0"?>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" FileType="Transactional" FileOID="f2" CreationDateTime="2024-04-09T00:00:00">
<ClinicalData StudyOID="S" MetaDataVersionOID="v1">
<SubjectData SubjectKey="STIR-01"><StudyEventData StudyEventOID="SE.W12"><FormData FormOID="F" TransactionType="Remove"/>
</StudyEventData></SubjectData></ClinicalData></ODM>"#;
    let previous = sent.clone();
    let second = plan_bytes(removal, &mapping, &mut sent);
    let retract = second.changes.last().expect("a retraction");
    assert!(
        matches!(retract, Change::Retraction { .. }),
        "{}",
        render_plan(&second)
    );
    assert!(sent.is_empty());
    sent.revert(&previous, retract);
    assert_eq!(sent, previous, "the refused retraction is undone");
}

/// The source audit a change carries, as (user, timestamp, offset, reason, source id).
fn source_audit_of(change: &Change) -> Option<[Option<String>; 5]> {
    change.to_event().source.map(|audit| {
        [
            audit.user.clone(),
            audit.timestamp.clone(),
            audit.utc_offset.clone(),
            audit.reason.clone(),
            audit.source_id.clone(),
        ]
    })
}

#[test]
fn an_openclinica_audit_log_gives_the_correction_its_user_time_and_reason() {
    let mapping = mapping("openclinica.mapping.toml");
    let mut ledger = SentLedger::default();
    let before = plan_bytes(
        &fixture("openclinica3_before_change.xml"),
        &mapping,
        &mut ledger,
    );
    assert_eq!(before.changes.len(), 1, "{}", render_plan(&before));
    // The next extract (includeAudits=y): PGA 6.0 -> 6.5, with the monitor's audit log entry.
    let after = plan_bytes(
        &fixture("openclinica3_audit_logs.xml"),
        &mapping,
        &mut ledger,
    );
    assert_eq!(after.changes.len(), 1, "{}", render_plan(&after));
    let change = &after.changes[0];
    let Change::Event { event, .. } = change else {
        panic!("{change:?}")
    };
    let EventBody::AssessmentCorrected {
        supersedes, reason, ..
    } = &event.body
    else {
        panic!("{:?}", event.body)
    };
    assert_eq!(supersedes, before.changes[0].event_id());
    assert_eq!(reason.as_str(), "transcription & typing error");
    let text = |t: &str| Some(t.to_string());
    assert_eq!(
        source_audit_of(change),
        Some([
            text("monitor1"),
            // OpenClinica writes its server's local time without an offset: the mapping's applies.
            text("2024-01-16T09:12:00"),
            text("+01:00"),
            text("transcription & typing error"),
            text("AL_12"),
        ])
    );
}

#[test]
fn without_an_openclinica_audit_log_the_correction_states_the_default_reason() {
    let mapping = mapping("openclinica.mapping.toml");
    let mut ledger = SentLedger::default();
    plan_bytes(
        &fixture("openclinica3_before_change.xml"),
        &mapping,
        &mut ledger,
    );
    let text = fixture_text("openclinica3_audit_logs.xml");
    let start = text
        .find("<OpenClinica:AuditLogs EntityID=\"I_GLOBA_PGA\">")
        .expect("audit");
    let end = text[start..].find("</OpenClinica:AuditLogs>").expect("end") + start;
    let stripped = format!(
        "{}{}",
        &text[..start],
        &text[end + "</OpenClinica:AuditLogs>".len()..]
    );
    let after = plan_bytes(stripped.as_bytes(), &mapping, &mut ledger);
    let Change::Event { event, .. } = &after.changes[0] else {
        panic!("{:?}", after.changes)
    };
    let EventBody::AssessmentCorrected { reason, .. } = &event.body else {
        panic!("{:?}", event.body)
    };
    assert_eq!(reason.as_str(), mapping.default_reason);
    assert_eq!(
        source_audit_of(&after.changes[0]).and_then(|a| a[0].clone()),
        None,
        "no user without the log"
    );
}

#[test]
fn rave_subjects_are_named_by_subject_name_or_by_key_as_the_mapping_says() {
    let check = |subject_id: Option<&str>, expected: &str| {
        let mut text = fixture_text("rave.mapping.toml");
        let setting = match subject_id {
            Some(value) => format!("subject_id = \"{value}\"\n"),
            None => String::new(),
        };
        text = text.replace("subject_id = \"subject_name\"\n", &setting);
        let mapping = Mapping::from_toml(&text).unwrap_or_else(|errors| panic!("{errors}"));
        let mut ledger = SentLedger::default();
        let plan = plan_bytes(
            &fixture("rave_clinical_audit_records.xml"),
            &mapping,
            &mut ledger,
        );
        assert!(!plan.changes.is_empty(), "{}", render_plan(&plan));
        for change in &plan.changes {
            let event = change.to_event();
            let subject = event.subject.as_ref().map(|s| s.as_str().to_string());
            assert_eq!(subject.as_deref(), Some(expected), "{subject_id:?}");
        }
    };
    check(Some("subject_name"), "01-001");
    check(Some("subject_key"), "6d0f3a52-8f1e-4a2b-b7c4-2e9f0d1a3b5c");
    check(None, "6d0f3a52-8f1e-4a2b-b7c4-2e9f0d1a3b5c");
    assert!(
        Mapping::from_toml(
            &fixture_text("rave.mapping.toml")
                .replace("subject_id = \"subject_name\"", "subject_id = \"name\"")
        )
        .is_err(),
        "an unknown choice is refused"
    );
}

#[test]
fn a_subject_without_subject_name_is_a_discrepancy_when_the_mapping_asks_for_it() {
    let text = fixture_text("rave_clinical_audit_records.xml")
        .replace(" mdsol:SubjectName=\"01-001\"", "");
    let mut ledger = SentLedger::default();
    let plan = plan_bytes(text.as_bytes(), &mapping("rave.mapping.toml"), &mut ledger);
    assert!(plan.changes.is_empty(), "{}", render_plan(&plan));
    assert!(
        plan.discrepancies
            .iter()
            .all(|d| d.problem.contains("mdsol:SubjectName is absent")),
        "{:?}",
        plan.discrepancies
    );
}

#[test]
fn a_deleted_record_retracts_every_form_sent_from_it_once() {
    let mapping = mapping("stir_redcap.mapping.toml");
    let mut ledger = SentLedger::default();
    let first = plan_bytes(
        &fixture("redcap_longitudinal_stir.xml"),
        &mapping,
        &mut ledger,
    );
    let sent_assessments: Vec<String> = first
        .changes
        .iter()
        .filter_map(|change| match change {
            Change::Event { event, .. }
                if event.subject.as_ref().map(|s| s.as_str()) == Some("STIR-01")
                    && matches!(event.body, EventBody::AssessmentRecorded(_)) =>
            {
                Some(event.event_id.to_string())
            }
            _ => None,
        })
        .collect();
    assert!(!sent_assessments.is_empty());
    let audit = myolog_edc::odm::AuditRecord {
        user_oid: Some("jane.doe".into()),
        date_time_stamp: Some("2024-06-05 10:00".into()),
        ..Default::default()
    };
    let reason = "deleted in REDCap: \"Delete record STIR-01\" by jane.doe at 2024-06-05 10:00";
    let removal = myolog_edc::plan::plan_subject_removal(
        &mapping,
        &mut ledger,
        "STIR-01",
        reason,
        Some(&audit),
    );
    let mut retracted: Vec<String> = removal
        .changes
        .iter()
        .map(|change| match change {
            Change::Retraction {
                supersedes,
                reason: stated,
                ..
            } => {
                assert_eq!(stated.as_str(), reason);
                supersedes.to_string()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    retracted.sort();
    let mut expected = sent_assessments.clone();
    expected.sort();
    assert_eq!(
        retracted, expected,
        "every assessment form of STIR-01, no other subject's"
    );
    let audit_of = source_audit_of(&removal.changes[0]).expect("audit");
    assert_eq!(audit_of[0].as_deref(), Some("jane.doe"));
    assert_eq!(audit_of[1].as_deref(), Some("2024-06-05 10:00"));
    // The enrolment and the doses cannot be retracted: said, not dropped.
    assert!(!removal.discrepancies.is_empty());
    assert!(
        removal
            .discrepancies
            .iter()
            .all(|d| d.problem.contains("cannot retract")),
        "{:?}",
        removal.discrepancies
    );
    // Planned again: nothing more to retract.
    let again =
        myolog_edc::plan::plan_subject_removal(&mapping, &mut ledger, "STIR-01", reason, None);
    assert!(
        again.changes.is_empty() && again.discrepancies.is_empty(),
        "nothing more to retract or to say: {}",
        render_plan(&again)
    );
    assert!(ledger.subjects("STIR").contains("STIR-02"));
}
