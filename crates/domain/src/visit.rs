//! Everything assessed at one visit, each measure optional, and the population whose thresholds apply.
//! The gRPC server builds these from events; `myolog score` builds them from JSON ([`crate::case`]).

use crate::biopsy::Stat1;
use crate::cdasi::CdasiV2;
use crate::enzyme::EnzymePanel;
use crate::global::{GlobalAssessment, GlobalKind};
use crate::glucocorticoid::PrednisoneEquivalentDose;
use crate::haq::Haq;
use crate::lab::LabPanel;
use crate::mmt8::Mmt8;

/// Adult or juvenile: the 2016 TIS category thresholds differ (docs/clinical.md#6-total-improvement-score).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Population {
    Adult,
    Juvenile,
}

impl Population {
    pub const fn key(self) -> &'static str {
        match self {
            Population::Adult => "adult",
            Population::Juvenile => "juvenile",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "adult" => Some(Population::Adult),
            "juvenile" => Some(Population::Juvenile),
            _ => None,
        }
    }
}

/// The assessments of one visit. Every measure may be absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VisitAssessments {
    pub physician_global: Option<GlobalAssessment>,
    pub patient_global: Option<GlobalAssessment>,
    /// The physician's extramuscular global on the MDAAT (not the MYOACT sum).
    pub extramuscular_global: Option<GlobalAssessment>,
    pub mmt8: Option<Mmt8>,
    pub haq: Option<Haq>,
    pub enzymes: EnzymePanel,
    pub cdasi: Option<CdasiV2>,
    pub labs: LabPanel,
    pub stat1: Option<Stat1>,
    pub prednisone_mg_per_day: Option<PrednisoneEquivalentDose>,
}

impl VisitAssessments {
    /// The global of the given kind, if assessed.
    pub fn global(&self, kind: GlobalKind) -> Option<GlobalAssessment> {
        match kind {
            GlobalKind::Physician => self.physician_global,
            GlobalKind::Patient => self.patient_global,
            GlobalKind::Extramuscular => self.extramuscular_global,
        }
    }
}
