//! Cutaneous Dermatomyositis Disease Area and Severity Index, version 2 (Yassaee et al. 2010; item
//! scales from a transcription of the form; docs/clinical.md#4-cdasi-version-2): 15 body locations with activity and damage
//! items, Gottron's papules on the hands, periungual changes and alopecia. Items not recorded score 0.

use crate::score::BoundedScore;
use std::collections::BTreeMap;

/// The 15 CDASI locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CdasiLocation {
    Scalp,
    Malar,
    Periorbital,
    RestOfFace,
    VNeck,
    PosteriorNeck,
    UpperBackShoulders,
    RestOfBackButtocks,
    Abdomen,
    LateralUpperThigh,
    RestOfLegFeet,
    Arm,
    MechanicsHand,
    DorsumHands,
    GottronNotHands,
}

impl CdasiLocation {
    pub const ALL: [CdasiLocation; 15] = [
        CdasiLocation::Scalp,
        CdasiLocation::Malar,
        CdasiLocation::Periorbital,
        CdasiLocation::RestOfFace,
        CdasiLocation::VNeck,
        CdasiLocation::PosteriorNeck,
        CdasiLocation::UpperBackShoulders,
        CdasiLocation::RestOfBackButtocks,
        CdasiLocation::Abdomen,
        CdasiLocation::LateralUpperThigh,
        CdasiLocation::RestOfLegFeet,
        CdasiLocation::Arm,
        CdasiLocation::MechanicsHand,
        CdasiLocation::DorsumHands,
        CdasiLocation::GottronNotHands,
    ];

    pub const fn key(self) -> &'static str {
        match self {
            CdasiLocation::Scalp => "scalp",
            CdasiLocation::Malar => "malar",
            CdasiLocation::Periorbital => "periorbital",
            CdasiLocation::RestOfFace => "rest_of_face",
            CdasiLocation::VNeck => "v_neck",
            CdasiLocation::PosteriorNeck => "posterior_neck",
            CdasiLocation::UpperBackShoulders => "upper_back_shoulders",
            CdasiLocation::RestOfBackButtocks => "rest_of_back_buttocks",
            CdasiLocation::Abdomen => "abdomen",
            CdasiLocation::LateralUpperThigh => "lateral_upper_thigh",
            CdasiLocation::RestOfLegFeet => "rest_of_leg_feet",
            CdasiLocation::Arm => "arm",
            CdasiLocation::MechanicsHand => "mechanics_hand",
            CdasiLocation::DorsumHands => "dorsum_hands",
            CdasiLocation::GottronNotHands => "gottron_not_hands",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|location| location.key() == key)
    }
}

/// Scores of one location: activity (erythema 0-3, scale 0-2, erosion/ulceration 0-1) and damage
/// (poikiloderma 0-1, calcinosis 0-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CdasiLocationScores {
    pub erythema: BoundedScore<3>,
    pub scale: BoundedScore<2>,
    pub erosion: BoundedScore<1>,
    pub poikiloderma: BoundedScore<1>,
    pub calcinosis: BoundedScore<1>,
}

/// Damage of Gottron's papules on the hands: 0 absent, 1 dyspigmentation, 2 scarring.
pub type GottronDamage = BoundedScore<2>;

/// Gottron's papules on the hands (knuckles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GottronHands {
    /// Erythema 0-3; doubled in the activity score when papules are present.
    pub erythema: BoundedScore<3>,
    pub papules: bool,
    pub ulceration: BoundedScore<1>,
    pub damage: GottronDamage,
}

/// A CDASI v2 form. Locations not listed score 0 on every item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CdasiV2 {
    pub locations: BTreeMap<CdasiLocation, CdasiLocationScores>,
    pub gottron_hands: GottronHands,
    /// Periungual changes 0-2 (activity).
    pub periungual: BoundedScore<2>,
    /// Recent hair loss within 30 days 0-1 (activity).
    pub alopecia: BoundedScore<1>,
}
