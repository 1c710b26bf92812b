//! Errors are values on any input: the case parser never panics, whatever the bytes, nesting or
//! numbers, and every rejection carries a field path that exists in the input (or the root).

use myolog_domain::case::ScoreCase;
use myolog_domain::error::Problem;
use proptest::prelude::*;

/// A valid case whose number slots are filled from `numbers` (any JSON number text).
fn case_with_numbers(numbers: &[String]) -> String {
    let n = |index: usize| numbers[index % numbers.len()].as_str();
    format!(
        r#"{{"population": "adult", "baseline": {{"physician_global": {}, "patient_global": {{"mm": {}}}, "mmt8": {{"max": 150, "grades": {{"neck_flexors": {}, "deltoid": [{}, {}]}}}}, "haq": {{"items": {{"eating": [{}, null, {}]}}, "aids": ["cane"]}}, "enzymes": {{"ck": {{"value": {}, "uln": {}}}}}}}, "followup": {{"haq_di": {}, "cdasi": {{"locations": {{"scalp": {{"erythema": {}}}}}, "periungual": {}}}, "labs": {{"cxcl9": {{"value": {}, "unit": "pg/mL"}}}}, "stat1": {{"percent_positive": {}}}, "prednisone_mg_per_day": {}}}}}"#,
        n(0),
        n(1),
        n(2),
        n(3),
        n(4),
        n(5),
        n(6),
        n(7),
        n(8),
        n(9),
        n(10),
        n(11),
        n(12),
        n(13),
        n(14)
    )
}

fn json_number() -> impl Strategy<Value = String> {
    prop_oneof![
        (-20i64..200).prop_map(|value| value.to_string()),
        (-2000i64..20000, 0u32..5)
            .prop_map(|(mantissa, scale)| rust_decimal::Decimal::new(mantissa, scale).to_string()),
        "-?[0-9]{1,40}(\\.[0-9]{1,40})?([eE][+-]?[0-9]{1,4})?",
    ]
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [65usize, 200, 10_000, 100_000] {
        let input = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let error = ScoreCase::from_json(&input).err().map(|error| error.field);
        assert_eq!(error.as_deref(), Some(""), "depth {depth}");
        let nested = format!(
            r#"{{"population": "adult", "baseline": {{"physician_global": {}1{}}}, "followup": {{}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(ScoreCase::from_json(&nested).is_err(), "depth {depth}");
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = ScoreCase::from_json(&text);
    }

    #[test]
    fn arbitrary_numbers_are_accepted_or_rejected_with_a_real_path(numbers in prop::collection::vec(json_number(), 15)) {
        let input = case_with_numbers(&numbers);
        match ScoreCase::from_json(&input) {
            Ok(_) => {}
            // Text such as `00` or `1.` is not a JSON number: a syntax error of the whole case.
            Err(error) if error.field.is_empty() => {
                prop_assert!(matches!(error.problem, Problem::Syntax(_)), "{error}");
            }
            Err(error) => {
                // The last segment of the path names a key or an array element of the input.
                let last = error.field.rsplit('.').next().unwrap_or_default();
                let key = last.split('[').next().unwrap_or_default();
                prop_assert!(input.contains(&format!("\"{key}\"")), "{error} in {input}");
            }
        }
    }
}
