//! Global activity assessments (physician, patient, extramuscular): a 10 cm visual analogue scale in
//! cm with at most one decimal (or whole mm), or a Likert 0-4 form where a study allows it (IMACS core
//! set; docs/clinical.md#1-imacs-core-set-measures). The scale travels with the value so that two scales are never compared.

use crate::error::Problem;
use crate::quantity::DecimalRule;
use crate::score::BoundedScore;
use rust_decimal::Decimal;

/// A 10 cm VAS reading in cm, 0 to 10 with at most one decimal place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VasCm(Decimal);

const VAS_CM: DecimalRule = DecimalRule {
    min: Decimal::ZERO,
    min_exclusive: false,
    max: Decimal::TEN,
    max_decimals: 1,
    unit: "cm",
};
const VAS_MM: DecimalRule = DecimalRule {
    min: Decimal::ZERO,
    min_exclusive: false,
    max: Decimal::ONE_HUNDRED,
    max_decimals: 0,
    unit: "mm",
};

impl VasCm {
    /// Validates a reading in cm.
    pub fn from_cm(cm: Decimal) -> Result<Self, Problem> {
        VAS_CM.check(cm).map(Self)
    }

    /// Validates a reading in whole mm (0-100) and converts it exactly to cm.
    pub fn from_mm(mm: Decimal) -> Result<Self, Problem> {
        let mm = VAS_MM.check(mm)?;
        Ok(Self((mm / Decimal::TEN).normalize()))
    }

    /// The reading in cm.
    pub const fn cm(self) -> Decimal {
        self.0
    }
}

impl TryFrom<Decimal> for VasCm {
    type Error = Problem;
    fn try_from(cm: Decimal) -> Result<Self, Problem> {
        Self::from_cm(cm)
    }
}

/// A Likert global, 0 (none) to 4 (extremely severe).
pub type LikertGlobal = BoundedScore<4>;

/// Which scale a global was recorded on, and the scale a protocol declares for its globals (TOML
/// `vas_cm` or `likert`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum GlobalScale {
    /// 10 cm visual analogue scale (values in cm).
    VasCm,
    /// Likert 0-4.
    Likert,
}

impl GlobalScale {
    /// The scale's name in outputs.
    pub const fn name(self) -> &'static str {
        match self {
            GlobalScale::VasCm => "vas_cm",
            GlobalScale::Likert => "likert_0_4",
        }
    }

    /// The full range of the scale (10 cm, or 4 Likert steps).
    pub fn range(self) -> Decimal {
        match self {
            GlobalScale::VasCm => Decimal::TEN,
            GlobalScale::Likert => Decimal::from(4),
        }
    }
}

/// One global assessment on its scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlobalAssessment {
    Vas(VasCm),
    Likert(LikertGlobal),
}

impl GlobalAssessment {
    /// The scale the value was recorded on.
    pub const fn scale(self) -> GlobalScale {
        match self {
            GlobalAssessment::Vas(_) => GlobalScale::VasCm,
            GlobalAssessment::Likert(_) => GlobalScale::Likert,
        }
    }

    /// The value on its own scale (cm for VAS).
    pub fn value(self) -> Decimal {
        match self {
            GlobalAssessment::Vas(vas) => vas.cm(),
            GlobalAssessment::Likert(likert) => Decimal::from(likert.get()),
        }
    }
}

/// The three IMACS global assessments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GlobalKind {
    Physician,
    Patient,
    Extramuscular,
}

impl GlobalKind {
    pub const ALL: [GlobalKind; 3] = [
        GlobalKind::Physician,
        GlobalKind::Patient,
        GlobalKind::Extramuscular,
    ];

    /// The input key of this global.
    pub const fn key(self) -> &'static str {
        match self {
            GlobalKind::Physician => "physician_global",
            GlobalKind::Patient => "patient_global",
            GlobalKind::Extramuscular => "extramuscular_global",
        }
    }
}
