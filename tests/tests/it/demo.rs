//! `myolog demo`, the README's first command: it runs end to end (server on 127.0.0.1:0, the cohort
//! over Submit, the rejection, the correction, the tables) and `--data DIR` keeps a log that a
//! restarted server serves with the same outcomes, which `myolog outcomes` prints with each
//! subject's eligibility.

use myolog_cli::demo::DemoArgs;
use myolog_synth::{self as synth, PRIMARY_VISIT};
use myolog_tests::{Clients, start};

/// The demo registers STIR's protocol, so its visits carry STIR's encounter ids.
fn stir_visit(visit: &str) -> &str {
    synth::STIR_VISIT_IDS
        .iter()
        .find(|(name, _)| *name == visit)
        .map_or(visit, |(_, id)| id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_runs_and_keeps_its_log_with_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = DemoArgs {
        data: Some(dir.path().to_path_buf()),
        addr: None,
        seed: synth::DEFAULT_SEED,
        tls: Default::default(),
    };
    let mut out = Vec::new();
    myolog_cli::demo::run(&args, &mut out)
        .await
        .expect("demo runs");
    let text = String::from_utf8(out).expect("utf-8");
    for expected in [
        "REJECTED (INVALID_ARGUMENT), nothing of it stored:",
        "events[1].assessment_recorded.mmt8.grades.deltoid.grade: 12 is out of range",
        "the original stays in the log",
        // 382 events of visits and enrolments, and two prednisone records before day 0 per subject.
        "402 events acknowledged after fdatasync",
        "Week-12 outcomes per subject",
        "IMACS DOI responders",
        "Clopper-Pearson",
        "2016 TIS categories",
        "paired t-test",
        "Wilcoxon signed-rank",
        // The STIR protocol's endpoint tables (GetCohort), agreeing with the visit table above.
        "Endpoints by the protocol (STIR v1 registered as STIR-DEMO; subjects, missing, not evaluable, outside window)",
        "  DOI_W12     10  0  0  0  responders 8/10 (80.0%; 95% CI 44.4% to 97.5%, Clopper-Pearson)",
        // Eligibility (GetCohort): every subject an adult with CDASI activity >= 15 at baseline and
        // muscle disease not active (IN03 not applicable), refractory, with prednisone records from
        // before the 8-week window (IN05 met). Deliberately not eligible: S007's prednisone stable
        // only 1 week (STIR asks for 2) and S004's rituximab 8 months before day 0 (STIR: 12).
        // Deliberately not evaluable: S009's IVIG last-dose date not recorded. The six men or women
        // aged 50 or over are not of child-bearing potential (IN15 not applicable).
        "Eligibility by the protocol (STIR v1 registered as STIR-DEMO): 7/10 eligible, 2 not eligible, 1 not evaluable",
        "  IN03         0        0              10              0  If muscle disease is active, MMT-8 below 142 of 150",
        "  IN04         9        1               0              0  Prednisone at most 20 mg/day at entry, stable for at least 2 weeks before baseline",
        "  IN05        10        0               0              0  No prednisone equivalent above 80 mg/day within 8 weeks before study entry",
        "  IN09        10        0               0              0  Refractory: active despite 12 weeks of steroids with failure of prednisone and 1 first-line immunosuppressant, or toxicity or intolerance to such therapies",
        "  IN11         9        1               0              0  Washout: no rituximab within 12 months before the first dose",
        "  IN12         9        0               0              1  Washout: no intravenous immunoglobulin within 3 months before the first dose",
        "  IN15         4        0               6              0  Women of child-bearing potential: negative pregnancy test",
    ] {
        assert!(
            text.contains(expected),
            "demo output lacks {expected:?}:\n{text}"
        );
    }
    // One table row per subject.
    for index in 0..10 {
        let subject = synth::subject_id(index);
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&subject)),
            "{subject} row:\n{text}"
        );
    }

    // The log stayed in DIR: a server on it reports the same week-12 table and verifies.
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    assert_eq!(clients.head().await, 402);
    let cohort = clients.cohort().await;
    let week12 = cohort
        .visits
        .iter()
        .find(|v| v.visit_id == stir_visit(PRIMARY_VISIT))
        .expect("week 12");
    let doi = week12.doi_responders.as_ref().expect("doi");
    let line = format!("IMACS DOI responders   {}/{} ", doi.responders, doi.total);
    assert!(text.contains(&line), "{line:?} in:\n{text}");

    // `myolog outcomes` on that server: the demo's week-12 tables, then the same eligibility table
    // and each subject's verdict with the criteria that decide it.
    let mut out = Vec::new();
    myolog_cli::demo::print_outcomes(
        &server.url(),
        &Default::default(),
        synth::STUDY,
        stir_visit(PRIMARY_VISIT),
        None,
        &mut out,
    )
    .await
    .expect("myolog outcomes");
    let outcomes = String::from_utf8(out).expect("utf-8");
    let from = |text: &str, heading: &str| -> Vec<String> {
        text.lines()
            .skip_while(|l| !l.starts_with(heading))
            .take_while(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let demo_table = from(&text, "Eligibility by the protocol");
    // The heading, the column names and one row per criterion (IN01 to IN15).
    assert_eq!(demo_table.len(), 17, "{text}");
    let mut expected = demo_table;
    expected.push("  subject  verdict        criteria".into());
    for index in 0..10 {
        expected.push(match index {
            synth::RITUXIMAB_TOO_RECENT => "  S004     not eligible   not met: IN11".into(),
            6 => "  S007     not eligible   not met: IN04".into(),
            synth::IVIG_DATE_UNKNOWN => "  S009     not evaluable  not evaluable: IN12".into(),
            _ => format!("  {:<8} eligible", synth::subject_id(index)),
        });
    }
    assert_eq!(
        from(&outcomes, "Eligibility by the protocol"),
        expected,
        "{outcomes}"
    );
    // The endpoint tables are the demo's, whole (DOI_W12 responders 8/10 among them).
    let endpoints = from(&outcomes, "Endpoints by the protocol");
    assert!(
        endpoints
            .iter()
            .any(|l| l.starts_with("  DOI_W12 ") && l.contains("responders 8/10")),
        "{outcomes}"
    );
    assert_eq!(endpoints, from(&text, "Endpoints by the protocol"));
    // The per-subject and cohort tables are the demo's, line for line.
    for heading in ["Cohort at W12", "  S001 ", "  S010 "] {
        assert_eq!(
            from(&outcomes, heading).first(),
            from(&text, heading).first(),
            "{heading:?}"
        );
    }
    server.stop().await.expect("stops");

    // `myolog study export --tdm DIR --data LOG` on the stopped demo log: TS gets SSTDTC from the
    // earliest informed consent (S001's, 14 days before its day 0), ACTSUB 10 and the data cut-off.
    let tdm = dir.path().join("tdm");
    let mut out = Vec::new();
    myolog_cli::study::export_with(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocols/stir.toml"),
        &tdm,
        &myolog_cli::study::ExportOptions {
            data: Some(dir.path().to_path_buf()),
            with_assumptions: false,
        },
        &mut out,
    )
    .expect("export with the demo's data");
    let ts = std::fs::read_to_string(tdm.join("ts.csv")).expect("ts.csv");
    let value = |code: &str| {
        ts.lines()
            .find(|line| line.split(',').nth(4) == Some(code))
            .and_then(|line| line.split(',').nth(6))
            .map(str::to_string)
    };
    assert_eq!(value("SSTDTC"), Some(synth::date_from_days(19_730 - 14)));
    assert_eq!(value("ACTSUB"), Some("10".to_string()));
    assert!(value("DCUTDTC").is_some(), "{ts}");
    let printed = String::from_utf8(out).expect("utf-8");
    assert!(
        printed.starts_with(
            "TS values that are assumptions [D], left out (--with-assumptions exports them): "
        ),
        "{printed}"
    );
}
