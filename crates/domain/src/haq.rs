//! The Stanford Health Assessment Questionnaire disability index (HAQ-DI) inputs: 20 items in 8
//! categories, each 0 (no difficulty) to 3 (unable) or unanswered, with the aids/devices and help from
//! another person that raise a category (Fries et al. 1980; Stanford HAQ scoring rules;
//! docs/clinical.md#3-haq-di).

use crate::error::Problem;
use crate::quantity::DecimalRule;
use crate::score::BoundedScore;
use rust_decimal::Decimal;
use std::collections::BTreeSet;

/// One HAQ item answer: 0 without any difficulty .. 3 unable to do.
pub type HaqItemScore = BoundedScore<3>;

/// The eight HAQ-DI categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HaqCategory {
    Dressing,
    Arising,
    Eating,
    Walking,
    Hygiene,
    Reach,
    Grip,
    Activities,
}

impl HaqCategory {
    pub const ALL: [HaqCategory; 8] = [
        HaqCategory::Dressing,
        HaqCategory::Arising,
        HaqCategory::Eating,
        HaqCategory::Walking,
        HaqCategory::Hygiene,
        HaqCategory::Reach,
        HaqCategory::Grip,
        HaqCategory::Activities,
    ];

    /// Number of items in the category (2/2/3/2/3/2/3/3, 20 in all).
    pub const fn item_count(self) -> usize {
        match self {
            HaqCategory::Dressing
            | HaqCategory::Arising
            | HaqCategory::Walking
            | HaqCategory::Reach => 2,
            HaqCategory::Eating
            | HaqCategory::Hygiene
            | HaqCategory::Grip
            | HaqCategory::Activities => 3,
        }
    }

    /// The input key of the category.
    pub const fn key(self) -> &'static str {
        match self {
            HaqCategory::Dressing => "dressing",
            HaqCategory::Arising => "arising",
            HaqCategory::Eating => "eating",
            HaqCategory::Walking => "walking",
            HaqCategory::Hygiene => "hygiene",
            HaqCategory::Reach => "reach",
            HaqCategory::Grip => "grip",
            HaqCategory::Activities => "activities",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|category| category.key() == key)
    }

    /// Position in [`HaqCategory::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Aids and devices listed on the HAQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HaqAid {
    Cane,
    Walker,
    Crutches,
    Wheelchair,
    DressingDevices,
    BuiltUpUtensils,
    BuiltUpChair,
    RaisedToiletSeat,
    BathtubSeat,
    BathtubBar,
    LongHandledBathroom,
    LongHandledReach,
    JarOpener,
    Other,
}

impl HaqAid {
    pub const ALL: [HaqAid; 14] = [
        HaqAid::Cane,
        HaqAid::Walker,
        HaqAid::Crutches,
        HaqAid::Wheelchair,
        HaqAid::DressingDevices,
        HaqAid::BuiltUpUtensils,
        HaqAid::BuiltUpChair,
        HaqAid::RaisedToiletSeat,
        HaqAid::BathtubSeat,
        HaqAid::BathtubBar,
        HaqAid::LongHandledBathroom,
        HaqAid::LongHandledReach,
        HaqAid::JarOpener,
        HaqAid::Other,
    ];

    pub const fn key(self) -> &'static str {
        match self {
            HaqAid::Cane => "cane",
            HaqAid::Walker => "walker",
            HaqAid::Crutches => "crutches",
            HaqAid::Wheelchair => "wheelchair",
            HaqAid::DressingDevices => "dressing_devices",
            HaqAid::BuiltUpUtensils => "built_up_utensils",
            HaqAid::BuiltUpChair => "built_up_chair",
            HaqAid::RaisedToiletSeat => "raised_toilet_seat",
            HaqAid::BathtubSeat => "bathtub_seat",
            HaqAid::BathtubBar => "bathtub_bar",
            HaqAid::LongHandledBathroom => "long_handled_bathroom",
            HaqAid::LongHandledReach => "long_handled_reach",
            HaqAid::JarOpener => "jar_opener",
            HaqAid::Other => "other",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|aid| aid.key() == key)
    }

    /// The category an aid raises (Stanford mapping; bathtub seat -> hygiene is a [D] choice,
    /// docs/clinical.md#3-haq-di). "Other" names no category: the form leaves its category to the reviewer, so it raises none.
    pub const fn category(self) -> Option<HaqCategory> {
        match self {
            HaqAid::DressingDevices => Some(HaqCategory::Dressing),
            HaqAid::BuiltUpChair => Some(HaqCategory::Arising),
            HaqAid::BuiltUpUtensils => Some(HaqCategory::Eating),
            HaqAid::Cane | HaqAid::Walker | HaqAid::Crutches | HaqAid::Wheelchair => {
                Some(HaqCategory::Walking)
            }
            HaqAid::RaisedToiletSeat
            | HaqAid::BathtubSeat
            | HaqAid::BathtubBar
            | HaqAid::LongHandledBathroom => Some(HaqCategory::Hygiene),
            HaqAid::LongHandledReach => Some(HaqCategory::Reach),
            HaqAid::JarOpener => Some(HaqCategory::Grip),
            HaqAid::Other => None,
        }
    }
}

/// Item-level HAQ answers with aids and help. Item counts per category are guaranteed by construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HaqItems {
    answers: [Vec<Option<HaqItemScore>>; 8],
    aids: BTreeSet<HaqAid>,
    help: BTreeSet<HaqCategory>,
}

impl HaqItems {
    /// Builds the questionnaire; `answers[c]` must have exactly `HaqCategory::ALL[c].item_count()` items.
    /// On a wrong length the error names the category.
    pub fn new(
        answers: [Vec<Option<HaqItemScore>>; 8],
        aids: BTreeSet<HaqAid>,
        help: BTreeSet<HaqCategory>,
    ) -> Result<Self, (HaqCategory, Problem)> {
        for category in HaqCategory::ALL {
            let found = answers[category.index()].len();
            if found != category.item_count() {
                return Err((
                    category,
                    Problem::WrongLength {
                        expected: category.item_count(),
                        found,
                    },
                ));
            }
        }
        Ok(Self {
            answers,
            aids,
            help,
        })
    }

    /// The answers of one category (`None` = unanswered).
    pub fn answers(&self, category: HaqCategory) -> &[Option<HaqItemScore>] {
        &self.answers[category.index()]
    }

    pub fn aids(&self) -> &BTreeSet<HaqAid> {
        &self.aids
    }

    pub fn help(&self) -> &BTreeSet<HaqCategory> {
        &self.help
    }

    /// True when an aid/device mapped to the category or help from another person was reported for it.
    pub fn aid_or_help(&self, category: HaqCategory) -> bool {
        self.help.contains(&category)
            || self.aids.iter().any(|aid| aid.category() == Some(category))
    }
}

/// A HAQ-DI given as a score (0 to 3, at most 3 decimals: 1/8 steps are 0.125).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HaqDiScore(Decimal);

pub(crate) const HAQ_DI: DecimalRule = DecimalRule {
    min: Decimal::ZERO,
    min_exclusive: false,
    max: Decimal::from_parts(3, 0, 0, false, 0),
    max_decimals: 3,
    unit: "",
};

impl HaqDiScore {
    pub fn get(self) -> Decimal {
        self.0
    }
}

impl TryFrom<Decimal> for HaqDiScore {
    type Error = Problem;
    fn try_from(value: Decimal) -> Result<Self, Problem> {
        HAQ_DI.check(value).map(Self)
    }
}

/// The HAQ as recorded at a visit: a score, or the items.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Haq {
    Score(HaqDiScore),
    /// Boxed: the items are large next to a score.
    Items(Box<HaqItems>),
}
