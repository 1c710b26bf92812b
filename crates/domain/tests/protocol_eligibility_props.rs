//! Eligibility's three-valued logic is monotone: a verdict the known values already settle ("met",
//! "not met", "not applicable") never changes when a missing value is filled in later. Otherwise a
//! subject reported ineligible could become eligible through more data, which screening must not do.

use myolog_domain::protocol::{
    BaselineMeasures, EligibilityVerdict, EnzymeResult, GlobalValue, Mmt8Total, Protocol, Verdict,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn protocols() -> Vec<Protocol> {
    [
        ("stir", include_str!("../../../protocols/stir.toml")),
        ("myojak", include_str!("../../../protocols/myojak.toml")),
        ("bird", include_str!("../../../protocols/bird.toml")),
    ]
    .into_iter()
    .map(|(name, text)| Protocol::from_toml(name, text).unwrap_or_else(|errors| panic!("{errors}")))
    .collect()
}

/// Tenths from 0 to `max_tenths / 10`, exactly.
fn tenths(max_tenths: i64) -> BoxedStrategy<Decimal> {
    (0..=max_tenths)
        .prop_map(|value| Decimal::new(value, 1))
        .boxed()
}

fn measures() -> impl Strategy<Value = [Option<Decimal>; 10]> {
    let slot = |values: BoxedStrategy<Decimal>| prop::option::of(values).boxed();
    // Age, CDASI, MMT-8 of 150, three globals in cm, HAQ-DI in eighths, prednisone, weeks stable, CK.
    [
        slot((10i64..=90).prop_map(Decimal::from).boxed()),
        slot((0i64..=100).prop_map(Decimal::from).boxed()),
        slot((130i64..=150).prop_map(Decimal::from).boxed()),
        slot(tenths(100)),
        slot(tenths(100)),
        slot(tenths(100)),
        slot(
            (0i64..=24)
                .prop_map(|eighths| Decimal::new(eighths * 125, 3))
                .boxed(),
        ),
        slot((0i64..=40).prop_map(Decimal::from).boxed()),
        slot((0i64..=12).prop_map(Decimal::from).boxed()),
        slot((0i64..=800).prop_map(Decimal::from).boxed()),
    ]
}

fn baseline(values: &[Option<Decimal>; 10], muscle_active: Option<bool>) -> BaselineMeasures {
    let [
        age,
        cdasi,
        mmt8,
        physician,
        patient,
        extramuscular,
        haq,
        prednisone,
        weeks,
        ck,
    ] = *values;
    BaselineMeasures {
        age_years: age,
        cdasi_activity: cdasi,
        mmt8: mmt8.map(|total| Mmt8Total { total, max: 150 }),
        physician_global: physician.map(GlobalValue::vas_cm),
        patient_global: patient.map(GlobalValue::vas_cm),
        extramuscular_global: extramuscular.map(GlobalValue::vas_cm),
        haq_di: haq,
        prednisone_mg_per_day: prednisone,
        prednisone_stable_weeks: weeks,
        enzymes: ck
            .map(|value| EnzymeResult {
                name: "ck".into(),
                value,
                upper_limit_of_normal: Decimal::from(200),
            })
            .into_iter()
            .collect(),
        muscle_active,
        ..BaselineMeasures::default()
    }
}

proptest! {
    #[test]
    fn settled_verdicts_survive_filling_in_missing_values(
        partial in measures(),
        filler in measures(),
        muscle_active in prop::option::of(any::<bool>()),
        muscle_filler in any::<bool>(),
    ) {
        let mut complete = partial;
        for (slot, fill) in complete.iter_mut().zip(filler) {
            if slot.is_none() {
                *slot = fill;
            }
        }
        let before = baseline(&partial, muscle_active);
        let after = baseline(&complete, muscle_active.or(Some(muscle_filler)));
        for protocol in protocols() {
            let early = protocol.check_eligibility(&before);
            let late = protocol.check_eligibility(&after);
            for (first, second) in early.criteria.iter().zip(&late.criteria) {
                if first.verdict != Verdict::NotEvaluable {
                    prop_assert_eq!(first.verdict, second.verdict, "{} {}: {} then {}", protocol.study().id, first.id, first.result, second.result);
                }
            }
            if early.verdict != EligibilityVerdict::NotEvaluable {
                prop_assert_eq!(early.verdict, late.verdict);
            }
        }
    }
}
