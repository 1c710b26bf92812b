//! Muscle enzymes with the laboratory's upper limit of normal (IMACS core set; docs/clinical.md#1-imacs-core-set-measures).
//! Values are kept in U/L; ukat/L inputs are converted exactly (1 ukat/L = 60 U/L).

use crate::error::Problem;
use crate::quantity::DecimalRule;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// The five muscle enzymes of the core set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Enzyme {
    Ck,
    Aldolase,
    Ldh,
    Ast,
    Alt,
}

impl Enzyme {
    /// In this order; also the tie-break order when two enzymes are equally abnormal.
    pub const ALL: [Enzyme; 5] = [
        Enzyme::Ck,
        Enzyme::Aldolase,
        Enzyme::Ldh,
        Enzyme::Ast,
        Enzyme::Alt,
    ];

    pub const fn key(self) -> &'static str {
        match self {
            Enzyme::Ck => "ck",
            Enzyme::Aldolase => "aldolase",
            Enzyme::Ldh => "ldh",
            Enzyme::Ast => "ast",
            Enzyme::Alt => "alt",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|enzyme| enzyme.key() == key)
    }
}

/// Units accepted for enzyme activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnzymeUnit {
    UnitsPerLitre,
    MicrokatalPerLitre,
}

impl EnzymeUnit {
    pub const fn key(self) -> &'static str {
        match self {
            EnzymeUnit::UnitsPerLitre => "U/L",
            EnzymeUnit::MicrokatalPerLitre => "ukat/L",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        [EnzymeUnit::UnitsPerLitre, EnzymeUnit::MicrokatalPerLitre]
            .into_iter()
            .find(|unit| unit.key() == key)
    }

    /// Exact factor to U/L.
    fn to_units_per_litre(self) -> Decimal {
        match self {
            EnzymeUnit::UnitsPerLitre => Decimal::ONE,
            EnzymeUnit::MicrokatalPerLitre => Decimal::from(60),
        }
    }
}

/// Enzyme value: >= 0, bounded at 10,000,000 (far above any recorded CK) to keep exact arithmetic in range.
pub(crate) const ENZYME_VALUE: DecimalRule = DecimalRule {
    min: Decimal::ZERO,
    min_exclusive: false,
    max: Decimal::from_parts(10_000_000, 0, 0, false, 0),
    max_decimals: 3,
    unit: "",
};

/// Upper limit of normal: > 0, same bound and precision as the value.
pub(crate) const ENZYME_ULN: DecimalRule = DecimalRule {
    min_exclusive: true,
    ..ENZYME_VALUE
};

/// One enzyme result with its ULN, both in U/L.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnzymeMeasurement {
    value: Decimal,
    uln: Decimal,
}

impl EnzymeMeasurement {
    /// Validates a value (>= 0) and ULN (> 0) in `unit`; the error says which of the two is wrong.
    pub fn new(
        value: Decimal,
        uln: Decimal,
        unit: EnzymeUnit,
    ) -> Result<Self, (EnzymeField, Problem)> {
        let value = ENZYME_VALUE
            .check(value)
            .map_err(|problem| (EnzymeField::Value, problem))?;
        let uln = ENZYME_ULN
            .check(uln)
            .map_err(|problem| (EnzymeField::Uln, problem))?;
        let factor = unit.to_units_per_litre();
        Ok(Self {
            value: (value * factor).normalize(),
            uln: (uln * factor).normalize(),
        })
    }

    /// The value in U/L.
    pub const fn value(self) -> Decimal {
        self.value
    }

    /// The ULN in U/L.
    pub const fn uln(self) -> Decimal {
        self.uln
    }
}

/// Which part of an enzyme result an error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnzymeField {
    Value,
    Uln,
}

/// The enzymes measured at a visit.
pub type EnzymePanel = BTreeMap<Enzyme, EnzymeMeasurement>;
