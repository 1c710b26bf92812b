//! Cross-checks the cohort statistics against scipy/numpy run on the same data (docs/clinical.md#9-cohort-statistics).
//!
//! The test builds the datasets here, sends them as JSON to a small inline `python3` script that runs
//! `scipy.stats.binomtest(...).proportion_ci(method='exact')`, `ttest_rel`, `wilcoxon` (exact and
//! asymptotic, with and without continuity correction) and numpy's mean / std(ddof=1) / median /
//! percentile, and compares its JSON answer with ours. Data flows Rust -> Python only, so both sides
//! see bit-identical inputs (ryu prints the shortest round-tripping decimal, Python parses it exactly)
//! and compute bit-identical paired differences, hence identical tie structure.
//!
//! Tolerance: 1e-9 relative, with an absolute floor of 1e-12 for values that should be zero (a mean
//! difference of 1e-17 against 0.0). The largest discrepancy seen is ~1e-10 relative, in normal tail
//! probabilities (statrs' `erfc` against scipy's), so 1e-9 leaves a margin of 10. Python 3 with scipy and numpy is required: install them with
//! `python3 -m pip install -r requirements-test.txt` (the README's test command does). If either is
//! missing this test fails with that instruction; it never skips silently.

use std::io::Write;
use std::process::{Command, Stdio};

use myolog_scoring::stats::{
    self, StatsError, WilcoxonMethod, WilcoxonOptions, paired_differences, responder_proportion,
};
use serde_json::{Value, json};

const REL: f64 = 1e-9;
const ABS: f64 = 1e-12;

const SCRIPT: &str = r#"
import json, math, sys, warnings
warnings.simplefilter("ignore")
try:
    import numpy as np
    import scipy
    from scipy import stats
except ImportError as e:
    sys.stderr.write(f"MISSING: {e}\n")
    sys.exit(3)

def num(x):
    x = float(x)
    return None if math.isnan(x) else x

def guarded(f):
    try:
        return f()
    except Exception as e:
        return {"error": repr(e)}

def describe(x):
    x = np.asarray(x, dtype=float)
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return {"n": len(x), "mean": num(np.mean(x)), "sd": num(np.std(x, ddof=1)) if len(x) > 1 else None,
            "median": num(np.median(x)), "q1": num(q1), "q3": num(q3), "median_pct": num(med)}

def ttest(after, before):
    d = np.asarray(after) - np.asarray(before)
    if len(d) < 2 or np.all(d == d[0]):
        return None
    r = stats.ttest_rel(after, before)
    ci = r.confidence_interval(0.95)
    return {"t": num(r.statistic), "p": num(r.pvalue), "df": num(r.df), "mean": num(np.mean(d)),
            "low": num(ci.low), "high": num(ci.high)}

def wilcoxon(after, before, method, correction):
    d = np.asarray(after) - np.asarray(before)
    if np.all(d == 0):
        return None
    r = stats.wilcoxon(after, before, zero_method="wilcox", correction=correction, method=method)
    out = {"p": num(r.pvalue), "statistic": num(r.statistic)}
    if method == "asymptotic":
        out["z"] = num(r.zstatistic)
    return out

def has_ties(after, before):
    d = np.asarray(after) - np.asarray(before)
    a = np.abs(d[d != 0])
    return bool(len(np.unique(a)) < len(a))

data = json.load(sys.stdin)
out = {"versions": {"scipy": scipy.__version__, "numpy": np.__version__}, "proportions": [], "paired": []}
for x, n in data["proportions"]:
    ci = stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="exact")
    out["proportions"].append({"low": num(ci.low), "high": num(ci.high)})
for case in data["paired"]:
    a, b = case["after"], case["before"]
    d = (np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).tolist()
    ties = has_ties(a, b)
    out["paired"].append({
        "before": describe(b), "after": describe(a), "diff": describe(d),
        "ttest": ttest(a, b), "ties": ties,
        # EXACT_MAX_N = 200 on our side; scipy's exact distribution is slow far beyond it.
        "exact": None if ties or np.count_nonzero(d) > 200 else wilcoxon(a, b, "exact", False),
        "normal": wilcoxon(a, b, "asymptotic", False),
        "normal_cc": wilcoxon(a, b, "asymptotic", True),
    })
print(json.dumps(out))
"#;

/// One paired dataset and what we expect of it beyond scipy's numbers.
struct Paired {
    name: &'static str,
    before: Vec<f64>,
    after: Vec<f64>,
    /// The method `WilcoxonMethod::Auto` must choose (`None`: not evaluable, all differences zero).
    auto_method: Option<&'static str>,
}

/// Deterministic pseudo-random numbers in [0, 1) (a 64-bit LCG, Knuth MMIX constants), so the datasets
/// are the same on every run without a dependency.
fn lcg(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Continuous data: differences tie with probability ~0.
fn continuous(name: &'static str, n: usize, seed: u64, auto: &'static str) -> Paired {
    let mut u = lcg(seed);
    let before: Vec<f64> = (0..n).map(|_| 5.0 + 40.0 * u()).collect();
    let after = before.iter().map(|b| 0.6 * b + 12.0 * u() - 4.0).collect();
    Paired {
        name,
        before,
        after,
        auto_method: Some(auto),
    }
}

/// Integer scores (CDASI-like): many ties and zero changes.
fn integer(name: &'static str, n: usize, seed: u64) -> Paired {
    let mut u = lcg(seed);
    let before: Vec<f64> = (0..n).map(|_| (5.0 + 40.0 * u()).floor()).collect();
    let after = before
        .iter()
        .map(|b| (b - (16.0 * u()).floor() + 4.0).max(0.0))
        .collect();
    Paired {
        name,
        before,
        after,
        auto_method: Some("wilcoxon-normal"),
    }
}

fn datasets() -> Vec<Paired> {
    let fixed = |name, before: &[f64], after: &[f64], auto| Paired {
        name,
        before: before.to_vec(),
        after: after.to_vec(),
        auto_method: auto,
    };
    vec![
        fixed("n1", &[12.0], &[7.5], Some("wilcoxon-exact")),
        fixed("n2", &[12.0, 30.0], &[7.5, 31.0], Some("wilcoxon-exact")),
        fixed(
            "n3_one_zero",
            &[12.0, 30.0, 8.0],
            &[7.5, 31.0, 8.0],
            Some("wilcoxon-exact"),
        ),
        fixed(
            "n3_constant_change",
            &[1.0, 2.0, 3.0],
            &[3.0, 4.0, 5.0],
            Some("wilcoxon-normal"),
        ),
        fixed(
            "n4_all_zero",
            &[1.0, 2.0, 3.0, 4.0],
            &[1.0, 2.0, 3.0, 4.0],
            None,
        ),
        // STIR-like CDASI activity (all ten fall): the exact p is the floor 2/1024.
        fixed(
            "n10_all_improve",
            &[28.0, 45.0, 12.0, 30.0, 18.0, 52.0, 25.0, 33.0, 15.0, 22.0],
            &[9.5, 10.0, 3.0, 9.0, 7.0, 25.0, 5.0, 14.0, 7.0, 8.0],
            Some("wilcoxon-exact"),
        ),
        // Student's (1908) sleep data (Cushny & Peebles): group 1 before, group 2 after; one zero
        // change and a tie (1.3, 1.3), so the normal approximation.
        fixed(
            "sleep",
            &[0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0],
            &[1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4],
            Some("wilcoxon-normal"),
        ),
        fixed(
            "n10_integer_ties",
            &[20.0, 14.0, 31.0, 9.0, 25.0, 17.0, 22.0, 40.0, 11.0, 28.0],
            &[12.0, 16.0, 23.0, 9.0, 21.0, 13.0, 24.0, 30.0, 11.0, 20.0],
            Some("wilcoxon-normal"),
        ),
        fixed(
            "n12_zeros_no_ties",
            &[
                10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0,
            ],
            &[
                9.0, 13.0, 12.0, 9.0, 19.0, 15.0, 10.0, 24.0, 26.0, 10.0, 20.0, 31.0,
            ],
            Some("wilcoxon-exact"),
        ),
        continuous("n10_continuous", 10, 1, "wilcoxon-exact"),
        continuous("n25_continuous", 25, 2, "wilcoxon-exact"),
        continuous("n30_continuous", 30, 3, "wilcoxon-exact"),
        integer("n30_integer", 30, 4),
        continuous("n50_continuous", 50, 5, "wilcoxon-exact"),
        continuous("n51_continuous", 51, 6, "wilcoxon-normal"),
        continuous("n62_continuous", 62, 7, "wilcoxon-normal"),
        integer("n62_integer", 62, 8),
        // Large enough that statrs' own t quantile would be off by ~1e-6.
        continuous("n120000_continuous", 120_000, 9, "wilcoxon-normal"),
    ]
}

const PROPORTIONS: &[(u64, u64)] = &[
    (0, 1),
    (1, 1),
    (1, 2),
    (0, 10),
    (1, 10),
    (3, 10),
    (5, 10),
    (9, 10),
    (10, 10),
    (7, 30),
    (0, 62),
    (1, 62),
    (31, 62),
    (61, 62),
    (62, 62),
    (250, 1000),
    (999, 1000),
    (3, 1_000_000),
    (500_000, 1_000_000),
    (50_000, 100_000),
    (2_000, 1_000_000),
    (9_999_990, 10_000_000),
    (5_000_000, 10_000_000),
];

fn run_scipy(input: &Value) -> Value {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 ({e}): the scipy cross-check needs Python 3 with scipy and numpy; \
                 run `python3 -m pip install -r requirements-test.txt`"
            )
        });
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(input.to_string().as_bytes())
        .expect("write datasets to python3");
    let out = child.wait_with_output().expect("wait for python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python3 cross-check script failed ({}): {stderr}\n\
         The scipy cross-check needs scipy and numpy: run `python3 -m pip install -r requirements-test.txt`",
        out.status
    );
    serde_json::from_slice(&out.stdout).expect("python3 printed JSON")
}

fn close(what: &str, ours: f64, theirs: f64) {
    let tol = ABS + REL * ours.abs().max(theirs.abs());
    assert!(
        (ours - theirs).abs() <= tol,
        "{what}: ours {ours:e}, scipy {theirs:e} (diff {:e} > tol {tol:e})",
        (ours - theirs).abs()
    );
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("scipy output lacks number {key}: {v}"))
}

fn check_proportion(x: u64, n: u64, expected: &Value) {
    let p = responder_proportion(x, n).unwrap_or_else(|e| panic!("{x}/{n}: {e}"));
    assert_eq!(p.estimate, x as f64 / n as f64);
    close(&format!("{x}/{n} lower"), p.ci_lower, f(expected, "low"));
    close(&format!("{x}/{n} upper"), p.ci_upper, f(expected, "high"));
}

fn check_summary(what: &str, values: &[f64], expected: &Value) {
    let s = stats::summarize(values).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(s.n as u64, expected["n"].as_u64().expect("n"), "{what} n");
    close(&format!("{what} mean"), s.mean, f(expected, "mean"));
    match (s.sd, expected["sd"].as_f64()) {
        (Some(ours), Some(theirs)) => close(&format!("{what} sd"), ours, theirs),
        (None, None) => {}
        (ours, theirs) => panic!("{what} sd: ours {ours:?}, numpy {theirs:?}"),
    }
    close(&format!("{what} median"), s.median, f(expected, "median"));
    close(
        &format!("{what} median=p50"),
        s.median,
        f(expected, "median_pct"),
    );
    close(&format!("{what} q1"), s.q1, f(expected, "q1"));
    close(&format!("{what} q3"), s.q3, f(expected, "q3"));
}

fn check_paired(case: &Paired, expected: &Value) {
    let name = case.name;
    let d = paired_differences(&case.before, &case.after).expect("same lengths");
    check_summary(&format!("{name} before"), &case.before, &expected["before"]);
    check_summary(&format!("{name} after"), &case.after, &expected["after"]);
    check_summary(&format!("{name} change"), &d, &expected["diff"]);

    // t-test: scipy is undefined (n < 2, zero variance) exactly when we say not evaluable.
    match (stats::paired_t_test(&d), expected["ttest"].is_null()) {
        (Ok(t), false) => {
            let e = &expected["ttest"];
            close(&format!("{name} t"), t.t, f(e, "t"));
            close(&format!("{name} t p"), t.p_value, f(e, "p"));
            close(&format!("{name} t df"), t.df, f(e, "df"));
            close(&format!("{name} t mean"), t.mean_difference, f(e, "mean"));
            close(&format!("{name} t ci low"), t.ci_lower, f(e, "low"));
            close(&format!("{name} t ci high"), t.ci_upper, f(e, "high"));
        }
        (Err(StatsError::TooFew { .. } | StatsError::ZeroVariance { .. }), true) => {}
        (ours, _) => panic!("{name} t-test: ours {ours:?}, scipy {}", expected["ttest"]),
    }

    let ties = expected["ties"].as_bool().expect("ties flag");
    let auto = stats::wilcoxon(&d);
    match (&auto, case.auto_method) {
        (Ok(w), Some(method)) => {
            assert_eq!(w.method, method, "{name}: auto method");
            assert_eq!(w.ties, ties, "{name}: ties");
        }
        (Err(StatsError::AllZero { .. }), None) => {
            assert!(expected["normal"].is_null(), "{name}: scipy evaluated it");
            return;
        }
        (ours, want) => panic!("{name}: auto wilcoxon {ours:?}, wanted {want:?}"),
    }

    for (key, correction) in [("normal", false), ("normal_cc", true)] {
        let e = &expected[key];
        let w = stats::wilcoxon_with(
            &d,
            WilcoxonOptions {
                method: WilcoxonMethod::Normal,
                continuity_correction: correction,
            },
        )
        .unwrap_or_else(|err| panic!("{name} {key}: {err}"));
        assert_eq!(w.method, "wilcoxon-normal");
        close(&format!("{name} {key} p"), w.p_value, f(e, "p"));
        close(
            &format!("{name} {key} statistic"),
            w.statistic,
            f(e, "statistic"),
        );
        // scipy reports -|z| for the two-sided test; ours is signed.
        let z = w.z.expect("normal method has z");
        close(&format!("{name} {key} |z|"), z.abs(), f(e, "z").abs());
    }

    let exact = stats::wilcoxon_with(
        &d,
        WilcoxonOptions {
            method: WilcoxonMethod::Exact,
            continuity_correction: false,
        },
    );
    match (exact, expected["exact"].is_null()) {
        (Ok(w), false) => {
            let e = &expected["exact"];
            assert_eq!(w.method, "wilcoxon-exact");
            close(&format!("{name} exact p"), w.p_value, f(e, "p"));
            close(
                &format!("{name} exact statistic"),
                w.statistic,
                f(e, "statistic"),
            );
        }
        (Err(StatsError::ExactNotApplicable { .. }), true) => {}
        (ours, _) => panic!("{name} exact: ours {ours:?}, scipy {}", expected["exact"]),
    }
}

#[test]
fn stats_match_scipy_on_the_same_data() {
    let cases = datasets();
    let input = json!({
        "proportions": PROPORTIONS,
        "paired": cases.iter().map(|c| json!({"before": c.before, "after": c.after})).collect::<Vec<_>>(),
    });
    let expected = run_scipy(&input);
    eprintln!("cross-checked against {}", expected["versions"]);

    let props = expected["proportions"].as_array().expect("proportions");
    assert_eq!(props.len(), PROPORTIONS.len());
    for (&(x, n), e) in PROPORTIONS.iter().zip(props) {
        check_proportion(x, n, e);
    }

    let paired = expected["paired"].as_array().expect("paired");
    assert_eq!(paired.len(), cases.len());
    for (case, e) in cases.iter().zip(paired) {
        check_paired(case, e);
    }
}
