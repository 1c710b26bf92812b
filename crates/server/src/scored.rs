//! The adapter to the scoring crate: one subject x visit scored with `score_case` against its
//! baseline, under the conventions of the study's protocol version in force (the defaults for a study
//! without a protocol), projected onto the wire's outcome messages plus the full result in the
//! `myolog score` JSON contract, which then names that protocol version.

use myolog_domain::case::ScoreCase;
use myolog_domain::conventions::ScoringConventions;
use myolog_domain::protocol::Protocol;
use myolog_domain::visit::{Population, VisitAssessments};
use myolog_proto::v1 as pb;
use myolog_scoring::doi::DoiStatus;
use myolog_scoring::outcome::StudyConventions;
use myolog_scoring::tis::{TisCategory, TisStatus};
use myolog_scoring::{CaseOutcome, score_case};

/// One scored subject x visit.
#[derive(Debug, Clone)]
pub struct Scored {
    pub doi: pb::Doi,
    pub tis: pb::Tis,
    pub cdasi: Option<pb::CdasiChange>,
    /// The result in the `myolog score` JSON contract.
    pub json: String,
    /// The scoring crate's result itself.
    pub outcome: CaseOutcome,
}

/// Scores `followup` against `baseline` for `population` under `protocol`'s conventions.
pub fn score(
    population: Population,
    protocol: Option<&Protocol>,
    baseline: &VisitAssessments,
    followup: &VisitAssessments,
) -> Scored {
    let mut case = baseline_case(population, protocol, baseline.clone());
    score_followup(&mut case, followup.clone())
}

/// A subject's visits scored against one baseline (which is then not cloned again for every
/// visit), under one protocol version's conventions.
#[derive(Debug, Clone)]
pub struct BaselineCase {
    case: ScoreCase,
    conventions: Option<StudyConventions>,
}

/// A case with `baseline` and no follow-up yet, for [`score_followup`], scored under `protocol`'s
/// conventions; without a protocol, the defaults, and the result names no protocol.
pub fn baseline_case(
    population: Population,
    protocol: Option<&Protocol>,
    baseline: VisitAssessments,
) -> BaselineCase {
    let conventions = protocol.map_or_else(ScoringConventions::default, |protocol| {
        protocol.conventions().scoring()
    });
    BaselineCase {
        case: ScoreCase {
            id: None,
            population,
            baseline,
            followup: VisitAssessments::default(),
            conventions,
        },
        conventions: protocol.map(|protocol| {
            StudyConventions::new(
                protocol.reference().to_string(),
                protocol.version(),
                &conventions,
            )
        }),
    }
}

/// Scores `followup` against the case's baseline (the same result as [`score`]).
pub fn score_followup(case: &mut BaselineCase, followup: VisitAssessments) -> Scored {
    case.case.followup = followup;
    let mut outcome = score_case(&case.case);
    outcome.conventions.clone_from(&case.conventions);
    from_outcome(outcome)
}

/// Projects a scoring result onto the wire.
pub fn from_outcome(outcome: CaseOutcome) -> Scored {
    let doi = pb::Doi {
        status: match outcome.doi.status {
            DoiStatus::Met => pb::DoiStatus::Met,
            DoiStatus::NotMet => pb::DoiStatus::NotMet,
            DoiStatus::NotEvaluable => pb::DoiStatus::NotEvaluable,
        } as i32,
        improved: outcome
            .doi
            .improved
            .iter()
            .map(|m| m.key().to_string())
            .collect(),
        worsened: outcome
            .doi
            .worsened
            .iter()
            .map(|m| m.key().to_string())
            .collect(),
        algorithm: outcome.doi.algorithm.to_string(),
    };
    let tis = pb::Tis {
        evaluable: outcome.tis.status == TisStatus::Evaluable,
        score: outcome
            .tis
            .score
            .map(|s| s.0.normalize().to_string())
            .unwrap_or_default(),
        category: match outcome.tis.category {
            None => pb::TisCategory::Unspecified,
            Some(TisCategory::None) => pb::TisCategory::None,
            Some(TisCategory::Minimal) => pb::TisCategory::Minimal,
            Some(TisCategory::Moderate) => pb::TisCategory::Moderate,
            Some(TisCategory::Major) => pb::TisCategory::Major,
        } as i32,
        missing: outcome
            .tis
            .missing
            .iter()
            .map(|m| m.key().to_string())
            .collect(),
        algorithm: outcome.tis.algorithm.to_string(),
    };
    let cdasi = outcome.cdasi.as_ref().and_then(|c| {
        if c.baseline.is_none() && c.followup.is_none() {
            return None;
        }
        Some(pb::CdasiChange {
            baseline_activity: c.baseline.map(|s| u32::from(s.activity)),
            followup_activity: c.followup.map(|s| u32::from(s.activity)),
            activity_change: c.activity_change,
            mcid_reached: c.mcid_reached.unwrap_or(false),
        })
    });
    let json = to_json(&outcome);
    Scored {
        doi,
        tis,
        cdasi,
        json,
        outcome,
    }
}

/// The result in the `myolog score` JSON contract, as `serde_json::to_string` writes it, but
/// serialised into a per-thread buffer that keeps its capacity: growing a fresh buffer from empty
/// for every outcome (a few KiB each) was most of the cost of serialising a replay's outcomes.
fn to_json(outcome: &CaseOutcome) -> String {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        match serde_json::to_writer(&mut *buffer, outcome) {
            // serde_json writes valid UTF-8; checking it is cheaper than the lossy conversion.
            Ok(()) => std::str::from_utf8(buffer)
                .map(str::to_owned)
                .unwrap_or_else(|_| String::from_utf8_lossy(buffer).into_owned()),
            Err(e) => format!("{{\"error\":\"{e}\"}}"),
        }
    })
}
