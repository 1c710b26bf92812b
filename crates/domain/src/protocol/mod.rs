//! Study protocols as data: a trial's arms, epochs, visits with windows, conventions, eligibility and
//! endpoints, read from a TOML file and validated into a `Protocol`, plus the pure evaluations a
//! protocol drives: eligibility per criterion, visit-window deviations, which visits an endpoint
//! compares (including a delayed start's own-first-dose baseline), the prednisone-free decision over
//! a glucocorticoid window, amendments in order, and SDTM trial design datasets (TA, TV, TI, TS).
//! The domain reads no files: callers pass the text and the file name to quote in errors.

pub mod ct;
mod days;
mod eligibility;
mod endpoint_visits;
mod error;
mod file;
mod history;
mod model;
mod prednisone_free;
mod schedule;
mod sdtm_check;
mod tdm;
mod validate;

pub use days::{protocol_day, treatments_before};
pub use eligibility::{
    BaselineMeasures, CriterionResult, DoseChange, EligibilityReport, EligibilityVerdict,
    EnzymeResult, GlobalValue, Mmt8Total, RuleResult, Seen, Verdict,
};
pub use endpoint_visits::{
    AttendedVisit, BaselineVisit, EndpointVisits, EndpointVisitsError, FollowupVisit,
    ResponderStatus,
};
pub use error::{ProtocolError, ProtocolErrors, ProtocolProblem};
pub use history::{ProtocolHistory, ProtocolRef};
pub use model::{
    Amendment, Arm, ArmType, BaselineRule, Blinding, Cell, CompareOp, Conventions, Criterion,
    CriterionCategory, DayWindow, Element, Encounter, Endpoint, EndpointBaseline, Epoch, EpochType,
    Flag, GlobalScale, Intervention, InterventionRole, Level, Measure, MissingDataRule, Objective,
    Outcome, OutcomeName, PercentChangeRule, Phase, Population, Protocol, RegistryId,
    ResponderRule, Rule, Study, TisCategory, TrialSummary, WashoutPeriod,
};
pub use prednisone_free::{GlucocorticoidRecord, PrednisoneFreeResult};
pub use schedule::{VisitScheduleError, VisitTiming};
pub use sdtm_check::{SdtmFinding, check_trial_design};
pub use tdm::{
    StudyData, TaRow, TdmDatasets, TdmOptions, TeRow, TiRow, TsRow, TvRow, sdtm_study_day,
};
pub use validate::DEFAULT_GLUCOCORTICOID_WINDOW;

impl Protocol {
    /// Reads and validates a protocol from its TOML text. `file_name` is only quoted in errors.
    pub fn from_toml(file_name: &str, text: &str) -> Result<Protocol, ProtocolErrors> {
        validate::parse_protocol(file_name, text)
    }

    /// Checks that `self` may follow `previous` as its amendment: same study, next version.
    pub fn check_amends(&self, previous: &Protocol) -> Result<(), AmendmentError> {
        if self.study.id != previous.study.id {
            return Err(AmendmentError::OtherStudy {
                registered: previous.study.id.clone(),
                found: self.study.id.clone(),
            });
        }
        let next = previous.version.saturating_add(1);
        if self.version != next {
            return Err(AmendmentError::NotNextVersion {
                expected: next,
                found: self.version,
            });
        }
        Ok(())
    }
}

/// Why a protocol cannot be registered as an amendment of the current version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmendmentError {
    #[error(
        "the amendment is for study {found}, but the registered protocol is for study {registered}"
    )]
    OtherStudy { registered: String, found: String },
    #[error("expected protocol version {expected} (the next one), found version {found}")]
    NotNextVersion { expected: u32, found: u32 },
}
