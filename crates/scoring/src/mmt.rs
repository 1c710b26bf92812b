//! MMT-8 totals (IMACS Form 04; docs/clinical.md#2-mmt-8-total): the sum of 8 unilateral grades (0-80) or 15
//! bilateral grades (0-150). Any missing grade makes the total not computable: no imputation [D].

use myolog_domain::mmt8::{Mmt8, MmtScale, MuscleGroup};
use serde::Serialize;
use thiserror::Error;

/// Algorithm name and version, reported with every MMT-8 total.
pub const MMT8_ALGORITHM: &str = "mmt8@1";

/// An MMT-8 total on its scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmtTotalScore {
    pub total: u16,
    pub scale: MmtScale,
}

/// The grades that were missing, e.g. `deltoid.left`.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[error("MMT-8 total not computable: missing grade(s) {}", missing.join(", "))]
pub struct MmtNotComputable {
    pub missing: Vec<String>,
}

/// Totals an MMT-8 assessment; a recorded total is taken as is.
pub fn mmt8_total(assessment: &Mmt8) -> Result<MmtTotalScore, MmtNotComputable> {
    let mut missing = Vec::new();
    let mut total: u16 = 0;
    let mut add = |grade: Option<myolog_domain::mmt8::KendallGrade>, name: String| match grade {
        Some(grade) => total += u16::from(grade.get()),
        None => missing.push(name),
    };
    match assessment {
        Mmt8::Total(recorded) => {
            return Ok(MmtTotalScore {
                total: recorded.total(),
                scale: recorded.scale(),
            });
        }
        Mmt8::Unilateral(grades) => {
            for group in MuscleGroup::ALL {
                add(grades.grades[group.index()], group.key().to_string());
            }
        }
        Mmt8::Bilateral(grades) => {
            add(
                grades.neck_flexors,
                MuscleGroup::NeckFlexors.key().to_string(),
            );
            for (position, group) in MuscleGroup::LIMB.into_iter().enumerate() {
                add(grades.limbs[position][0], format!("{}.right", group.key()));
                add(grades.limbs[position][1], format!("{}.left", group.key()));
            }
        }
    }
    if missing.is_empty() {
        Ok(MmtTotalScore {
            total,
            scale: assessment.scale(),
        })
    } else {
        Err(MmtNotComputable { missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use myolog_domain::mmt8::{BilateralGrades, KendallGrade, MmtTotal, UnilateralGrades};

    fn grade(value: u8) -> Option<KendallGrade> {
        Some(KendallGrade::try_from(value).expect("0-10"))
    }

    fn check(input: Mmt8, expected: Result<(u16, u16), &[&str]>) {
        let actual = mmt8_total(&input)
            .map(|score| (score.total, score.scale.max_total()))
            .map_err(|error| error.missing);
        let expected = expected.map_err(|missing| {
            missing
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>()
        });
        assert_eq!(actual, expected, "{input:?}");
    }

    #[test]
    fn totals() {
        let unilateral =
            |grades: [Option<KendallGrade>; 8]| Mmt8::Unilateral(UnilateralGrades { grades });
        check(unilateral([grade(10); 8]), Ok((80, 80)));
        check(unilateral([grade(0); 8]), Ok((0, 80)));
        check(
            unilateral([
                grade(8),
                grade(9),
                grade(7),
                grade(10),
                grade(6),
                grade(5),
                grade(9),
                grade(10),
            ]),
            Ok((64, 80)),
        );
        let mut one_missing = [grade(9); 8];
        one_missing[MuscleGroup::Deltoid.index()] = None;
        check(unilateral(one_missing), Err(&["deltoid"]));
        check(
            unilateral([None; 8]),
            Err(&[
                "neck_flexors",
                "deltoid",
                "biceps",
                "wrist_extensors",
                "gluteus_maximus",
                "gluteus_medius",
                "quadriceps",
                "ankle_dorsiflexors",
            ]),
        );

        let bilateral = |neck: Option<KendallGrade>, limbs: [[Option<KendallGrade>; 2]; 7]| {
            Mmt8::Bilateral(BilateralGrades {
                neck_flexors: neck,
                limbs,
            })
        };
        check(bilateral(grade(10), [[grade(10); 2]; 7]), Ok((150, 150)));
        check(
            bilateral(grade(8), [[grade(9), grade(8)]; 7]),
            Ok((8 + 7 * 17, 150)),
        );
        let mut left_deltoid_missing = [[grade(10); 2]; 7];
        left_deltoid_missing[0][1] = None;
        check(
            bilateral(grade(10), left_deltoid_missing),
            Err(&["deltoid.left"]),
        );
        check(bilateral(None, [[grade(10); 2]; 7]), Err(&["neck_flexors"]));

        let recorded = |total, scale| Mmt8::Total(MmtTotal::new(total, scale).expect("in range"));
        check(recorded(60, MmtScale::Unilateral), Ok((60, 80)));
        check(recorded(142, MmtScale::Bilateral), Ok((142, 150)));
    }
}
