//! Which of a subject's visits an endpoint compares: the baseline by the endpoint's rule
//! (randomisation, or the subject's own first dose for a delayed-start arm: the last visit on or
//! before that dose) and the follow-up at the endpoint's encounter for the subject's arm, with its
//! window timing. A visit that did not happen is "missing", which counts as a non-responder only
//! under the endpoint's non-responder imputation rule.

use super::model::{BaselineRule, EndpointBaseline, MissingDataRule, Protocol};
use super::schedule::{VisitScheduleError, VisitTiming};
use serde::Serialize;
use thiserror::Error;

/// A visit a subject attended: the protocol's visit id and its day since day 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttendedVisit {
    pub visit_id: String,
    pub day: i32,
}

/// The baseline an endpoint uses for one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum BaselineVisit {
    Found {
        visit_id: String,
        day: i32,
        /// The day the baseline is anchored to: 0, or the subject's first dose.
        anchor_day: i32,
    },
    /// The randomisation baseline visit was not attended.
    BaselineVisitMissing { visit_id: String },
    /// A delayed-start subject whose first dose is not recorded yet.
    FirstDoseNotRecorded,
    /// No visit on or before the subject's first dose.
    NoVisitBeforeFirstDose { first_dose_day: i32 },
}

/// The follow-up an endpoint reads for one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum FollowupVisit {
    /// Attended; `timing` says whether it was within its window (outside = protocol deviation,
    /// still scored).
    Found {
        visit_id: String,
        day: i32,
        timing: VisitTiming,
    },
    /// Not attended: missing in the cohort table (`optional` visits are not expected of everyone).
    Missing { visit_id: String, optional: bool },
    /// Attended, but not after the baseline visit (a delayed first dose after this visit): there
    /// is no follow-up to compare, so the outcome is not evaluable.
    NotAfterBaseline {
        visit_id: String,
        day: i32,
        baseline_day: i32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointVisits {
    pub endpoint: String,
    pub baseline: BaselineVisit,
    pub followup: FollowupVisit,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EndpointVisitsError {
    #[error("unknown endpoint `{endpoint}`; expected one of {}", known.join(", "))]
    UnknownEndpoint {
        endpoint: String,
        known: Vec<String>,
    },
    #[error(transparent)]
    Schedule(#[from] VisitScheduleError),
}

impl Protocol {
    /// Resolves an endpoint's baseline and follow-up visit for a subject of `arm_code`.
    /// `first_dose_day` is the subject's actual first dose (days since day 0), if recorded.
    pub fn endpoint_visits(
        &self,
        endpoint_id: &str,
        arm_code: &str,
        attended: &[AttendedVisit],
        first_dose_day: Option<i32>,
    ) -> Result<EndpointVisits, EndpointVisitsError> {
        let Some(endpoint) = self.endpoint(endpoint_id) else {
            return Err(EndpointVisitsError::UnknownEndpoint {
                endpoint: endpoint_id.to_string(),
                known: self
                    .endpoints
                    .iter()
                    .map(|endpoint| endpoint.id.clone())
                    .collect(),
            });
        };
        // Every attended visit must be one this arm plans: checked first, so nothing is half-read.
        let timings = attended
            .iter()
            .map(|visit| self.classify_visit(arm_code, &visit.visit_id, visit.day))
            .collect::<Result<Vec<VisitTiming>, VisitScheduleError>>()?;
        let arm = self
            .arm(arm_code)
            .ok_or_else(|| VisitScheduleError::UnknownArm {
                arm: arm_code.to_string(),
                known: self.arms.iter().map(|arm| arm.code.clone()).collect(),
            })?;

        let delayed = endpoint.baseline == EndpointBaseline::OwnFirstDose
            && arm.baseline == BaselineRule::OwnFirstDose;
        let baseline = if delayed {
            match first_dose_day {
                None => BaselineVisit::FirstDoseNotRecorded,
                Some(dose_day) => attended
                    .iter()
                    .filter(|visit| visit.day <= dose_day)
                    // The last one on or before the dose; of two on one day, the later listed.
                    .fold(None, |last: Option<&AttendedVisit>, visit| match last {
                        Some(previous) if previous.day > visit.day => Some(previous),
                        _ => Some(visit),
                    })
                    .map_or(
                        BaselineVisit::NoVisitBeforeFirstDose {
                            first_dose_day: dose_day,
                        },
                        |visit| BaselineVisit::Found {
                            visit_id: visit.visit_id.clone(),
                            day: visit.day,
                            anchor_day: dose_day,
                        },
                    ),
            }
        } else {
            let baseline_id = &self.study.baseline_encounter;
            attended
                .iter()
                .find(|visit| &visit.visit_id == baseline_id)
                .map_or(
                    BaselineVisit::BaselineVisitMissing {
                        visit_id: baseline_id.clone(),
                    },
                    |visit| BaselineVisit::Found {
                        visit_id: visit.visit_id.clone(),
                        day: visit.day,
                        anchor_day: 0,
                    },
                )
        };

        // Validation guarantees every arm has an encounter for every endpoint.
        let followup_id = endpoint
            .encounter_for(arm_code)
            .unwrap_or_default()
            .to_string();
        let followup = attended
            .iter()
            .zip(timings)
            .find(|(visit, _)| visit.visit_id == followup_id)
            .map_or(
                FollowupVisit::Missing {
                    optional: self
                        .encounter(&followup_id)
                        .is_some_and(|encounter| encounter.optional),
                    visit_id: followup_id.clone(),
                },
                |(visit, timing)| FollowupVisit::Found {
                    visit_id: visit.visit_id.clone(),
                    day: visit.day,
                    timing,
                },
            );
        let followup = match (&baseline, followup) {
            (
                BaselineVisit::Found {
                    day: baseline_day, ..
                },
                FollowupVisit::Found { visit_id, day, .. },
            ) if day <= *baseline_day => FollowupVisit::NotAfterBaseline {
                visit_id,
                day,
                baseline_day: *baseline_day,
            },
            (_, followup) => followup,
        };
        Ok(EndpointVisits {
            endpoint: endpoint.id.clone(),
            baseline,
            followup,
        })
    }
}

/// A subject's standing on a responder endpoint before the missing-data rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResponderStatus {
    Responder,
    NonResponder,
    /// Visits present, outcome not computable (a measure missing, no dose record in the window).
    NotEvaluable,
    /// A visit the endpoint needs did not happen.
    Missing,
}

impl MissingDataRule {
    /// How a subject counts in n/N: `Some(true)` responder, `Some(false)` non-responder, `None`
    /// left out of the denominator. Non-responder imputation counts every subject without a
    /// determinable response as a non-responder; the default leaves them out and reports them.
    pub fn counts_as(self, status: ResponderStatus) -> Option<bool> {
        match (status, self) {
            (ResponderStatus::Responder, _) => Some(true),
            (ResponderStatus::NonResponder, _) => Some(false),
            (
                ResponderStatus::NotEvaluable | ResponderStatus::Missing,
                MissingDataRule::NonResponderImputation,
            ) => Some(false),
            (
                ResponderStatus::NotEvaluable | ResponderStatus::Missing,
                MissingDataRule::Missing,
            ) => None,
        }
    }
}
