//! The mapping file: every fixture mapping loads, each kind of mistake is reported with its TOML key
//! path (and line for syntax), time zones and clinical dates parse by their rules, unit factors are
//! exact, and `mapping init` skeletons list every source item and event without mapping any.

mod common;

use common::{fixture, fixture_text};
use myolog_edc::init::{dictionary_from_odm, dictionary_from_redcap, skeleton};
use myolog_edc::mapping::{Mapping, PartialDates, SourceTimeZone, Target};
use myolog_edc::odm::read_slice;
use myolog_edc::plan::{Change, SentLedger, parse_clinical_date, plan};
use myolog_edc::redcap::RedcapMetadata;

const MINIMAL: &str = r#"
[study]
id = "STIR"
time_zone = "Z"

[visits]
date_item = "VISDAT"
events = { "SE.BL" = "BL" }

[items]
PGA = { field = "physician_global" }
"#;

#[test]
fn every_fixture_mapping_loads() {
    for name in [
        "stir_redcap.mapping.toml",
        "redcap_classic.mapping.toml",
        "openclinica.mapping.toml",
        "rave.mapping.toml",
        "transactional.mapping.toml",
    ] {
        if let Err(errors) = Mapping::from_toml(&fixture_text(name)) {
            panic!("{name}: {errors}");
        }
    }
    let stir = Mapping::from_toml(&fixture_text("stir_redcap.mapping.toml")).expect("stir");
    assert_eq!(stir.study.as_str(), "STIR");
    assert_eq!(stir.visits.events.len(), 5);
    assert_eq!(
        stir.time_zone,
        SourceTimeZone::Iana("America/New_York".to_string())
    );
}

#[test]
fn mistakes_are_reported_with_their_key_path() {
    // (edit applied to MINIMAL as (from, to), the expected error text)
    let cases: &[((&str, &str), &str)] = &[
        (("[items]", "[items]\n= broken"), "(whole file): line 11:"),
        (
            ("date_item", "dat_item"),
            "visits.dat_item: line 7: unknown field `dat_item`",
        ),
        (
            ("\"physician_global\"", "\"physician_globl\""),
            "items.PGA.field: unknown field \"physician_globl\"",
        ),
        (
            ("\"BL\"", "\"B L\""),
            "visits.events.\"SE.BL\": unknown value \"B L\"",
        ),
        (
            ("\"Z\"", "\"Mars\""),
            "study.time_zone: \"Mars\" is neither",
        ),
        (("\"STIR\"", "\"\""), "study.id: required field is missing"),
        (
            ("\"physician_global\" }", "\"mmt8.total\" }"),
            "conventions.mmt8_max: mmt8.total is mapped",
        ),
        (
            (
                "\"physician_global\" }",
                "\"physician_global\", scale = \"likert\" }",
            ),
            "items.PGA.scale: Likert globals need conventions.allow_likert_globals = true",
        ),
        (
            (
                "\"physician_global\" }",
                "\"physician_global\", units = { MU = \"0\" } }",
            ),
            "items.PGA.units.MU: a conversion factor must be greater than 0",
        ),
        (
            ("\"physician_global\" }", "\"mmt8.neck_flexors.left\" }"),
            "neck flexors are graded once",
        ),
        (
            ("\"physician_global\" }", "\"haq.eating.4\" }"),
            "HAQ eating has items 1 to 3",
        ),
        (
            ("events = { \"SE.BL\" = \"BL\" }", ""),
            "visits: name the visits",
        ),
        (
            (
                "[items]",
                "[enrolment]\narm_item = \"ARM\"\ndate_item = \"D\"\nsite = \"item\"\n\n[items]",
            ),
            "enrolment.site_item: site = \"item\" needs site_item",
        ),
    ];
    for ((from, to), expected) in cases {
        assert!(MINIMAL.contains(from), "{from}");
        let text = MINIMAL.replacen(from, to, 1);
        let errors = Mapping::from_toml(&text).expect_err(expected).to_string();
        assert!(errors.contains(expected), "{from} -> {to}: {errors}");
    }
    assert!(Mapping::from_toml(MINIMAL).is_ok());
}

#[test]
fn time_zones_are_an_iana_name_or_a_fixed_offset() {
    // (text, parsed)
    let cases: &[(&str, Option<SourceTimeZone>)] = &[
        ("Z", Some(SourceTimeZone::Fixed("Z".to_string()))),
        ("UTC", Some(SourceTimeZone::Fixed("Z".to_string()))),
        ("+01:00", Some(SourceTimeZone::Fixed("+01:00".to_string()))),
        ("-05:30", Some(SourceTimeZone::Fixed("-05:30".to_string()))),
        ("+15:00", None),
        ("+1:00", None),
        (
            "Europe/Paris",
            Some(SourceTimeZone::Iana("Europe/Paris".to_string())),
        ),
        (
            "America/Argentina/Buenos_Aires",
            Some(SourceTimeZone::Iana(
                "America/Argentina/Buenos_Aires".to_string(),
            )),
        ),
        ("Paris", None),
        ("Europe/", None),
        ("", None),
    ];
    for (text, expected) in cases {
        assert_eq!(SourceTimeZone::parse(text).ok(), *expected, "{text:?}");
    }
}

#[test]
fn clinical_dates_stay_calendar_dates() {
    // (text, rule, date or None when rejected)
    let cases: &[(&str, PartialDates, Option<&str>)] = &[
        ("2024-03-05", PartialDates::Reject, Some("2024-03-05")),
        // A datetime keeps the date as written, whatever its offset: never shifted to another day.
        (
            "2024-03-05T23:30:00-10:00",
            PartialDates::Reject,
            Some("2024-03-05"),
        ),
        ("2024-03-05 00:10", PartialDates::Reject, Some("2024-03-05")),
        ("2024-03", PartialDates::Reject, None),
        ("2024-03", PartialDates::FirstDay, Some("2024-03-01")),
        ("2024", PartialDates::FirstDay, Some("2024-01-01")),
        ("2024-13", PartialDates::FirstDay, None),
        ("2023-02-29", PartialDates::FirstDay, None),
        ("05/03/2024", PartialDates::FirstDay, None),
        ("", PartialDates::FirstDay, None),
    ];
    for (text, rule, expected) in cases {
        let parsed = parse_clinical_date(text, *rule)
            .ok()
            .map(|date| date.to_string());
        assert_eq!(parsed.as_deref(), *expected, "{text:?} {rule:?}");
    }
}

#[test]
fn field_names_round_trip_through_their_text() {
    for text in [
        "physician_global",
        "mmt8.total",
        "mmt8.neck_flexors",
        "mmt8.quadriceps.left",
        "haq_di",
        "haq.grip.3",
        "haq.aid.jar_opener",
        "haq.help.walking",
        "cdasi.v_neck.poikiloderma",
        "cdasi.gottron_hands.papules",
        "cdasi.alopecia",
        "enzyme.aldolase.uln",
        "prednisone_mg_per_day",
    ] {
        let target = Target::parse(text).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(target.to_string(), text);
    }
}

#[test]
fn unit_factors_convert_exactly_by_the_source_unit() {
    let mapping = Mapping::from_toml(&MINIMAL.replace(
        "PGA = { field = \"physician_global\" }",
        "PGA = { field = \"physician_global\", units = { \"MU.MM\" = \"0.1\", \"MU.CM\" = \"1\" } }\n\
         CK = { field = \"enzyme.ck.value\", units = { \"MU.UKAT\" = \"60\", \"MU.UL\" = \"1\" } }\n\
         CKULN = { field = \"enzyme.ck.uln\" }",
    ))
    .expect("mapping");
    // (PGA value and unit, CK value and unit, expected globals and enzymes or a problem)
    let cases = [
        (
            ("65", "MU.MM"),
            ("0.35", "MU.UKAT"),
            "Vas(VasCm(6.5)) | value: 21, uln: 200",
        ),
        (
            ("6.5", "MU.CM"),
            ("21", "MU.UL"),
            "Vas(VasCm(6.5)) | value: 21, uln: 200",
        ),
        (
            ("6.55", "MU.CM"),
            ("21", "MU.UL"),
            "more than 1 decimal place",
        ),
        (
            ("65", "MU.INCH"),
            ("21", "MU.UL"),
            "unit \"MU.INCH\" has no conversion",
        ),
    ];
    for ((pga, pga_unit), (ck, ck_unit), expected) in cases {
        let document = format!(
            r#"<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" FileType="Snapshot"><ClinicalData StudyOID="S">
<SubjectData SubjectKey="S-1"><StudyEventData StudyEventOID="SE.BL"><FormData FormOID="F"><ItemGroupData ItemGroupOID="G">
<ItemData ItemOID="VISDAT" Value="2024-01-01"/>
<ItemData ItemOID="PGA" Value="{pga}"><MeasurementUnitRef MeasurementUnitOID="{pga_unit}"/></ItemData>
<ItemData ItemOID="CK" Value="{ck}"><MeasurementUnitRef MeasurementUnitOID="{ck_unit}"/></ItemData>
<ItemData ItemOID="CKULN" Value="200"/>
</ItemGroupData></FormData></StudyEventData></SubjectData></ClinicalData></ODM>"#
        );
        let mut ledger = SentLedger::default();
        let plan = plan(read_slice(document.as_bytes()), &mapping, &mut ledger).expect("plan");
        let mut summary: Vec<String> = plan
            .changes
            .iter()
            .map(|change| match change {
                Change::Event { event, .. } => format!("{:?}", event.body),
                Change::Retraction { .. } => "retraction".to_string(),
            })
            .collect();
        summary.extend(plan.discrepancies.iter().map(|d| d.problem.clone()));
        let summary = summary.join(" | ");
        for part in expected.split(" | ") {
            assert!(
                summary.contains(part),
                "{pga} {pga_unit} {ck} {ck_unit}: {summary}"
            );
        }
    }
}

#[test]
fn skeleton_from_odm_metadata_lists_every_item_and_event_and_maps_none() {
    let dictionary =
        dictionary_from_odm(&fixture("redcap_longitudinal_stir.xml")[..]).expect("metadata");
    assert_eq!(dictionary.study_oid.as_deref(), Some("Project.STIR"));
    assert_eq!(dictionary.events.len(), 5);
    // 12 fields, the checkbox's 3 options, and the 7 form status items.
    assert_eq!(dictionary.items.len(), 12 + 3 + 7);
    let ck_unit = dictionary
        .items
        .iter()
        .find(|item| item.oid == "ck_unit")
        .expect("ck_unit");
    assert_eq!(
        ck_unit.choices,
        [
            ("1".to_string(), "U/L".to_string()),
            ("2".to_string(), "ukat/L".to_string())
        ]
    );
    let text = skeleton(&dictionary);
    for item in &dictionary.items {
        assert!(
            text.contains(&format!("# \"{}\" = {{ field = \"\" }}", item.oid)),
            "{}",
            item.oid
        );
    }
    assert!(text.contains("# \"Event.week_16_arm_1\" = \"\"  # Week 16"));
    assert!(text.contains("codes 1=U/L, 2=ukat/L"));
    // Valid TOML that names nothing yet: the only complaint is the missing visits.
    let errors = Mapping::from_toml(&text).expect_err("skeleton maps no visit");
    assert_eq!(errors.errors.len(), 1, "{errors}");
    assert_eq!(errors.errors[0].key_path, "visits");
    // Once its lines are filled in, it loads.
    let filled = text
        .replace(
            "# \"Event.baseline_arm_1\" = \"\"",
            "\"Event.baseline_arm_1\" = \"BL\"",
        )
        .replace(
            "# \"pga_vas\" = { field = \"\" }",
            "\"pga_vas\" = { field = \"physician_global\" }",
        );
    let mapping = Mapping::from_toml(&filled).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(mapping.study.as_str(), "Project.STIR");
    assert_eq!(mapping.items.len(), 1);
}

#[test]
fn skeleton_from_a_redcap_dictionary_explodes_checkboxes() {
    let metadata =
        RedcapMetadata::from_json(&fixture_text("stir_metadata.json")).expect("metadata");
    assert_eq!(metadata.record_id_field(), "record_id");
    let dictionary = dictionary_from_redcap(&metadata, "STIR", &["baseline_arm_1".to_string()]);
    let oids: Vec<&str> = dictionary
        .items
        .iter()
        .map(|item| item.oid.as_str())
        .collect();
    assert!(oids.contains(&"pred_change___1") && oids.contains(&"pred_change___3"));
    assert!(!oids.contains(&"pred_change"));
    let text = skeleton(&dictionary);
    assert!(text.contains("# \"pga_vas\" = { field = \"\" }  # Physician global activity (VAS, cm); text (number); form globals"));
    assert!(text.contains("# \"rand_arm\" = { field = \"\" }  # Randomised arm; radio; form enrolment; codes 1=IVIg, 2=Placebo"));
    assert!(
        text.contains("# \"Event.baseline_arm_1\" = \"\""),
        "events are keyed as the rows name them: {text}"
    );
}
