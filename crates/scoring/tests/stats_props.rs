//! Property tests of the cohort statistics: intervals contain their estimates and stay in range,
//! p-values are probabilities, and the Wilcoxon test is symmetric under negating every difference.

use myolog_scoring::stats::{
    WilcoxonMethod, WilcoxonOptions, clopper_pearson, paired_t_test, responder_proportion,
    summarize, wilcoxon_with,
};
use proptest::prelude::*;

/// Differences as a trial produces them: integer scores (ties and zeros) or continuous values.
fn differences() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        prop::collection::vec((-6i32..=6).prop_map(f64::from), 1..70),
        prop::collection::vec(-100.0f64..100.0, 1..70),
        prop::collection::vec((-300i32..=300).prop_map(|v| f64::from(v) / 10.0), 1..70),
    ]
}

fn options() -> impl Strategy<Value = WilcoxonOptions> {
    (
        prop_oneof![
            Just(WilcoxonMethod::Auto),
            Just(WilcoxonMethod::Normal),
            Just(WilcoxonMethod::Exact)
        ],
        any::<bool>(),
    )
        .prop_map(|(method, continuity_correction)| WilcoxonOptions {
            method,
            continuity_correction,
        })
}

fn in_unit(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn stats_cp_interval_contains_estimate(n in 1u64..3000, frac in 0.0f64..=1.0, level in 0.5f64..0.999) {
        let x = ((n as f64) * frac).round() as u64;
        let p = clopper_pearson(x, n, level).unwrap();
        prop_assert!(in_unit(p.ci_lower) && in_unit(p.ci_upper), "{p:?}");
        prop_assert!(p.ci_lower <= p.estimate && p.estimate <= p.ci_upper, "{p:?}");
        prop_assert!(p.ci_lower < p.ci_upper, "{p:?}");
    }

    #[test]
    fn stats_cp_mirror_symmetry(n in 1u64..500, frac in 0.0f64..=1.0) {
        // Swapping responders and non-responders mirrors the interval.
        let x = ((n as f64) * frac).round() as u64;
        let a = responder_proportion(x, n).unwrap();
        let b = responder_proportion(n - x, n).unwrap();
        prop_assert!((a.ci_lower - (1.0 - b.ci_upper)).abs() < 1e-9, "{a:?} {b:?}");
        prop_assert!((a.ci_upper - (1.0 - b.ci_lower)).abs() < 1e-9, "{a:?} {b:?}");
    }

    #[test]
    fn stats_t_test_p_in_unit_and_ci_contains_mean(d in differences()) {
        if let Ok(t) = paired_t_test(&d) {
            prop_assert!(in_unit(t.p_value), "{t:?}");
            prop_assert!(t.ci_lower <= t.mean_difference && t.mean_difference <= t.ci_upper, "{t:?}");
            // The 95% CI excludes 0 exactly when p < 0.05 (up to rounding at the edge).
            if (t.p_value - 0.05).abs() > 1e-9 {
                prop_assert_eq!(t.p_value < 0.05, t.ci_lower > 0.0 || t.ci_upper < 0.0, "{:?}", t);
            }
        }
    }

    #[test]
    fn stats_wilcoxon_p_in_unit_and_symmetric(d in differences(), options in options()) {
        let negated: Vec<f64> = d.iter().map(|v| -v).collect();
        match (wilcoxon_with(&d, options), wilcoxon_with(&negated, options)) {
            (Ok(a), Ok(b)) => {
                prop_assert!(in_unit(a.p_value), "{a:?}");
                prop_assert_eq!(a.method, b.method);
                prop_assert!((a.p_value - b.p_value).abs() <= 1e-12 * a.p_value.max(1e-300), "{a:?} {b:?}");
                prop_assert_eq!((a.w_plus, a.w_minus), (b.w_minus, b.w_plus));
                prop_assert_eq!(a.statistic, b.statistic);
                if a.method == "wilcoxon-exact" {
                    // No sign pattern beats all-one-sign: p >= 2 / 2^n.
                    prop_assert!(a.p_value >= 2.0 * 0.5f64.powi(a.n_used as i32) * (1.0 - 1e-12), "{a:?}");
                }
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "asymmetric outcome: {a:?} vs {b:?}"),
        }
    }

    #[test]
    fn stats_summary_is_ordered(d in differences()) {
        let s = summarize(&d).unwrap();
        prop_assert!(s.min <= s.q1 && s.q1 <= s.median && s.median <= s.q3 && s.q3 <= s.max, "{s:?}");
        prop_assert!(s.min - 1e-9 <= s.mean && s.mean <= s.max + 1e-9, "{s:?}");
        prop_assert!(s.sd.is_none_or(|sd| sd >= 0.0));
    }
}
