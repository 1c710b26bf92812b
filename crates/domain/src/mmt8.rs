//! Manual muscle testing, MMT-8 (IMACS Form 04): eight muscle groups graded on the Kendall 0-10 scale,
//! recorded unilaterally (total 0-80) or bilaterally (seven limb groups on both sides plus neck flexors,
//! total 0-150). A missing grade is kept as missing; the total is then not computable
//! (docs/clinical.md#2-mmt-8-total).

use crate::error::Problem;
use crate::score::BoundedScore;

/// One Kendall grade, 0 to 10. "T"/trace is rejected unless a study maps it to a number.
pub type KendallGrade = BoundedScore<10>;

/// The eight MMT-8 muscle groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MuscleGroup {
    NeckFlexors,
    Deltoid,
    Biceps,
    WristExtensors,
    GluteusMaximus,
    GluteusMedius,
    Quadriceps,
    AnkleDorsiflexors,
}

impl MuscleGroup {
    pub const ALL: [MuscleGroup; 8] = [
        MuscleGroup::NeckFlexors,
        MuscleGroup::Deltoid,
        MuscleGroup::Biceps,
        MuscleGroup::WristExtensors,
        MuscleGroup::GluteusMaximus,
        MuscleGroup::GluteusMedius,
        MuscleGroup::Quadriceps,
        MuscleGroup::AnkleDorsiflexors,
    ];

    /// The seven groups tested on both sides in bilateral MMT-8 (all but the axial neck flexors).
    pub const LIMB: [MuscleGroup; 7] = [
        MuscleGroup::Deltoid,
        MuscleGroup::Biceps,
        MuscleGroup::WristExtensors,
        MuscleGroup::GluteusMaximus,
        MuscleGroup::GluteusMedius,
        MuscleGroup::Quadriceps,
        MuscleGroup::AnkleDorsiflexors,
    ];

    /// The input key of the group.
    pub const fn key(self) -> &'static str {
        match self {
            MuscleGroup::NeckFlexors => "neck_flexors",
            MuscleGroup::Deltoid => "deltoid",
            MuscleGroup::Biceps => "biceps",
            MuscleGroup::WristExtensors => "wrist_extensors",
            MuscleGroup::GluteusMaximus => "gluteus_maximus",
            MuscleGroup::GluteusMedius => "gluteus_medius",
            MuscleGroup::Quadriceps => "quadriceps",
            MuscleGroup::AnkleDorsiflexors => "ankle_dorsiflexors",
        }
    }

    /// Looks a group up by its input key.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|group| group.key() == key)
    }

    /// Position in [`MuscleGroup::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Unilateral (8 grades, max 80) or bilateral (15 grades, max 150) MMT-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MmtScale {
    Unilateral,
    Bilateral,
}

impl MmtScale {
    /// The maximum possible total: 80 or 150.
    pub const fn max_total(self) -> u16 {
        match self {
            MmtScale::Unilateral => 80,
            MmtScale::Bilateral => 150,
        }
    }

    /// The scale with the given maximum total.
    pub fn from_max_total(max: u16) -> Result<Self, Problem> {
        match max {
            80 => Ok(MmtScale::Unilateral),
            150 => Ok(MmtScale::Bilateral),
            other => Err(Problem::OutOfRange {
                value: other.to_string(),
                allowed: "80 (unilateral) or 150 (bilateral)".to_string(),
            }),
        }
    }
}

/// A pre-computed MMT-8 total with its scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MmtTotal {
    total: u16,
    scale: MmtScale,
}

impl MmtTotal {
    /// Validates a total: an integer from 0 to the scale's maximum.
    pub fn new(total: u16, scale: MmtScale) -> Result<Self, Problem> {
        if total > scale.max_total() {
            return Err(Problem::OutOfRange {
                value: total.to_string(),
                allowed: format!("an integer from 0 to {}", scale.max_total()),
            });
        }
        Ok(Self { total, scale })
    }

    pub const fn total(self) -> u16 {
        self.total
    }

    pub const fn scale(self) -> MmtScale {
        self.scale
    }
}

/// Sides of a limb group, in the input order `[right, left]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Right,
    Left,
}

/// Unilateral grades, indexed by [`MuscleGroup::index`]; `None` = not graded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UnilateralGrades {
    pub grades: [Option<KendallGrade>; 8],
}

/// Bilateral grades: neck flexors once, each limb group `[right, left]`; `None` = not graded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BilateralGrades {
    pub neck_flexors: Option<KendallGrade>,
    /// Indexed by position in [`MuscleGroup::LIMB`], then `[right, left]`.
    pub limbs: [[Option<KendallGrade>; 2]; 7],
}

impl BilateralGrades {
    /// The grade of a limb group on one side (neck flexors have no side: use the field).
    pub fn limb(&self, group: MuscleGroup, side: Side) -> Option<KendallGrade> {
        let position = MuscleGroup::LIMB.iter().position(|limb| *limb == group)?;
        self.limbs[position][side as usize]
    }
}

/// An MMT-8 assessment as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mmt8 {
    /// Only the total was recorded.
    Total(MmtTotal),
    /// Eight unilateral grades (max 80).
    Unilateral(UnilateralGrades),
    /// Fifteen bilateral grades (max 150).
    Bilateral(BilateralGrades),
}

impl Mmt8 {
    /// The scale (and so the maximum total) of the assessment.
    pub const fn scale(&self) -> MmtScale {
        match self {
            Mmt8::Total(total) => total.scale(),
            Mmt8::Unilateral(_) => MmtScale::Unilateral,
            Mmt8::Bilateral(_) => MmtScale::Bilateral,
        }
    }
}
