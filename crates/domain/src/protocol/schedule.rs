//! Visits against the schedule: a visit inside its encounter's window is on time; outside it is a
//! protocol deviation (reported next to the outcome, which is still scored); a visit id the protocol
//! does not know, or one not planned for the subject's arm, is an error so nothing gets stored.

use super::model::{DayWindow, Protocol};
use serde::Serialize;
use thiserror::Error;

/// Where a visit fell relative to its planned window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum VisitTiming {
    /// Within the window; `days_from_target` < 0 is before the target day.
    InWindow {
        encounter: String,
        target_day: i32,
        days_from_target: i32,
    },
    /// Outside the window: a protocol deviation. `days_outside` < 0 is early (days before the
    /// window's first day), > 0 is late (days after its last day).
    OutsideWindow {
        encounter: String,
        window: DayWindow,
        days_outside: i32,
    },
}

impl VisitTiming {
    pub fn is_deviation(&self) -> bool {
        matches!(self, VisitTiming::OutsideWindow { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VisitScheduleError {
    #[error("unknown arm `{arm}`; expected one of {}", known.join(", "))]
    UnknownArm { arm: String, known: Vec<String> },
    #[error("unknown visit `{visit_id}`; expected one of {}", known.join(", "))]
    UnknownVisit {
        visit_id: String,
        known: Vec<String>,
    },
    #[error("visit `{visit_id}` is not planned for arm `{arm}`; expected one of {}", known.join(", "))]
    NotPlannedForArm {
        visit_id: String,
        arm: String,
        known: Vec<String>,
    },
}

impl Protocol {
    /// Classifies a visit of a subject in `arm_code` held on `day` (days since day 0, randomisation).
    pub fn classify_visit(
        &self,
        arm_code: &str,
        visit_id: &str,
        day: i32,
    ) -> Result<VisitTiming, VisitScheduleError> {
        if self.arm(arm_code).is_none() {
            return Err(VisitScheduleError::UnknownArm {
                arm: arm_code.to_string(),
                known: self.arms.iter().map(|arm| arm.code.clone()).collect(),
            });
        }
        let Some(encounter) = self.encounter(visit_id) else {
            return Err(VisitScheduleError::UnknownVisit {
                visit_id: visit_id.to_string(),
                known: self
                    .encounters
                    .iter()
                    .map(|encounter| encounter.id.clone())
                    .collect(),
            });
        };
        if !encounter.applies_to(arm_code) {
            return Err(VisitScheduleError::NotPlannedForArm {
                visit_id: visit_id.to_string(),
                arm: arm_code.to_string(),
                known: self
                    .encounters
                    .iter()
                    .filter(|planned| planned.applies_to(arm_code))
                    .map(|planned| planned.id.clone())
                    .collect(),
            });
        }
        let window = encounter.window;
        let timing = if window.contains(day) {
            VisitTiming::InWindow {
                encounter: encounter.id.clone(),
                target_day: encounter.target_day,
                days_from_target: day - encounter.target_day,
            }
        } else {
            let days_outside = if day < window.first_day {
                day - window.first_day
            } else {
                day - window.last_day
            };
            VisitTiming::OutsideWindow {
                encounter: encounter.id.clone(),
                window,
                days_outside,
            }
        };
        Ok(timing)
    }
}
