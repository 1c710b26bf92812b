//! The adapter to the scoring crate: one subject x visit scored with `score_case` against its
//! baseline, under the conventions of the study's protocol version in force (the defaults for a study
//! without a protocol); the result then names that protocol version.

use myolog_domain::case::ScoreCase;
use myolog_domain::conventions::ScoringConventions;
use myolog_domain::protocol::Protocol;
use myolog_domain::visit::{Population, VisitAssessments};
use myolog_scoring::outcome::StudyConventions;
use myolog_scoring::{CaseOutcome, score_case};

/// Scores `followup` against `baseline` for `population` under `protocol`'s conventions.
pub fn score(
    population: Population,
    protocol: Option<&Protocol>,
    baseline: &VisitAssessments,
    followup: &VisitAssessments,
) -> CaseOutcome {
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
pub fn score_followup(case: &mut BaselineCase, followup: VisitAssessments) -> CaseOutcome {
    case.case.followup = followup;
    let mut outcome = score_case(&case.case);
    outcome.conventions.clone_from(&case.conventions);
    outcome
}
