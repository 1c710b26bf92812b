//! Conventions a study chooses where the published sources are silent or disagree (marked [D]; see
//! `docs/clinical.md#11-conventions-where-the-sources-are-silent`). The defaults are the ones that
//! page states; each outcome reports the conventions it used.

use crate::mmt8::KendallGrade;

/// Minimum answered HAQ-DI categories: 6 (Stanford, default) or 7 (some implementations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HaqMinimumCategories {
    #[default]
    Six,
    Seven,
}

impl HaqMinimumCategories {
    pub const fn count(self) -> usize {
        match self {
            HaqMinimumCategories::Six => 6,
            HaqMinimumCategories::Seven => 7,
        }
    }
}

/// CDASI activity minimal clinically important improvement (Anyanwu et al. 2015): 4 (UPenn, default)
/// or 5 (Stanford) points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CdasiMcid {
    #[default]
    UPenn4,
    Stanford5,
}

impl CdasiMcid {
    pub const fn points(self) -> u8 {
        match self {
            CdasiMcid::UPenn4 => 4,
            CdasiMcid::Stanford5 => 5,
        }
    }

    pub const fn source(self) -> &'static str {
        match self {
            CdasiMcid::UPenn4 => "UPenn",
            CdasiMcid::Stanford5 => "Stanford",
        }
    }
}

/// CDASI activity cut-off between mild and moderate/severe disease (Anyanwu et al. 2015): 14 (Stanford,
/// default) or 19 (UPenn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CdasiSeverityCutoff {
    #[default]
    Stanford14,
    UPenn19,
}

impl CdasiSeverityCutoff {
    pub const fn points(self) -> u8 {
        match self {
            CdasiSeverityCutoff::Stanford14 => 14,
            CdasiSeverityCutoff::UPenn19 => 19,
        }
    }

    pub const fn source(self) -> &'static str {
        match self {
            CdasiSeverityCutoff::Stanford14 => "Stanford",
            CdasiSeverityCutoff::UPenn19 => "UPenn",
        }
    }
}

/// The scoring conventions of a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScoringConventions {
    pub haq_min_categories: HaqMinimumCategories,
    pub cdasi_mcid: CdasiMcid,
    pub cdasi_severity_cutoff: CdasiSeverityCutoff,
}

/// What a study allows at input: Likert globals, and a number for MMT "trace".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InputConventions {
    /// Accept Likert 0-4 globals (off by default: `docs/clinical.md#1-imacs-core-set-measures`).
    pub allow_likert_globals: bool,
    /// The Kendall grade a study maps "T"/trace to; `None` rejects trace (default).
    pub mmt_trace_grade: Option<KendallGrade>,
}
