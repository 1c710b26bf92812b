//! Cohort statistics against published reference values, closed forms and the sanity note of docs/clinical.md#9-cohort-statistics,
//! plus every "not evaluable" and invalid-input case. One `check_*` helper per table.
//!
//! Sources: R's `binom.test`, `t.test(extra ~ group, data = sleep, paired = TRUE)` and
//! `wilcox.test(..., paired = TRUE)` documented outputs for Student's (1908) sleep data; the
//! Clopper-Pearson closed forms for x = 0 and x = n; Hyndman & Fan (1996) type-7 quantiles as printed
//! by R's `quantile(1:10)`; docs/clinical.md#9-cohort-statistics (an exact two-sided Wilcoxon with n = 10 cannot go below
//! 2/1024).

use myolog_scoring::stats::{
    self, CONFIDENCE_LEVEL, Outcome, StatsError, WilcoxonMethod, WilcoxonOptions, clopper_pearson,
    paired_comparison, paired_differences, paired_t_test, responder_proportion, summarize,
    wilcoxon, wilcoxon_with,
};

/// Published values are printed to 7 significant digits; compare to half a unit in the last one.
fn near(what: &str, ours: f64, published: f64, tol: f64) {
    assert!(
        (ours - published).abs() <= tol,
        "{what}: ours {ours}, published {published}, tol {tol}"
    );
}

fn check_cp(x: u64, n: u64, lower: f64, upper: f64, tol: f64) {
    let p = responder_proportion(x, n).unwrap_or_else(|e| panic!("{x}/{n}: {e}"));
    assert_eq!(p.method, "clopper-pearson");
    assert_eq!(p.confidence_level, CONFIDENCE_LEVEL);
    near(&format!("{x}/{n} lower"), p.ci_lower, lower, tol);
    near(&format!("{x}/{n} upper"), p.ci_upper, upper, tol);
}

#[test]
fn stats_clopper_pearson_published_values() {
    // (x, n, lower, upper, tolerance)
    let table: &[(u64, u64, f64, f64, f64)] = &[
        (10, 10, 0.6915029, 1.0, 5e-8),
        (0, 10, 0.0, 0.3084971, 5e-8),
        (5, 10, 0.1870860, 0.8129140, 5e-8),
        (3, 10, 0.06673951, 0.65245285, 5e-9),
        (1, 2, 0.01257912, 0.98742088, 5e-9),
        (0, 1, 0.0, 0.975, 1e-15),
        (1, 1, 0.025, 1.0, 1e-15),
        // Closed forms: x = n gives lower = (alpha/2)^(1/n); x = 0 mirrors it.
        (62, 62, 0.025f64.powf(1.0 / 62.0), 1.0, 1e-15),
        (0, 62, 0.0, 1.0 - 0.025f64.powf(1.0 / 62.0), 1e-15),
        // x = 1: lower solves 1 - (1 - p)^n = alpha/2; upper solves the binomial tail
        // (1 - p)^30 + 30 p (1 - p)^29 = alpha/2, here by 200 bisection steps on that polynomial.
        (
            1,
            30,
            1.0 - 0.975f64.powf(1.0 / 30.0),
            0.17216945563341263,
            1e-12,
        ),
    ];
    for &(x, n, lower, upper, tol) in table {
        check_cp(x, n, lower, upper, tol);
    }
}

#[test]
fn stats_clopper_pearson_other_levels() {
    // 90% interval for 10/10: lower = 0.05^(1/10).
    let p = clopper_pearson(10, 10, 0.90).unwrap();
    near("10/10 90%", p.ci_lower, 0.05f64.powf(0.1), 1e-15);
    let p99 = clopper_pearson(4, 20, 0.99).unwrap();
    let p95 = clopper_pearson(4, 20, 0.95).unwrap();
    assert!(p99.ci_lower < p95.ci_lower && p99.ci_upper > p95.ci_upper);
}

/// Student's sleep data as the published differences (group 2 - group 1).
const SLEEP: [f64; 10] = [1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4];

#[test]
fn stats_paired_t_published_sleep() {
    // R: t = -4.0621, df = 9, p-value = 0.002833, 95% CI -2.4598858 -0.7001142, mean -1.58
    // (R's sign is group 1 - group 2; ours is after - before).
    let t = paired_t_test(&SLEEP).unwrap();
    assert_eq!(t.method, "paired-t");
    assert_eq!(t.n, 10);
    assert_eq!(t.df, 9.0);
    near("t", t.t, 4.0621, 5e-5);
    near("p", t.p_value, 0.002833, 5e-7);
    near("mean", t.mean_difference, 1.58, 1e-12);
    near("ci low", t.ci_lower, 0.7001142, 5e-8);
    near("ci high", t.ci_upper, 2.4598858, 5e-8);
}

#[test]
fn stats_paired_t_sign_follows_after_minus_before() {
    let before = [10.0, 12.0, 9.0, 14.0];
    let after = [8.0, 9.5, 9.0, 10.0];
    let t = paired_t_test(&paired_differences(&before, &after).unwrap()).unwrap();
    assert!(t.t < 0.0 && t.mean_difference == -2.125 && t.ci_lower < -2.125);
}

/// One row of the Wilcoxon table: name, differences, options, method, statistic, p.
type WilcoxonRow = (
    &'static str,
    Vec<f64>,
    WilcoxonOptions,
    &'static str,
    f64,
    f64,
);

fn check_wilcoxon(what: &str, d: &[f64], options: WilcoxonOptions, method: &str, w: f64, p: f64) {
    let r = wilcoxon_with(d, options).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(r.method, method, "{what}");
    assert_eq!(r.statistic, w, "{what} statistic");
    near(&format!("{what} p"), r.p_value, p, 5e-7f64.max(p * 1e-12));
}

#[test]
fn stats_wilcoxon_published_and_exact_values() {
    let auto = WilcoxonOptions::default();
    let corrected = WilcoxonOptions {
        method: WilcoxonMethod::Normal,
        continuity_correction: true,
    };
    let ten: Vec<f64> = (1..=10).map(|i| -f64::from(i) * 1.5).collect();
    // (name, differences, options, method, statistic, p)
    let table: Vec<WilcoxonRow> = vec![
        // docs/clinical.md#9-cohort-statistics: n = 10 all one sign is the smallest exact two-sided p, 2/1024.
        (
            "n10 all fall",
            ten.clone(),
            auto,
            "wilcoxon-exact",
            0.0,
            2.0 / 1024.0,
        ),
        (
            "n5 all rise",
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
            auto,
            "wilcoxon-exact",
            0.0,
            2.0 / 32.0,
        ),
        // W+ = 1 with n = 5: P(W+ <= 1) = 2/32, so p = 4/32.
        (
            "n5 one small fall",
            vec![-1.0, 2.0, 3.0, 4.0, 5.0],
            auto,
            "wilcoxon-exact",
            1.0,
            4.0 / 32.0,
        ),
        // n = 1: p = 1.
        ("n1", vec![-3.0], auto, "wilcoxon-exact", 0.0, 1.0),
        // Zeros are dropped before the exact distribution: same as n = 5.
        (
            "zeros dropped",
            vec![0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 5.0],
            auto,
            "wilcoxon-exact",
            0.0,
            2.0 / 32.0,
        ),
        // R: wilcox.test(extra ~ group, data = sleep, paired = TRUE): V = 0, p-value = 0.009091
        // (normal approximation, ties and a zero, continuity correction R's default).
        (
            "sleep R",
            SLEEP.to_vec(),
            corrected,
            "wilcoxon-normal",
            0.0,
            0.009091,
        ),
    ];
    for (name, d, options, method, w, p) in table {
        check_wilcoxon(name, &d, options, method, w, p);
    }
}

#[test]
fn stats_wilcoxon_n10_exact_never_below_two_in_1024() {
    // Every one of the 2^10 sign patterns of ranks 1..10: the STIR P = 0.0005 with n = 10 cannot be
    // an exact Wilcoxon p (docs/clinical.md#9-cohort-statistics).
    for pattern in 0u32..1024 {
        let d: Vec<f64> = (0..10)
            .map(|i| {
                let magnitude = f64::from(i + 1);
                if pattern >> i & 1 == 1 {
                    magnitude
                } else {
                    -magnitude
                }
            })
            .collect();
        let r = wilcoxon(&d).unwrap();
        assert_eq!(r.method, "wilcoxon-exact");
        assert!(
            r.p_value >= 2.0 / 1024.0,
            "pattern {pattern:010b}: {}",
            r.p_value
        );
        let one_sign = pattern == 0 || pattern == 1023;
        assert_eq!(
            r.p_value == 2.0 / 1024.0,
            one_sign,
            "pattern {pattern:010b}"
        );
    }
}

#[test]
fn stats_wilcoxon_reports_its_conventions() {
    let r = wilcoxon(&[1.0, -2.0, 3.0, 0.0, 3.0]).unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["method"], "wilcoxon-normal");
    assert_eq!(json["zero_method"], "wilcox");
    assert_eq!(json["alternative"], "two-sided");
    assert_eq!(json["continuity_correction"], false);
    assert_eq!((r.n, r.n_zero, r.n_used, r.ties), (5, 1, 4, true));
    // Ranks of |d| = 1, 2, 3, 3 are 1, 2, 3.5, 3.5.
    assert_eq!((r.w_plus, r.w_minus, r.statistic), (8.0, 2.0, 2.0));
    assert!(r.z.unwrap() > 0.0);
}

fn check_summary(values: &[f64], n: usize, mean: f64, sd: Option<f64>, q: [f64; 3], text: &str) {
    let s = summarize(values).expect("summarizable");
    assert_eq!(s.n, n);
    near("mean", s.mean, mean, 1e-12);
    match (s.sd, sd) {
        (Some(a), Some(b)) => near("sd", a, b, 5e-7),
        (a, b) => assert_eq!(a, b),
    }
    assert_eq!([s.q1, s.median, s.q3], q, "{values:?}");
    assert_eq!(s.display(1), text);
    assert_eq!(s.quantile_definition, "hyndman-fan-type-7");
}

#[test]
fn stats_summary_reference_values() {
    let one_to_ten: Vec<f64> = (1..=10).map(f64::from).collect();
    // R: quantile(1:10) -> 3.25 5.50 7.75; sd(1:10) = 3.02765.
    check_summary(
        &one_to_ten,
        10,
        5.5,
        Some(3.0276504),
        [3.25, 5.5, 7.75],
        "5.5 +/- 3.0, 5.5 [3.2, 7.8]",
    );
    check_summary(
        &[3.0, 1.0, 2.0],
        3,
        2.0,
        Some(1.0),
        [1.5, 2.0, 2.5],
        "2.0 +/- 1.0, 2.0 [1.5, 2.5]",
    );
    check_summary(
        &[5.0, 5.0],
        2,
        5.0,
        Some(0.0),
        [5.0, 5.0, 5.0],
        "5.0 +/- 0.0, 5.0 [5.0, 5.0]",
    );
    check_summary(
        &[-2.5],
        1,
        -2.5,
        None,
        [-2.5, -2.5, -2.5],
        "-2.5 +/- NA, -2.5 [-2.5, -2.5]",
    );
}

fn check_error<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, StatsError>,
    code: &str,
    text: &str,
) {
    match result {
        Err(e) => {
            assert_eq!(e.code(), code, "{what}: {e}");
            assert!(
                e.to_string().contains(text),
                "{what}: message {e:?} lacks {text:?}"
            );
            assert_eq!(
                serde_json::to_value(&e).expect("serialisable")["reason"],
                code,
                "{what}"
            );
        }
        Ok(v) => panic!("{what}: expected {code}, got {v:?}"),
    }
}

#[test]
fn stats_not_evaluable_and_invalid_inputs() {
    check_error(
        "0/0",
        responder_proportion(0, 0),
        "no_participants",
        "not evaluable",
    );
    check_error(
        "5/4",
        responder_proportion(5, 4),
        "responders_exceed_n",
        "5 responders out of 4",
    );
    check_error(
        "level 1",
        clopper_pearson(1, 10, 1.0),
        "invalid_level",
        "confidence level",
    );
    check_error(
        "level NaN",
        clopper_pearson(1, 10, f64::NAN),
        "invalid_level",
        "confidence level",
    );
    check_error("summary empty", summarize(&[]), "empty", "no observations");
    check_error(
        "summary NaN",
        summarize(&[1.0, f64::NAN]),
        "non_finite",
        "index 1",
    );
    check_error(
        "summary inf",
        summarize(&[f64::INFINITY]),
        "non_finite",
        "index 0",
    );
    check_error("t empty", paired_t_test(&[]), "empty", "no observations");
    check_error("t n=1", paired_t_test(&[2.0]), "too_few", "at least 2");
    check_error(
        "t constant",
        paired_t_test(&[2.0, 2.0, 2.0]),
        "zero_variance",
        "not evaluable: all differences equal",
    );
    check_error(
        "t zeros",
        paired_t_test(&[0.0, 0.0]),
        "zero_variance",
        "all differences equal (0)",
    );
    check_error(
        "t NaN",
        paired_t_test(&[1.0, f64::NAN, 3.0]),
        "non_finite",
        "index 1",
    );
    check_error(
        "t level",
        stats::paired_t_test_with_level(&[1.0, 2.0], 0.0),
        "invalid_level",
        "0",
    );
    check_error("w empty", wilcoxon(&[]), "empty", "no observations");
    check_error(
        "w all zero",
        wilcoxon(&[0.0, 0.0, -0.0]),
        "all_zero",
        "all 3 differences are zero",
    );
    check_error(
        "w inf",
        wilcoxon(&[1.0, f64::NEG_INFINITY]),
        "non_finite",
        "index 1",
    );
    let exact = WilcoxonOptions {
        method: WilcoxonMethod::Exact,
        continuity_correction: false,
    };
    check_error(
        "w exact ties",
        wilcoxon_with(&[1.0, -1.0, 2.0], exact),
        "exact_not_applicable",
        "tied",
    );
    let big: Vec<f64> = (1..=201).map(f64::from).collect();
    check_error(
        "w exact n=201",
        wilcoxon_with(&big, exact),
        "exact_not_applicable",
        "limit of 200",
    );
    check_error(
        "pairs",
        paired_differences(&[1.0, 2.0], &[1.0]),
        "length_mismatch",
        "2 values before but 1 after",
    );
    check_error(
        "pairs NaN",
        paired_differences(&[1.0], &[f64::NAN]),
        "non_finite",
        "index 0",
    );
}

#[test]
fn stats_forced_exact_beyond_auto_limit() {
    // 60 untied differences: Auto uses the normal approximation, Exact may still be asked for.
    let d: Vec<f64> = (1..=60)
        .map(|i| {
            if i % 3 == 0 {
                -f64::from(i)
            } else {
                f64::from(i)
            }
        })
        .collect();
    let auto = wilcoxon(&d).unwrap();
    let exact = wilcoxon_with(
        &d,
        WilcoxonOptions {
            method: WilcoxonMethod::Exact,
            continuity_correction: false,
        },
    )
    .unwrap();
    assert_eq!(
        (auto.method, exact.method),
        ("wilcoxon-normal", "wilcoxon-exact")
    );
    // With n = 60 the two agree to about 1e-3 absolute.
    assert!(
        (auto.p_value - exact.p_value).abs() < 2e-3,
        "{} vs {}",
        auto.p_value,
        exact.p_value
    );
}

#[test]
fn stats_table_cells_and_json_shapes() {
    let cells = [
        (
            responder_proportion(3, 10).unwrap(),
            1,
            "3/10 (30.0%; 95% CI 6.7% to 65.2%)",
        ),
        (
            clopper_pearson(10, 10, 0.9).unwrap(),
            0,
            "10/10 (100%; 90% CI 74% to 100%)",
        ),
        (
            clopper_pearson(0, 4, 0.975).unwrap(),
            1,
            "0/4 (0.0%; 97.5% CI 0.0% to 66.6%)",
        ),
    ];
    for (p, decimals, text) in cells {
        assert_eq!(p.display(decimals), text);
    }

    let c = paired_comparison(
        &[28.0, 45.0, 12.0, 30.0],
        &[9.5, 10.0, 3.0, 9.0],
        WilcoxonOptions::default(),
    )
    .unwrap();
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["n_pairs"], 4);
    assert_eq!(json["t_test"]["status"], "evaluable");
    assert_eq!(json["t_test"]["method"], "paired-t");
    assert_eq!(json["wilcoxon"]["method"], "wilcoxon-exact");
    assert_eq!(json["wilcoxon"]["p_value"], 0.125);
    assert_eq!(json["change"]["mean"], -20.875);

    let not: Outcome<stats::PairedTTest> = paired_t_test(&[1.0]).into();
    let json = serde_json::to_value(&not).unwrap();
    assert_eq!(json["status"], "not_evaluable");
    assert_eq!(json["reason"], "too_few");
    assert_eq!(
        json["message"],
        "not evaluable: paired t-test needs at least 2 observations, got 1"
    );
    assert!(paired_comparison(&[1.0], &[], WilcoxonOptions::default()).is_err());
}
