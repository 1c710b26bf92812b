//! The `myolog score` case parser: every invalid input is rejected with its exact field path and the
//! allowed range; valid inputs are read exactly (JSON `0.6` is six tenths).

use myolog_domain::case::ScoreCase;
use myolog_domain::enzyme::Enzyme;
use myolog_domain::global::GlobalAssessment;
use myolog_domain::haq::Haq;
use myolog_domain::lab::LabCode;
use myolog_domain::mmt8::{Mmt8, MuscleGroup};
use myolog_domain::visit::Population;
use rust_decimal::Decimal;
use std::str::FromStr;

/// A case with the given visit bodies (the text between the braces) and extra top-level fields.
fn case(baseline: &str, followup: &str, extra: &str) -> String {
    format!(
        r#"{{"population": "adult", "baseline": {{{baseline}}}, "followup": {{{followup}}}{extra}}}"#
    )
}

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal")
}

/// `expected`: the field path and fragments the message must contain.
fn check(input: &str, field: &str, fragments: &[&str]) {
    let error = match ScoreCase::from_json(input) {
        Ok(parsed) => panic!("accepted invalid input {input}: {parsed:?}"),
        Err(error) => error,
    };
    assert_eq!(error.field, field, "{input}\n{error}");
    let message = error.to_string();
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "{message:?} lacks {fragment:?} for {input}"
        );
    }
}

#[test]
fn invalid_inputs_name_the_field_and_the_allowed_range() {
    let at_baseline = |body: &str| case(body, "", "");
    let at_followup = |body: &str| case("", body, "");

    // Globals: 0-10 cm, at most one decimal, or whole mm; Likert only where allowed.
    check(
        &at_baseline(r#""physician_global": 10.1"#),
        "baseline.physician_global",
        &["10.1", "from 0 to 10 cm"],
    );
    check(
        &at_baseline(r#""physician_global": -0.1"#),
        "baseline.physician_global",
        &["out of range"],
    );
    check(
        &at_followup(r#""physician_global": 2.05"#),
        "followup.physician_global",
        &["more than 1 decimal"],
    );
    check(
        &at_baseline(r#""patient_global": "5""#),
        "baseline.patient_global",
        &["expected an object", "a string"],
    );
    check(
        &at_baseline(r#""patient_global": 1e400"#),
        "baseline.patient_global",
        &["not a representable number"],
    );
    check(
        &at_baseline(r#""patient_global": {"mm": 55.5}"#),
        "baseline.patient_global.mm",
        &["0 decimal", "0 to 100 mm"],
    );
    check(
        &at_baseline(r#""patient_global": {"mm": 101}"#),
        "baseline.patient_global.mm",
        &["out of range"],
    );
    check(
        &at_baseline(r#""patient_global": {"cm": 5, "mm": 50}"#),
        "baseline.patient_global",
        &["exactly one"],
    );
    check(
        &at_baseline(r#""patient_global": {"inch": 2}"#),
        "baseline.patient_global.inch",
        &["unknown key", "cm, mm, likert"],
    );
    check(
        &at_baseline(r#""extramuscular_global": {"likert": 2}"#),
        "baseline.extramuscular_global.likert",
        &["allow_likert_globals"],
    );
    check(
        &case(
            r#""extramuscular_global": {"likert": 5}"#,
            "",
            r#", "conventions": {"allow_likert_globals": true}"#,
        ),
        "baseline.extramuscular_global.likert",
        &["0 to 4"],
    );
    check(
        &at_baseline(r#""physician_global": null, "physician_global": 5"#),
        "baseline.physician_global",
        &["more than once"],
    );

    // MMT-8: Kendall 0-10, integer; trace rejected; unilateral 0-80, bilateral [right, left] 0-150.
    let grades =
        |max: u16, grades: &str| format!(r#""mmt8": {{"max": {max}, "grades": {{{grades}}}}}"#);
    check(
        &at_followup(&grades(80, r#""deltoid": 11"#)),
        "followup.mmt8.grades.deltoid",
        &["11", "0 to 10"],
    );
    check(
        &at_followup(&grades(80, r#""deltoid": -1"#)),
        "followup.mmt8.grades.deltoid",
        &["out of range"],
    );
    check(
        &at_followup(&grades(80, r#""deltoid": 8.5"#)),
        "followup.mmt8.grades.deltoid",
        &["0 decimal"],
    );
    check(
        &at_followup(&grades(80, r#""biceps": "T""#)),
        "followup.mmt8.grades.biceps",
        &["trace", "mmt_trace_grade"],
    );
    check(
        &at_followup(&grades(80, r#""biceps": "weak""#)),
        "followup.mmt8.grades.biceps",
        &["expected a number"],
    );
    check(
        &at_followup(&grades(80, r#""triceps": 8"#)),
        "followup.mmt8.grades.triceps",
        &["unknown key", "neck_flexors"],
    );
    check(
        &at_followup(&grades(80, r#""deltoid": [9, 8]"#)),
        "followup.mmt8.grades.deltoid",
        &["max 150"],
    );
    check(
        &at_followup(&grades(150, r#""deltoid": 9"#)),
        "followup.mmt8.grades.deltoid",
        &["[right, left]"],
    );
    check(
        &at_followup(&grades(150, r#""deltoid": [9]"#)),
        "followup.mmt8.grades.deltoid",
        &["expected 2 element"],
    );
    check(
        &at_followup(&grades(150, r#""deltoid": [9, 11]"#)),
        "followup.mmt8.grades.deltoid[1]",
        &["0 to 10"],
    );
    check(
        &at_followup(&grades(150, r#""quadriceps": [9, "T"]"#)),
        "followup.mmt8.grades.quadriceps[1]",
        &["trace"],
    );
    check(
        &at_followup(&grades(150, r#""neck_flexors": [9, 9]"#)),
        "followup.mmt8.grades.neck_flexors",
        &["graded once"],
    );
    check(
        &at_baseline(r#""mmt8": {"total": 81, "max": 80}"#),
        "baseline.mmt8.total",
        &["81", "0 to 80"],
    );
    check(
        &at_baseline(r#""mmt8": {"total": 151, "max": 150}"#),
        "baseline.mmt8.total",
        &["0 to 150"],
    );
    check(
        &at_baseline(r#""mmt8": {"total": 60.5, "max": 80}"#),
        "baseline.mmt8.total",
        &["0 decimal"],
    );
    check(
        &at_baseline(r#""mmt8": {"total": 60, "max": 100}"#),
        "baseline.mmt8.max",
        &["80 or 150"],
    );
    check(
        &at_baseline(r#""mmt8": {"total": 60}"#),
        "baseline.mmt8.max",
        &["missing"],
    );
    check(
        &at_baseline(r#""mmt8": {"max": 80}"#),
        "baseline.mmt8",
        &["total or grades"],
    );
    check(
        &at_baseline(r#""mmt8": {"max": 80, "total": 60, "grades": {}}"#),
        "baseline.mmt8.grades",
        &["not both"],
    );

    // HAQ: score 0-3 or items 0-3 with fixed item counts, known aids and categories.
    check(
        &at_baseline(r#""haq_di": 3.125"#),
        "baseline.haq_di",
        &["from 0 to 3"],
    );
    check(
        &at_baseline(r#""haq_di": 1.1255"#),
        "baseline.haq_di",
        &["3 decimal"],
    );
    check(
        &at_baseline(r#""haq_di": 1, "haq": {"items": {}}"#),
        "baseline.haq",
        &["not both"],
    );
    check(
        &at_baseline(r#""haq": {"items": {"dressing": [2]}}"#),
        "baseline.haq.items.dressing",
        &["expected 2 element", "found 1"],
    );
    check(
        &at_baseline(r#""haq": {"items": {"eating": [1, 0, 0, 0]}}"#),
        "baseline.haq.items.eating",
        &["expected 3"],
    );
    check(
        &at_baseline(r#""haq": {"items": {"eating": [1, 0, 4]}}"#),
        "baseline.haq.items.eating[2]",
        &["0 to 3"],
    );
    check(
        &at_baseline(r#""haq": {"items": {"grip": [1, -1, 0]}}"#),
        "baseline.haq.items.grip[1]",
        &["out of range"],
    );
    check(
        &at_baseline(r#""haq": {"items": {"swimming": [1]}}"#),
        "baseline.haq.items.swimming",
        &["unknown key"],
    );
    check(
        &at_baseline(r#""haq": {"items": {}, "aids": ["cane", "crane"]}"#),
        "baseline.haq.aids[1]",
        &["\"crane\"", "jar_opener"],
    );
    check(
        &at_baseline(r#""haq": {"items": {}, "help": ["swimming"]}"#),
        "baseline.haq.help[0]",
        &["dressing"],
    );
    check(
        &at_baseline(r#""haq": {"aids": []}"#),
        "baseline.haq.items",
        &["missing"],
    );

    // Enzymes: value >= 0, ULN > 0, known enzymes and units.
    check(
        &at_baseline(r#""enzymes": {"ck": {"value": 2000, "uln": 0}}"#),
        "baseline.enzymes.ck.uln",
        &["greater than 0"],
    );
    check(
        &at_baseline(r#""enzymes": {"ck": {"value": -5, "uln": 200}}"#),
        "baseline.enzymes.ck.value",
        &["-5", "from 0"],
    );
    check(
        &at_baseline(r#""enzymes": {"ck": {"value": 5}}"#),
        "baseline.enzymes.ck.uln",
        &["missing"],
    );
    check(
        &at_baseline(r#""enzymes": {"cpk": {"value": 5, "uln": 1}}"#),
        "baseline.enzymes.cpk",
        &["unknown key", "aldolase"],
    );
    check(
        &at_baseline(r#""enzymes": {"ast": {"value": 5, "uln": 1, "unit": "mg/dL"}}"#),
        "baseline.enzymes.ast.unit",
        &["U/L, ukat/L"],
    );
    check(
        &at_baseline(r#""enzymes": {"alt": {"value": 5.0001, "uln": 1}}"#),
        "baseline.enzymes.alt.value",
        &["3 decimal"],
    );

    // CDASI v2 item ranges.
    let cdasi = |body: &str| at_followup(&format!(r#""cdasi": {{{body}}}"#));
    check(
        &cdasi(r#""locations": {"scalp": {"erythema": 4}}"#),
        "followup.cdasi.locations.scalp.erythema",
        &["0 to 3"],
    );
    check(
        &cdasi(r#""locations": {"malar": {"scale": 3}}"#),
        "followup.cdasi.locations.malar.scale",
        &["0 to 2"],
    );
    check(
        &cdasi(r#""locations": {"arm": {"erosion": 2}}"#),
        "followup.cdasi.locations.arm.erosion",
        &["0 to 1"],
    );
    check(
        &cdasi(r#""locations": {"abdomen": {"poikiloderma": 2}}"#),
        "followup.cdasi.locations.abdomen.poikiloderma",
        &["0 to 1"],
    );
    check(
        &cdasi(r#""locations": {"v_neck": {"calcinosis": 2}}"#),
        "followup.cdasi.locations.v_neck.calcinosis",
        &["0 to 1"],
    );
    check(
        &cdasi(r#""locations": {"knee": {}}"#),
        "followup.cdasi.locations.knee",
        &["unknown key", "gottron_not_hands"],
    );
    check(
        &cdasi(r#""locations": {"scalp": {"swelling": 1}}"#),
        "followup.cdasi.locations.scalp.swelling",
        &["unknown key"],
    );
    check(
        &cdasi(r#""gottron_hands": {"damage": 3}"#),
        "followup.cdasi.gottron_hands.damage",
        &["0 to 2"],
    );
    check(
        &cdasi(r#""gottron_hands": {"erythema": 4, "papules": true}"#),
        "followup.cdasi.gottron_hands.erythema",
        &["0 to 3"],
    );
    check(
        &cdasi(r#""gottron_hands": {"papules": "yes"}"#),
        "followup.cdasi.gottron_hands.papules",
        &["true or false"],
    );
    check(
        &cdasi(r#""gottron_hands": {"ulceration": 2}"#),
        "followup.cdasi.gottron_hands.ulceration",
        &["0 to 1"],
    );
    check(
        &cdasi(r#""periungual": 3"#),
        "followup.cdasi.periungual",
        &["0 to 2"],
    );
    check(
        &cdasi(r#""alopecia": 2"#),
        "followup.cdasi.alopecia",
        &["0 to 1"],
    );

    // Labs, STAT1, glucocorticoids.
    check(
        &at_baseline(r#""labs": {"cxcl9": {"value": 300, "unit": "ng/mL"}}"#),
        "baseline.labs.cxcl9.unit",
        &["pg/mL"],
    );
    check(
        &at_baseline(r#""labs": {"cxcl10": {"value": -1, "unit": "pg/mL"}}"#),
        "baseline.labs.cxcl10.value",
        &["out of range"],
    );
    check(
        &at_baseline(r#""labs": {"cxcl10": {"value": 1}}"#),
        "baseline.labs.cxcl10.unit",
        &["missing"],
    );
    check(
        &at_baseline(r#""labs": {"il6": {"value": 1, "unit": "pg/mL"}}"#),
        "baseline.labs.il6",
        &["unknown key", "cxcl9"],
    );
    check(
        &at_baseline(r#""stat1": {"ihc_score": 2, "percent_positive": 30}"#),
        "baseline.stat1",
        &["exactly one"],
    );
    check(
        &at_baseline(r#""stat1": {"percent_positive": 100.5}"#),
        "baseline.stat1.percent_positive",
        &["0 to 100 %"],
    );
    check(
        &at_baseline(r#""stat1": {"ihc_score": 4.25}"#),
        "baseline.stat1.ihc_score",
        &["1 decimal"],
    );
    check(
        &at_baseline(r#""prednisone_mg_per_day": -1"#),
        "baseline.prednisone_mg_per_day",
        &["mg/day"],
    );
    check(
        &at_baseline(r#""prednisone_mg_per_day": 12.345"#),
        "baseline.prednisone_mg_per_day",
        &["2 decimal"],
    );

    // The case itself.
    check(
        r#"{"population": "child", "baseline": {}, "followup": {}}"#,
        "population",
        &["\"child\"", "adult, juvenile"],
    );
    check(
        r#"{"baseline": {}, "followup": {}}"#,
        "population",
        &["missing"],
    );
    check(
        r#"{"population": "adult", "baseline": {}}"#,
        "followup",
        &["missing"],
    );
    check(
        r#"{"population": "adult", "baseline": [], "followup": {}}"#,
        "baseline",
        &["expected an object", "an array"],
    );
    check(
        &at_baseline(r#""physican_global": 5"#),
        "baseline.physican_global",
        &["unknown key", "physician_global"],
    );
    check(
        &case("", "", r#", "conventions": {"haq_min_categories": 5}"#),
        "conventions.haq_min_categories",
        &["6 or 7"],
    );
    check(
        &case("", "", r#", "conventions": {"cdasi_mcid": 3}"#),
        "conventions.cdasi_mcid",
        &["4 or 5"],
    );
    check(
        &case("", "", r#", "conventions": {"cdasi_severity_cutoff": 15}"#),
        "conventions.cdasi_severity_cutoff",
        &["14 or 19"],
    );
    check(
        &case("", "", r#", "conventions": {"mmt_trace_grade": 11}"#),
        "conventions.mmt_trace_grade",
        &["0 to 10"],
    );
    check(
        &case("", "", r#", "conventions": {"mcid": 4}"#),
        "conventions.mcid",
        &["unknown key"],
    );
    check(
        r#"{"population": "adult", "baseline": {"#,
        "",
        &["not valid JSON"],
    );
    check(
        r#"{"population": "adult", "baseline": {"physician_global": NaN}, "followup": {}}"#,
        "",
        &["not valid JSON"],
    );
    check("[]", "", &["expected an object"]);
}

#[test]
fn valid_inputs_are_read_exactly() {
    fn check(input: &str, expected: impl Fn(&ScoreCase) -> bool) {
        let parsed = ScoreCase::from_json(input).unwrap_or_else(|error| panic!("{input}: {error}"));
        assert!(expected(&parsed), "{input}: {parsed:?}");
    }
    let vas = |case: &ScoreCase| case.baseline.physician_global.map(GlobalAssessment::value);
    check(&case(r#""physician_global": 0.6"#, "", ""), |c| {
        vas(c) == Some(decimal("0.6"))
    });
    check(&case(r#""physician_global": 6e-1"#, "", ""), |c| {
        vas(c) == Some(decimal("0.6"))
    });
    check(&case(r#""physician_global": 6.00"#, "", ""), |c| {
        vas(c) == Some(decimal("6"))
    });
    check(&case(r#""physician_global": {"mm": 55}"#, "", ""), |c| {
        vas(c) == Some(decimal("5.5"))
    });
    check(&case(r#""physician_global": {"cm": 10}"#, "", ""), |c| {
        vas(c) == Some(decimal("10"))
    });
    check(&case(r#""physician_global": null"#, "", ""), |c| {
        c.baseline.physician_global.is_none()
    });
    check(
        &case(
            r#""patient_global": {"likert": 3}"#,
            "",
            r#", "conventions": {"allow_likert_globals": true}"#,
        ),
        |c| matches!(c.baseline.patient_global, Some(GlobalAssessment::Likert(score)) if score.get() == 3),
    );
    check(
        &case(
            "",
            r#""mmt8": {"max": 80, "grades": {"deltoid": "T"}}"#,
            r#", "conventions": {"mmt_trace_grade": 1}"#,
        ),
        |c| matches!(c.followup.mmt8, Some(Mmt8::Unilateral(g)) if g.grades[MuscleGroup::Deltoid.index()].map(|g| g.get()) == Some(1)),
    );
    check(
        &case(
            "",
            r#""mmt8": {"max": 150, "grades": {"deltoid": [9, null]}}"#,
            "",
        ),
        |c| matches!(c.followup.mmt8, Some(Mmt8::Bilateral(g)) if g.limbs[0][0].map(|g| g.get()) == Some(9) && g.limbs[0][1].is_none()),
    );
    check(
        &case(
            r#""enzymes": {"ck": {"value": 1.5, "uln": 3.2, "unit": "ukat/L"}}"#,
            "",
            "",
        ),
        |c| {
            c.baseline
                .enzymes
                .get(&Enzyme::Ck)
                .map(|m| (m.value(), m.uln()))
                == Some((decimal("90"), decimal("192")))
        },
    );
    check(
        &case(
            r#""haq": {"items": {"dressing": [null, 2]}, "aids": ["cane", "cane"], "help": ["eating"]}"#,
            "",
            "",
        ),
        |c| matches!(&c.baseline.haq, Some(Haq::Items(items)) if items.aids().len() == 1 && items.help().len() == 1),
    );
    check(
        &case(
            r#""labs": {"cxcl9": {"value": 350.5, "unit": "pg/mL"}}"#,
            "",
            "",
        ),
        |c| c.baseline.labs.get(&LabCode::Cxcl9).map(|m| m.value()) == Some(decimal("350.5")),
    );
    check(
        r#"{"id": 17, "population": "juvenile", "baseline": {}, "followup": {}}"#,
        |c| c.id.as_deref() == Some("17") && c.population == Population::Juvenile,
    );
}
