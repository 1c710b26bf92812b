//! HAQ-DI from item-level answers by the Stanford rules (Fries et al. 1980; Bruce & Fries 2003;
//! docs/clinical.md#3-haq-di): category score = highest answered item; aids/devices or help raise an answered category
//! to at least 2; HAQ-DI = mean over answered categories; not computable below the minimum number of
//! answered categories (6 by default, 7 selectable). The result is an exact fraction (k/8, k/7, k/6).

use crate::exact::Ratio;
use myolog_domain::conventions::HaqMinimumCategories;
use myolog_domain::haq::{HaqCategory, HaqItems};
use serde::Serialize;
use thiserror::Error;

/// Algorithm name and version, reported with every HAQ-DI.
pub const HAQ_DI_ALGORITHM: &str = "haq-di@1";

/// A computed HAQ-DI with its category scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaqDi {
    /// Score per category in [`HaqCategory::ALL`] order; `None` = no item answered.
    pub category_scores: [Option<u8>; 8],
    pub sum: u32,
    pub answered_categories: u32,
}

impl HaqDi {
    /// The HAQ-DI, exactly: sum of category scores / answered categories (0 to 3).
    pub fn value(&self) -> Ratio {
        // answered_categories >= 6 by construction, so the denominator is never zero.
        Ratio::new(i128::from(self.sum), i128::from(self.answered_categories))
            .unwrap_or(Ratio::ZERO)
    }
}

/// Why a HAQ-DI could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error, Serialize)]
#[error("HAQ-DI not computable: {answered} of 8 categories answered, at least {required} needed")]
pub struct HaqDiNotComputable {
    pub answered: u32,
    pub required: u32,
}

/// The score of one category: highest answered item, raised to 2 by aids/devices or help.
/// A category with no answered item is unanswered even if an aid is ticked [D]: the Stanford form
/// raises a category's score, and an unanswered category has none to raise.
pub fn category_score(items: &HaqItems, category: HaqCategory) -> Option<u8> {
    let highest = items
        .answers(category)
        .iter()
        .flatten()
        .map(|answer| answer.get())
        .max()?;
    Some(if items.aid_or_help(category) {
        highest.max(2)
    } else {
        highest
    })
}

/// Computes the HAQ-DI under the given minimum-categories convention.
pub fn haq_di(
    items: &HaqItems,
    minimum: HaqMinimumCategories,
) -> Result<HaqDi, HaqDiNotComputable> {
    let category_scores = HaqCategory::ALL.map(|category| category_score(items, category));
    let answered = category_scores.iter().flatten().count() as u32;
    let required = minimum.count() as u32;
    if answered < required {
        return Err(HaqDiNotComputable { answered, required });
    }
    let sum = category_scores
        .iter()
        .flatten()
        .map(|score| u32::from(*score))
        .sum();
    Ok(HaqDi {
        category_scores,
        sum,
        answered_categories: answered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use myolog_domain::haq::{HaqAid, HaqItemScore};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Builds items from `[[Option<u8>]]` per category (None = unanswered), aids and help.
    fn items(answers: [&[Option<u8>]; 8], aids: &[HaqAid], help: &[HaqCategory]) -> HaqItems {
        let answers = answers.map(|category| {
            category
                .iter()
                .map(|answer| answer.map(|value| HaqItemScore::try_from(value).expect("0-3")))
                .collect()
        });
        HaqItems::new(
            answers,
            aids.iter().copied().collect::<BTreeSet<_>>(),
            help.iter().copied().collect(),
        )
        .expect("valid lengths")
    }

    const NONE2: &[Option<u8>] = &[None, None];
    const NONE3: &[Option<u8>] = &[None, None, None];

    /// `expected` is `Ok((numerator, denominator))` of the HAQ-DI or `Err(answered)`.
    fn check(input: HaqItems, minimum: HaqMinimumCategories, expected: Result<(i128, i128), u32>) {
        let actual = haq_di(&input, minimum)
            .map(|result| result.value())
            .map_err(|error| error.answered);
        let expected = expected.map(|(n, d)| Ratio::new(n, d).expect("ratio"));
        assert_eq!(actual, expected, "{input:?}");
    }

    #[test]
    fn stanford_rules() {
        use HaqMinimumCategories::{Seven, Six};
        let all_zero: [&[Option<u8>]; 8] = [
            &[Some(0); 2],
            &[Some(0); 2],
            &[Some(0); 3],
            &[Some(0); 2],
            &[Some(0); 3],
            &[Some(0); 2],
            &[Some(0); 3],
            &[Some(0); 3],
        ];
        // All zero.
        check(items(all_zero, &[], &[]), Six, Ok((0, 1)));
        // A worked example: categories 2,3,2,1,1,3,3,1 = 16/8 = 2; cane -> walking 2, built-up chair
        // (arising already 3), help with dressing (already 2): 17/8.
        let example: [&[Option<u8>]; 8] = [
            &[Some(2), Some(1)],
            &[Some(0), Some(3)],
            &[Some(1), Some(0), Some(2)],
            &[Some(0), Some(1)],
            &[Some(0), Some(1), Some(1)],
            &[Some(3), Some(3)],
            &[Some(1), Some(1), Some(3)],
            &[Some(0), Some(0), Some(1)],
        ];
        check(items(example, &[], &[]), Six, Ok((16, 8)));
        check(
            items(
                example,
                &[HaqAid::Cane, HaqAid::BuiltUpChair],
                &[HaqCategory::Dressing],
            ),
            Six,
            Ok((17, 8)),
        );
        // An aid raises 0 and 1 to 2 but never lowers a 3.
        check(items(all_zero, &[HaqAid::JarOpener], &[]), Six, Ok((2, 8)));
        check(
            items(
                all_zero,
                &[HaqAid::BathtubSeat, HaqAid::RaisedToiletSeat],
                &[],
            ),
            Six,
            Ok((2, 8)),
        );
        check(
            items(
                all_zero,
                &[HaqAid::Walker, HaqAid::Wheelchair, HaqAid::Crutches],
                &[],
            ),
            Six,
            Ok((2, 8)),
        );
        check(
            items(
                all_zero,
                &[
                    HaqAid::DressingDevices,
                    HaqAid::BuiltUpUtensils,
                    HaqAid::LongHandledReach,
                    HaqAid::LongHandledBathroom,
                ],
                &[],
            ),
            Six,
            Ok((8, 8)),
        );
        check(
            items(example, &[HaqAid::LongHandledReach], &[]),
            Six,
            Ok((16, 8)),
        );
        // Help from another person, per category.
        check(
            items(all_zero, &[], &[HaqCategory::Activities, HaqCategory::Grip]),
            Six,
            Ok((4, 8)),
        );
        // "Other" aid names no category and raises none.
        check(items(all_zero, &[HaqAid::Other], &[]), Six, Ok((0, 1)));
        // Highest answered item counts; unanswered items are ignored.
        let partial: [&[Option<u8>]; 8] = [
            &[None, Some(1)],
            &[Some(2), None],
            &[None, None, Some(3)],
            &[Some(0), Some(0)],
            &[Some(1), None, None],
            &[Some(0), Some(0)],
            &[Some(0), Some(0), Some(0)],
            &[Some(0), Some(0), Some(0)],
        ];
        check(items(partial, &[], &[]), Six, Ok((7, 8)));
        // Seven answered categories: mean over 7.
        let seven: [&[Option<u8>]; 8] = [
            &[Some(1), Some(0)],
            &[Some(1), Some(0)],
            &[Some(1), Some(0), Some(0)],
            &[Some(1), Some(0)],
            &[Some(1), Some(0), Some(0)],
            &[Some(1), Some(0)],
            &[Some(2), Some(0), Some(0)],
            NONE3,
        ];
        check(items(seven, &[], &[]), Six, Ok((8, 7)));
        check(items(seven, &[], &[]), Seven, Ok((8, 7)));
        // An aid for an unanswered category does not make it answered.
        check(
            items(seven, &[], &[HaqCategory::Activities]),
            Six,
            Ok((8, 7)),
        );
        // Six answered categories: computable with 6, not with 7.
        let six: [&[Option<u8>]; 8] = [
            &[Some(3), Some(3)],
            &[Some(3), Some(0)],
            &[Some(3), Some(0), Some(0)],
            &[Some(3), Some(0)],
            &[Some(3), Some(0), Some(0)],
            &[Some(3), Some(0)],
            NONE3,
            NONE3,
        ];
        check(items(six, &[], &[]), Six, Ok((3, 1)));
        check(items(six, &[], &[]), Seven, Err(6));
        // Five answered categories: never computable.
        let five: [&[Option<u8>]; 8] = [
            &[Some(1), Some(1)],
            &[Some(1), Some(1)],
            &[Some(1), None, None],
            &[Some(1), Some(1)],
            &[Some(1), Some(1), Some(1)],
            NONE2,
            NONE3,
            NONE3,
        ];
        check(items(five, &[], &[]), Six, Err(5));
        // Nothing answered.
        check(
            items(
                [NONE2, NONE2, NONE3, NONE2, NONE3, NONE2, NONE3, NONE3],
                &[HaqAid::Cane],
                &[],
            ),
            Six,
            Err(0),
        );
    }

    proptest! {
        #[test]
        fn haq_di_is_within_0_and_3(
            answers in proptest::collection::vec(proptest::option::of(0u8..=3), 20),
            aids in proptest::collection::btree_set(proptest::sample::select(HaqAid::ALL.to_vec()), 0..6),
            help in proptest::collection::btree_set(proptest::sample::select(HaqCategory::ALL.to_vec()), 0..4),
            seven in any::<bool>(),
        ) {
            let mut cursor = answers.iter();
            let per_category = HaqCategory::ALL.map(|category| {
                (0..category.item_count())
                    .map(|_| cursor.next().copied().flatten().map(|value| HaqItemScore::try_from(value).expect("0-3")))
                    .collect::<Vec<_>>()
            });
            let input = HaqItems::new(per_category, aids, help).expect("lengths");
            let minimum = if seven { HaqMinimumCategories::Seven } else { HaqMinimumCategories::Six };
            if let Ok(result) = haq_di(&input, minimum) {
                prop_assert!(result.value() >= Ratio::ZERO);
                prop_assert!(result.value() <= Ratio::integer(3));
                prop_assert!(result.answered_categories as usize >= minimum.count());
            }
        }
    }
}
