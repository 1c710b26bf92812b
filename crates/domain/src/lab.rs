//! Coded laboratory biomarkers with their units: serum CXCL9 and CXCL10 in pg/mL (STIR secondary
//! outcomes; docs/clinical.md#7-biomarkers-and-skin-biopsy) and other coded measurements. Each code accepts only its unit.

use crate::error::Problem;
use crate::quantity::DecimalRule;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// Coded lab measurements Myolog knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LabCode {
    /// Serum CXCL9 (MIG), pg/mL.
    Cxcl9,
    /// Serum CXCL10 (IP-10), pg/mL.
    Cxcl10,
    /// Serum interferon-beta, pg/mL.
    InterferonBeta,
    /// Type I interferon gene score, unitless.
    InterferonGeneScore,
    /// C-reactive protein, mg/L.
    Crp,
}

impl LabCode {
    pub const ALL: [LabCode; 5] = [
        LabCode::Cxcl9,
        LabCode::Cxcl10,
        LabCode::InterferonBeta,
        LabCode::InterferonGeneScore,
        LabCode::Crp,
    ];

    pub const fn key(self) -> &'static str {
        match self {
            LabCode::Cxcl9 => "cxcl9",
            LabCode::Cxcl10 => "cxcl10",
            LabCode::InterferonBeta => "ifn_beta",
            LabCode::InterferonGeneScore => "ifn_gene_score",
            LabCode::Crp => "crp",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.key() == key)
    }

    /// The one unit the code is recorded in.
    pub const fn unit(self) -> &'static str {
        match self {
            LabCode::Cxcl9 | LabCode::Cxcl10 | LabCode::InterferonBeta => "pg/mL",
            LabCode::InterferonGeneScore => "score",
            LabCode::Crp => "mg/L",
        }
    }
}

/// Lab value: >= 0, at most 3 decimals, bounded at 10,000,000 to keep exact arithmetic in range.
pub(crate) const LAB_VALUE: DecimalRule = DecimalRule {
    min: Decimal::ZERO,
    min_exclusive: false,
    max: Decimal::from_parts(10_000_000, 0, 0, false, 0),
    max_decimals: 3,
    unit: "",
};

/// One coded lab value in its code's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LabMeasurement {
    code: LabCode,
    value: Decimal,
}

impl LabMeasurement {
    /// Validates the value and that `unit` is the code's unit.
    pub fn new(code: LabCode, value: Decimal, unit: &str) -> Result<Self, (LabField, Problem)> {
        if unit != code.unit() {
            return Err((
                LabField::Unit,
                Problem::UnknownValue {
                    value: unit.to_string(),
                    allowed: code.unit().to_string(),
                },
            ));
        }
        let value = LAB_VALUE
            .check(value)
            .map_err(|problem| (LabField::Value, problem))?;
        Ok(Self { code, value })
    }

    pub const fn code(self) -> LabCode {
        self.code
    }

    pub const fn value(self) -> Decimal {
        self.value
    }
}

/// Which part of a lab result an error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabField {
    Value,
    Unit,
}

/// The lab results of a visit.
pub type LabPanel = BTreeMap<LabCode, LabMeasurement>;
