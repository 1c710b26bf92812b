//! `myolog demo`: starts the service on an embedded log (a temporary directory, or `--data DIR`) on
//! 127.0.0.1:0 — or uses the server at `--addr` — streams the synthetic STIR-like cohort
//! ([`crate::synth`]) through a real tonic client over `Ingest.Submit`, and prints the rejected form,
//! the correction, the per-subject week-12 outcomes and the cohort summary. `myolog outcomes`
//! ([`print_outcomes`]) prints the same tables for a study on a running server, with each
//! subject's eligibility.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Instant;

use myolog_proto::v1 as pb;
use myolog_proto::v1::ingest_client::IngestClient;
use myolog_proto::v1::outcomes_client::OutcomesClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::client::ServerTls;
use std::path::PathBuf;

use clap::Args;
use myolog_server::app::AppConfig;
use myolog_synth::{self as synth, Cohort, PRIMARY_VISIT, STUDY, VISITS};

/// Why the demo failed.
/// `myolog demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Keep the log in this directory instead of a temporary one.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Stream to an already running server at this URL instead of starting one.
    #[arg(long)]
    pub addr: Option<String>,
    /// Seed of the synthetic cohort.
    #[arg(long, default_value_t = myolog_synth::DEFAULT_SEED)]
    pub seed: u64,
    /// TLS to the server at `--addr` (the demo's own server is plaintext on loopback).
    #[command(flatten)]
    pub tls: crate::client::ServerTls,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("starting the server: {0}")]
    Start(#[from] myolog_server::app::StartError),
    #[error("temporary directory: {0}")]
    TempDir(std::io::Error),
    #[error(transparent)]
    Connect(#[from] crate::client::ConnectError),
    #[error("gRPC call failed: {0}")]
    Call(#[from] tonic::Status),
    #[error("the Submit stream ended early")]
    StreamEnded,
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

/// Runs the demo, writing its report to `out`.
pub async fn run(args: &DemoArgs, out: &mut impl Write) -> Result<(), DemoError> {
    let started = Instant::now();
    // Registered under STIR's protocol file, so visits are STIR's encounters (BL, W4, ... W16).
    let cohort = Cohort::new(args.seed, 10).with_stir_protocol();
    let mut temp = None;
    let mut running = None;
    let url = match &args.addr {
        Some(addr) => args.tls.url(addr),
        None => {
            let dir = match &args.data {
                Some(dir) => dir.clone(),
                None => {
                    let t = tempfile::Builder::new()
                        .prefix("myolog-demo-")
                        .tempdir()
                        .map_err(DemoError::TempDir)?;
                    let path = t.path().to_path_buf();
                    temp = Some(t);
                    path
                }
            };
            let addr = SocketAddr::from(([127, 0, 0, 1], 0));
            let server = myolog_server::server::start(AppConfig::new(&dir), addr).await?;
            writeln!(
                out,
                "Myolog demo: synthetic STIR-like cohort (10 adults, seed {}), fictional data",
                args.seed
            )?;
            writeln!(
                out,
                "server  {} (event log in {})",
                server.url(),
                dir.display()
            )?;
            let url = server.url();
            running = Some(server);
            url
        }
    };
    if args.addr.is_some() {
        writeln!(
            out,
            "Myolog demo: synthetic STIR-like cohort (10 adults, seed {}) -> {url}",
            args.seed
        )?;
    }
    // The demo's own server is plaintext on loopback; `--tls-*` are for a server at `--addr`.
    let tls = if args.addr.is_some() {
        args.tls.clone()
    } else {
        ServerTls::default()
    };
    let channel = tls.connect(&url).await?;

    let result = stream_and_report(&cohort, channel, out).await;
    if let Some(server) = running {
        server.stop().await?;
    }
    drop(temp);
    result?;
    writeln!(out, "\ndone in {:.1} s", started.elapsed().as_secs_f64())?;
    Ok(())
}

/// One lock-step Submit conversation: send a batch, wait for its answer.
struct Conversation {
    tx: mpsc::Sender<pb::SubmitRequest>,
    rx: tonic::Streaming<pb::SubmitResponse>,
}

impl Conversation {
    async fn send(&mut self, request: pb::SubmitRequest) -> Result<pb::SubmitResponse, DemoError> {
        self.tx
            .send(request)
            .await
            .map_err(|_| DemoError::StreamEnded)?;
        self.rx.message().await?.ok_or(DemoError::StreamEnded)
    }
}

async fn stream_and_report(
    cohort: &Cohort,
    channel: Channel,
    out: &mut impl Write,
) -> Result<(), DemoError> {
    let mut ingest = IngestClient::new(channel.clone());
    let (tx, rx) = mpsc::channel(4);
    let responses = ingest.submit(ReceiverStream::new(rx)).await?.into_inner();
    let mut conversation = Conversation { tx, rx: responses };

    writeln!(
        out,
        "\nStreaming the cohort through Ingest.Submit (one batch per subject and visit) ..."
    )?;
    let mut acked = 0usize;
    let mut duplicates = 0usize;
    let mut last_ack: Option<pb::Ack> = None;
    let mut before_correction: Option<pb::VisitOutcome> = None;
    let mut count = |response: &pb::SubmitResponse, acked: &mut usize, duplicates: &mut usize| {
        *acked += response.acks.len();
        *duplicates += response.acks.iter().filter(|a| a.duplicate).count();
        if let Some(ack) = response.acks.iter().max_by_key(|a| a.sequence)
            && last_ack.as_ref().is_none_or(|l| l.sequence < ack.sequence)
        {
            last_ack = Some(ack.clone());
        }
    };
    let response = conversation.send(cohort.enrollment()).await?;
    expect_accepted(&response)?;
    count(&response, &mut acked, &mut duplicates);
    for (visit, _) in VISITS {
        for index in 0..cohort.len() {
            if (index, visit) == synth::REJECTED {
                let rejected = conversation.send(cohort.rejected_batch()).await?;
                print_rejection(out, &rejected)?;
            }
            let response = conversation.send(cohort.visit_batch(index, visit)).await?;
            expect_accepted(&response)?;
            if (index, visit) == synth::REJECTED {
                writeln!(
                    out,
                    "  -> the site fixed the form and resent batch {}: {} events acked",
                    response.batch_id,
                    response.acks.len()
                )?;
            }
            if (index, visit) == synth::CORRECTED {
                before_correction = response
                    .outcomes
                    .iter()
                    .find(|o| o.visit_id == cohort.visit_id(visit))
                    .cloned();
            }
            count(&response, &mut acked, &mut duplicates);
        }
        if visit == PRIMARY_VISIT {
            let correction = conversation.send(cohort.correction()).await?;
            expect_accepted(&correction)?;
            count(&correction, &mut acked, &mut duplicates);
            print_correction(out, cohort, before_correction.as_ref(), &correction)?;
        }
    }
    drop(conversation);
    let head = last_ack
        .map(|a| (a.sequence, hex(&a.hash)))
        .unwrap_or_default();
    writeln!(
        out,
        "  {acked} events acknowledged after fdatasync ({duplicates} of them already in the log); head sequence {}, hash {}",
        head.0,
        short(&head.1)
    )?;

    let mut outcomes = OutcomesClient::new(channel);
    writeln!(out, "\nWeek-12 outcomes per subject (against baseline)")?;
    writeln!(
        out,
        "  subject  DOI (measures improved >= 20%)              TIS   category   CDASI activity  change  MCID"
    )?;
    for index in 0..cohort.len() {
        let subject = outcomes
            .get_subject(pb::GetSubjectRequest {
                study_id: STUDY.into(),
                subject_id: synth::subject_id(index),
                protocol_version: None,
            })
            .await?
            .into_inner();
        let primary = cohort.visit_id(PRIMARY_VISIT);
        let Some(visit) = subject.visits.iter().find(|v| v.visit_id == primary) else {
            writeln!(out, "  {}     no week-12 data", subject.subject_id)?;
            continue;
        };
        writeln!(out, "  {}", subject_line(visit))?;
    }
    let cohort_outcomes = outcomes
        .get_cohort(pb::GetCohortRequest {
            study_id: STUDY.into(),
            visit_id: cohort.visit_id(PRIMARY_VISIT).into(),
            protocol_version: None,
        })
        .await?
        .into_inner();
    let Some(summary) = cohort_outcomes.visits.first() else {
        return Err(DemoError::Unexpected("no cohort summary at week 12".into()));
    };
    print_cohort(out, summary)?;
    print_endpoints(out, &cohort_outcomes.endpoints)?;
    if let Some(table) = &cohort_outcomes.eligibility {
        print_eligibility(out, table)?;
    }
    Ok(())
}

/// The protocol's eligibility table (GetCohort): n/N eligible and each criterion's verdict counts.
fn print_eligibility(out: &mut impl Write, table: &pb::EligibilityTable) -> Result<(), DemoError> {
    writeln!(
        out,
        "\nEligibility by the protocol ({}): {}/{} eligible, {} not eligible, {} not evaluable",
        table.protocol, table.eligible, table.subjects, table.not_eligible, table.not_evaluable
    )?;
    writeln!(
        out,
        "  criterion  met  not met  not applicable  not evaluable"
    )?;
    for criterion in &table.criteria {
        writeln!(
            out,
            "  {:<9} {:>4} {:>8} {:>15} {:>14}  {}",
            criterion.id,
            criterion.met,
            criterion.not_met,
            criterion.not_applicable,
            criterion.not_evaluable,
            criterion.text
        )?;
    }
    Ok(())
}

/// The protocol's endpoint tables (GetCohort), as the trial defines each endpoint.
fn print_endpoints(out: &mut impl Write, tables: &[pb::EndpointTable]) -> Result<(), DemoError> {
    let Some(first) = tables.first() else {
        return Ok(());
    };
    writeln!(
        out,
        "\nEndpoints by the protocol ({}; subjects, missing, not evaluable, outside window)",
        first.protocol
    )?;
    let responders_text = |responders: Option<&pb::Proportion>| match responders {
        Some(p) => format!("  responders {}", proportion_text(Some(p))),
        None => String::new(),
    };
    for table in tables {
        writeln!(
            out,
            "  {:<11} {:>2} {:>2} {:>2} {:>2}{}",
            table.endpoint,
            table.subjects,
            table.missing,
            table.not_evaluable,
            table.deviations,
            responders_text(table.responders.as_ref())
        )?;
        // A single arm's table is the pooled one again.
        if table.arms.len() > 1 {
            for arm in &table.arms {
                writeln!(
                    out,
                    "    {:<9} {:>2} {:>2} {:>2} {:>2}{}",
                    arm.arm,
                    arm.subjects,
                    arm.missing,
                    arm.not_evaluable,
                    arm.deviations,
                    responders_text(arm.responders.as_ref())
                )?;
            }
        }
    }
    Ok(())
}

/// `myolog outcomes`: a study's outcomes at one visit, per subject (enrolled subjects found through
/// `Audit.ReadEvents`) and for the cohort, from a running server, under `protocol_version` of the
/// study's protocol (`None`: the latest). A version the study does not have is the server's
/// INVALID_ARGUMENT naming `protocol_version` and the versions it has.
pub async fn print_outcomes(
    addr: &str,
    tls: &ServerTls,
    study: &str,
    visit: &str,
    protocol_version: Option<u32>,
    out: &mut impl Write,
) -> Result<(), DemoError> {
    let channel = tls.connect(addr).await?;
    // MYOLOG_TOKEN (an auditor's) against a server with a principals file (myolog_server::auth::client).
    let bearer =
        crate::client::Bearer::from_env().map_err(|e| DemoError::Unexpected(e.to_string()))?;
    let mut audit = myolog_proto::v1::audit_client::AuditClient::with_interceptor(
        channel.clone(),
        bearer.clone(),
    );
    let mut events = audit
        .read_events(pb::ReadEventsRequest {
            from_sequence: 1,
            limit: 0,
        })
        .await?
        .into_inner();
    let mut subjects = Vec::new();
    while let Some(logged) = events.message().await? {
        if let Some(event) = logged.event
            && event.study_id == study
            && matches!(event.body, Some(pb::event::Body::SubjectEnrolled(_)))
        {
            subjects.push(event.subject_id);
        }
    }
    let mut outcomes = OutcomesClient::with_interceptor(channel, bearer);
    let cohort = outcomes
        .get_cohort(pb::GetCohortRequest {
            study_id: study.into(),
            visit_id: visit.into(),
            protocol_version,
        })
        .await?
        .into_inner();
    writeln!(
        out,
        "Study {study}: {} enrolled, as of log sequence {}",
        cohort.enrolled, cohort.as_of_sequence
    )?;
    writeln!(out, "\n{visit} outcomes per subject (against baseline)")?;
    let mut eligibility = Vec::new();
    for subject_id in subjects {
        let subject = outcomes
            .get_subject(pb::GetSubjectRequest {
                study_id: study.into(),
                subject_id: subject_id.clone(),
                protocol_version,
            })
            .await?
            .into_inner();
        match subject.visits.iter().find(|v| v.visit_id == visit) {
            Some(outcome) => writeln!(out, "  {}", subject_line(outcome))?,
            None => writeln!(out, "  {subject_id:<8} no data at {visit}")?,
        }
        if let Some(verdict) = subject.eligibility {
            eligibility.push((subject_id, verdict));
        }
    }
    let summary = cohort.visits.first();
    if let Some(summary) = summary {
        print_cohort(out, summary)?;
    }
    print_endpoints(out, &cohort.endpoints)?;
    // Eligibility reads the baseline visit, not `visit`: shown even when `visit` has no data yet.
    if let Some(table) = &cohort.eligibility {
        print_eligibility(out, table)?;
        print_subject_eligibility(out, &eligibility)?;
    }
    match summary {
        Some(_) => Ok(()),
        None => Err(DemoError::Unexpected(format!(
            "no outcomes at {visit} in study {study}"
        ))),
    }
}

/// Each subject's eligibility verdict (GetSubject) with the criteria that decide it: an inclusion
/// not met or an exclusion met rules a subject out, a criterion not evaluable leaves it open.
fn print_subject_eligibility(
    out: &mut impl Write,
    subjects: &[(String, pb::SubjectEligibility)],
) -> Result<(), DemoError> {
    writeln!(out, "  subject  verdict        criteria")?;
    for (subject_id, eligibility) in subjects {
        let ids = |category: &str, verdict: &str| -> Vec<&str> {
            eligibility
                .criteria
                .iter()
                .filter(|c| (category.is_empty() || c.category == category) && c.verdict == verdict)
                .map(|c| c.id.as_str())
                .collect()
        };
        let mut reasons = Vec::new();
        for (category, verdict, words) in [
            ("inclusion", "not_met", "not met"),
            ("exclusion", "met", "exclusion met"),
            ("", "not_evaluable", "not evaluable"),
        ] {
            let found = ids(category, verdict);
            if !found.is_empty() {
                reasons.push(format!("{words}: {}", found.join(", ")));
            }
        }
        let line = format!(
            "  {subject_id:<8} {:<14} {}",
            eligibility.verdict.replace('_', " "),
            reasons.join("; ")
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn expect_accepted(response: &pb::SubmitResponse) -> Result<(), DemoError> {
    match &response.rejection {
        None => Ok(()),
        Some(rejection) => Err(DemoError::Unexpected(format!(
            "batch {} rejected: {} {}",
            response.batch_id, rejection.code, rejection.message
        ))),
    }
}

fn print_rejection(out: &mut impl Write, response: &pb::SubmitResponse) -> Result<(), DemoError> {
    let Some(rejection) = &response.rejection else {
        return Err(DemoError::Unexpected(format!(
            "batch {} should have been rejected",
            response.batch_id
        )));
    };
    writeln!(
        out,
        "  batch {} REJECTED ({}), nothing of it stored:",
        response.batch_id, rejection.code
    )?;
    for violation in rejection
        .bad_request
        .iter()
        .flat_map(|b| &b.field_violations)
    {
        writeln!(out, "    {}: {}", violation.field, violation.description)?;
    }
    Ok(())
}

fn print_correction(
    out: &mut impl Write,
    cohort: &Cohort,
    before: Option<&pb::VisitOutcome>,
    response: &pb::SubmitResponse,
) -> Result<(), DemoError> {
    let request = cohort.correction();
    let Some(event) = request.events.first() else {
        return Ok(());
    };
    let Some(pb::event::Body::AssessmentCorrected(c)) = &event.body else {
        return Ok(());
    };
    let sequence = response
        .acks
        .first()
        .map(|a| a.sequence)
        .unwrap_or_default();
    writeln!(
        out,
        "  correction of {} (sequence {sequence}): \"{}\"; the original stays in the log",
        c.supersedes_event_id, c.reason
    )?;
    if let Some(before) = before {
        writeln!(out, "    as entered  {}", subject_line(before))?;
    }
    for outcome in &response.outcomes {
        writeln!(out, "    corrected   {}", subject_line(outcome))?;
    }
    Ok(())
}

fn doi_text(doi: Option<&pb::Doi>) -> String {
    let Some(doi) = doi else { return "-".into() };
    let status = match pb::DoiStatus::try_from(doi.status).unwrap_or(pb::DoiStatus::Unspecified) {
        pb::DoiStatus::Met => "met",
        pb::DoiStatus::NotMet => "not met",
        pb::DoiStatus::NotEvaluable => "not evaluable",
        pb::DoiStatus::Unspecified => "?",
    };
    let short: Vec<&str> = doi
        .improved
        .iter()
        .map(|m| match m.as_str() {
            "physician_global" => "PhGA",
            "patient_global" => "PtGA",
            "extramuscular_global" => "ExtraM",
            "mmt" => "MMT",
            "haq" => "HAQ",
            "enzyme" => "enzyme",
            other => other,
        })
        .collect();
    format!("{status} ({})", short.join(" "))
}

fn category_text(category: i32) -> &'static str {
    match pb::TisCategory::try_from(category).unwrap_or(pb::TisCategory::Unspecified) {
        pb::TisCategory::None => "none",
        pb::TisCategory::Minimal => "minimal",
        pb::TisCategory::Moderate => "moderate",
        pb::TisCategory::Major => "major",
        pb::TisCategory::Unspecified => "-",
    }
}

/// One row of the per-subject table.
pub fn subject_line(visit: &pb::VisitOutcome) -> String {
    let tis = visit.tis.as_ref();
    let (score, category) = match tis {
        Some(t) if t.evaluable => (t.score.clone(), category_text(t.category)),
        _ => ("n/e".into(), "-"),
    };
    let cdasi = match &visit.cdasi {
        Some(c) => format!(
            "{:>3} -> {:<3}      {:>+4}    {}",
            c.baseline_activity.map_or("-".into(), |v| v.to_string()),
            c.followup_activity.map_or("-".into(), |v| v.to_string()),
            c.activity_change.unwrap_or_default(),
            if c.mcid_reached { "yes" } else { "no" }
        ),
        None => "-".into(),
    };
    format!(
        "{:<8} {:<43} {:>5} {:<10} {}",
        visit.subject_id,
        doi_text(visit.doi.as_ref()),
        score,
        category,
        cdasi
    )
}

fn proportion_text(p: Option<&pb::Proportion>) -> String {
    let Some(p) = p else { return "-".into() };
    if p.total == 0 {
        return "0/0".into();
    }
    format!(
        "{}/{} ({:.1}%; 95% CI {:.1}% to {:.1}%, Clopper-Pearson)",
        p.responders,
        p.total,
        100.0 * f64::from(p.responders) / f64::from(p.total),
        100.0 * p.ci_low,
        100.0 * p.ci_high
    )
}

fn summary_text(s: Option<&pb::Summary>) -> String {
    let Some(s) = s else { return "-".into() };
    format!(
        "{:.1} ± {:.1}, median {:.1} [IQR {:.1} to {:.1}]",
        s.mean, s.sd, s.median, s.q1, s.q3
    )
}

fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.0001 => "p < 0.0001".into(),
        Some(p) => format!("p = {p:.4}"),
        None => "not evaluable".into(),
    }
}

fn print_cohort(out: &mut impl Write, summary: &pb::CohortVisit) -> Result<(), DemoError> {
    writeln!(
        out,
        "\nCohort at {} (n = {})",
        summary.visit_id, summary.subjects
    )?;
    writeln!(
        out,
        "  IMACS DOI responders   {}",
        proportion_text(summary.doi_responders.as_ref())
    )?;
    // With more than one arm, each arm's responders (one arm's are the line above).
    if summary.arms.len() > 1 {
        for arm in &summary.arms {
            writeln!(
                out,
                "    {:<20} {}",
                arm.arm,
                proportion_text(arm.doi_responders.as_ref())
            )?;
        }
    }
    if let Some(tis) = &summary.tis {
        writeln!(
            out,
            "  2016 TIS categories    none {}, minimal {}, moderate {}, major {} (of {} evaluable)",
            tis.none, tis.minimal, tis.moderate, tis.major, tis.evaluable
        )?;
        writeln!(
            out,
            "  TIS >= minimal         {}",
            proportion_text(tis.at_least_minimal.as_ref())
        )?;
    }
    if let Some(c) = &summary.cdasi_activity {
        writeln!(out, "  CDASI activity (n = {} pairs)", c.n)?;
        writeln!(
            out,
            "    baseline             {}",
            summary_text(c.baseline.as_ref())
        )?;
        writeln!(
            out,
            "    {:<20} {}",
            summary.visit_id,
            summary_text(c.visit.as_ref())
        )?;
        writeln!(
            out,
            "    change               {}",
            summary_text(c.change.as_ref())
        )?;
        writeln!(out, "    paired t-test        {}", p_text(c.paired_t_p))?;
        writeln!(
            out,
            "    Wilcoxon signed-rank {} ({})",
            p_text(c.wilcoxon_p),
            c.wilcoxon_method
        )?;
    }
    writeln!(
        out,
        "  CDASI MCID (>= 4)      {}",
        proportion_text(summary.cdasi_mcid.as_ref())
    )?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}
