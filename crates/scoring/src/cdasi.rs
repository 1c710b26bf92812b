//! CDASI v2 activity (0-100) and damage (0-32) totals, change from baseline, the minimal clinically
//! important improvement and the severity band (Yassaee et al. 2010; Anyanwu et al., Br J Dermatol
//! 2015;173:969; docs/clinical.md#4-cdasi-version-2).

use myolog_domain::cdasi::CdasiV2;
use myolog_domain::conventions::{CdasiMcid, CdasiSeverityCutoff};
use serde::Serialize;

/// Algorithm name and version, reported with every CDASI result.
pub const CDASI_ALGORITHM: &str = "cdasi-v2@1";

/// CDASI totals of one visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CdasiScores {
    /// 0-100.
    pub activity: u16,
    /// 0-32.
    pub damage: u16,
}

/// Sums the items: per location erythema + scale + erosion (activity) and poikiloderma + calcinosis
/// (damage); Gottron's on the hands erythema x2 when papules are present + ulceration (activity) and
/// its damage 0-2; periungual and alopecia (activity).
pub fn cdasi_scores(form: &CdasiV2) -> CdasiScores {
    let mut activity: u16 = 0;
    let mut damage: u16 = 0;
    for scores in form.locations.values() {
        activity += u16::from(scores.erythema.get() + scores.scale.get() + scores.erosion.get());
        damage += u16::from(scores.poikiloderma.get() + scores.calcinosis.get());
    }
    let gottron = form.gottron_hands;
    let gottron_erythema = u16::from(gottron.erythema.get()) * if gottron.papules { 2 } else { 1 };
    activity += gottron_erythema + u16::from(gottron.ulceration.get());
    activity += u16::from(form.periungual.get()) + u16::from(form.alopecia.get());
    damage += u16::from(gottron.damage.get());
    CdasiScores { activity, damage }
}

/// Mild or moderate/severe skin disease by CDASI activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CdasiSeverity {
    /// Stanford: activity 14 or less; UPenn: activity below 19.
    Mild,
    /// Stanford: activity 15 or more; UPenn: activity 19 or more [D].
    ModerateSevere,
}

/// The severity band of an activity score under a cut-off. Anyanwu et al. 2015 say on which side the
/// Stanford value falls ("CDASI activity scores of 14 or less characterized mild disease"), so 14 is
/// mild. For UPenn they say only that "a CDASI activity score of 19 differentiated mild from moderate
/// and severe disease", which leaves 19 itself open: we count it as moderate/severe [D]
/// (docs/clinical.md#4-cdasi-version-2).
pub fn cdasi_severity(activity: u16, cutoff: CdasiSeverityCutoff) -> CdasiSeverity {
    let mild = match cutoff {
        CdasiSeverityCutoff::Stanford14 => activity <= u16::from(cutoff.points()),
        CdasiSeverityCutoff::UPenn19 => activity < u16::from(cutoff.points()),
    };
    if mild {
        CdasiSeverity::Mild
    } else {
        CdasiSeverity::ModerateSevere
    }
}

/// The severity rule in words, reported with every CDASI result so a reader sees which side of the
/// cut-off value is which, and which side is our assumption.
pub const fn cdasi_severity_rule(cutoff: CdasiSeverityCutoff) -> &'static str {
    match cutoff {
        CdasiSeverityCutoff::Stanford14 => {
            "activity <= 14: mild; above: moderate_severe (Anyanwu 2015: 14 or less is mild)"
        }
        CdasiSeverityCutoff::UPenn19 => {
            "activity >= 19: moderate_severe [D: the source leaves the side of 19 open]; below: mild"
        }
    }
}

/// Change from baseline and whether the MCID was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CdasiChange {
    /// Follow-up minus baseline activity (negative = improvement).
    pub activity_change: i32,
    /// Follow-up minus baseline damage.
    pub damage_change: i32,
    /// Activity fell by at least the MCID (inclusive).
    pub mcid_reached: bool,
}

/// Compares two visits' totals.
pub fn cdasi_change(baseline: CdasiScores, followup: CdasiScores, mcid: CdasiMcid) -> CdasiChange {
    let activity_change = i32::from(followup.activity) - i32::from(baseline.activity);
    CdasiChange {
        activity_change,
        damage_change: i32::from(followup.damage) - i32::from(baseline.damage),
        mcid_reached: -activity_change >= i32::from(mcid.points()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use myolog_domain::cdasi::{CdasiLocation, CdasiLocationScores, GottronHands};
    use myolog_domain::score::BoundedScore;

    fn score<const MAX: u8>(value: u8) -> BoundedScore<MAX> {
        BoundedScore::try_from(value).expect("in range")
    }

    fn location(
        erythema: u8,
        scale: u8,
        erosion: u8,
        poikiloderma: u8,
        calcinosis: u8,
    ) -> CdasiLocationScores {
        CdasiLocationScores {
            erythema: score(erythema),
            scale: score(scale),
            erosion: score(erosion),
            poikiloderma: score(poikiloderma),
            calcinosis: score(calcinosis),
        }
    }

    fn check(form: CdasiV2, expected: (u16, u16)) {
        let scores = cdasi_scores(&form);
        assert_eq!((scores.activity, scores.damage), expected, "{form:?}");
    }

    #[test]
    fn totals() {
        check(CdasiV2::default(), (0, 0));
        let maximal = CdasiV2 {
            locations: CdasiLocation::ALL
                .into_iter()
                .map(|at| (at, location(3, 2, 1, 1, 1)))
                .collect(),
            gottron_hands: GottronHands {
                erythema: score(3),
                papules: true,
                ulceration: score(1),
                damage: score(2),
            },
            periungual: score(2),
            alopecia: score(1),
        };
        check(maximal, (100, 32));
        let one = |at, scores| CdasiV2 {
            locations: [(at, scores)].into_iter().collect(),
            ..CdasiV2::default()
        };
        check(one(CdasiLocation::Scalp, location(2, 1, 0, 0, 0)), (3, 0));
        check(one(CdasiLocation::Malar, location(3, 2, 1, 1, 0)), (6, 1));
        check(
            one(CdasiLocation::GottronNotHands, location(0, 0, 0, 1, 1)),
            (0, 2),
        );
        let gottron = |erythema, papules, ulceration, damage| CdasiV2 {
            gottron_hands: GottronHands {
                erythema: score(erythema),
                papules,
                ulceration: score(ulceration),
                damage: score(damage),
            },
            ..CdasiV2::default()
        };
        // Gottron's on the hands: erythema doubled with papules.
        check(gottron(2, false, 0, 0), (2, 0));
        check(gottron(2, true, 0, 0), (4, 0));
        check(gottron(3, true, 1, 2), (7, 2));
        check(gottron(0, true, 0, 1), (0, 1));
        check(
            CdasiV2 {
                periungual: score(2),
                alopecia: score(1),
                ..CdasiV2::default()
            },
            (3, 0),
        );
    }

    #[test]
    fn change_and_mcid() {
        fn check(baseline: u16, followup: u16, mcid: CdasiMcid, expected: (i32, bool)) {
            let change = cdasi_change(
                CdasiScores {
                    activity: baseline,
                    damage: 0,
                },
                CdasiScores {
                    activity: followup,
                    damage: 0,
                },
                mcid,
            );
            assert_eq!(
                (change.activity_change, change.mcid_reached),
                expected,
                "{baseline} -> {followup} {mcid:?}"
            );
        }
        check(21, 9, CdasiMcid::UPenn4, (-12, true));
        check(20, 16, CdasiMcid::UPenn4, (-4, true));
        check(20, 17, CdasiMcid::UPenn4, (-3, false));
        check(20, 16, CdasiMcid::Stanford5, (-4, false));
        check(20, 15, CdasiMcid::Stanford5, (-5, true));
        check(10, 14, CdasiMcid::UPenn4, (4, false));
        check(0, 0, CdasiMcid::UPenn4, (0, false));
    }

    #[test]
    fn severity_band() {
        fn check(activity: u16, cutoff: CdasiSeverityCutoff, expected: CdasiSeverity) {
            assert_eq!(
                cdasi_severity(activity, cutoff),
                expected,
                "{activity} {cutoff:?}"
            );
        }
        check(13, CdasiSeverityCutoff::Stanford14, CdasiSeverity::Mild);
        // Anyanwu 2015: "14 or less characterized mild disease".
        check(14, CdasiSeverityCutoff::Stanford14, CdasiSeverity::Mild);
        check(
            15,
            CdasiSeverityCutoff::Stanford14,
            CdasiSeverity::ModerateSevere,
        );
        check(18, CdasiSeverityCutoff::UPenn19, CdasiSeverity::Mild);
        // [D]: the source does not say on which side 19 falls; we count it as moderate/severe.
        check(
            19,
            CdasiSeverityCutoff::UPenn19,
            CdasiSeverity::ModerateSevere,
        );
        check(0, CdasiSeverityCutoff::Stanford14, CdasiSeverity::Mild);
        assert!(cdasi_severity_rule(CdasiSeverityCutoff::Stanford14).starts_with("activity <= 14"));
        assert!(cdasi_severity_rule(CdasiSeverityCutoff::UPenn19).contains("[D"));
        check(
            100,
            CdasiSeverityCutoff::UPenn19,
            CdasiSeverity::ModerateSevere,
        );
    }
}
