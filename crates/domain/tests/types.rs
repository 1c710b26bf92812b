//! The validated types on their own: each accepts exactly its documented range and
//! precision (docs/clinical.md, sections 1-4) and says what is allowed when it refuses.

use myolog_domain::biopsy::Stat1;
use myolog_domain::enzyme::{EnzymeField, EnzymeMeasurement, EnzymeUnit};
use myolog_domain::error::Problem;
use myolog_domain::global::VasCm;
use myolog_domain::glucocorticoid::PrednisoneEquivalentDose;
use myolog_domain::haq::{HaqCategory, HaqDiScore, HaqItems};
use myolog_domain::lab::{LabCode, LabField, LabMeasurement};
use myolog_domain::mmt8::{KendallGrade, MmtScale, MmtTotal};
use myolog_domain::quantity::parse_exact_decimal;
use rust_decimal::Decimal;
use std::str::FromStr;

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal")
}

/// What a check expects: the accepted value, or the kind of refusal.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Accepted(Decimal),
    OutOfRange,
    TooPrecise,
    Other,
}

fn outcome(result: Result<Decimal, Problem>) -> Expect {
    match result {
        Ok(value) => Expect::Accepted(value),
        Err(Problem::OutOfRange { .. }) => Expect::OutOfRange,
        Err(Problem::TooPrecise { .. }) => Expect::TooPrecise,
        Err(_) => Expect::Other,
    }
}

#[test]
fn decimal_types_accept_their_range_and_precision() {
    use Expect::{Accepted, OutOfRange, TooPrecise};
    type Parser = fn(Decimal) -> Result<Decimal, Problem>;
    let vas_cm: Parser = |value| VasCm::from_cm(value).map(VasCm::cm);
    let vas_mm: Parser = |value| VasCm::from_mm(value).map(VasCm::cm);
    let haq: Parser = |value| HaqDiScore::try_from(value).map(HaqDiScore::get);
    let stat1_score: Parser = |value| Stat1::ihc_score(value).map(Stat1::value);
    let stat1_percent: Parser = |value| Stat1::percent_positive(value).map(Stat1::value);
    let prednisone: Parser =
        |value| PrednisoneEquivalentDose::try_from(value).map(PrednisoneEquivalentDose::mg_per_day);
    let kendall: Parser =
        |value| KendallGrade::from_decimal(value).map(|grade| Decimal::from(grade.get()));
    fn check(parser: Parser, input: &str, expected: Expect) {
        assert_eq!(outcome(parser(decimal(input))), expected, "{input}");
    }
    check(vas_cm, "0", Accepted(decimal("0")));
    check(vas_cm, "10", Accepted(decimal("10")));
    check(vas_cm, "0.6", Accepted(decimal("0.6")));
    check(vas_cm, "6.00", Accepted(decimal("6")));
    check(vas_cm, "10.0", Accepted(decimal("10")));
    check(vas_cm, "10.1", OutOfRange);
    check(vas_cm, "-0.1", OutOfRange);
    check(vas_cm, "0.05", TooPrecise);
    check(vas_mm, "55", Accepted(decimal("5.5")));
    check(vas_mm, "100", Accepted(decimal("10")));
    check(vas_mm, "6", Accepted(decimal("0.6")));
    check(vas_mm, "55.5", TooPrecise);
    check(vas_mm, "101", OutOfRange);
    check(haq, "3", Accepted(decimal("3")));
    check(haq, "0.125", Accepted(decimal("0.125")));
    check(haq, "3.001", OutOfRange);
    check(haq, "0.1255", TooPrecise);
    check(stat1_score, "2.5", Accepted(decimal("2.5")));
    check(stat1_score, "4.1", OutOfRange);
    check(stat1_score, "2.55", TooPrecise);
    check(stat1_percent, "100", Accepted(decimal("100")));
    check(stat1_percent, "100.1", OutOfRange);
    check(prednisone, "7.5", Accepted(decimal("7.5")));
    check(prednisone, "0", Accepted(decimal("0")));
    check(prednisone, "-2.5", OutOfRange);
    check(prednisone, "2000.01", OutOfRange);
    check(prednisone, "7.125", TooPrecise);
    check(kendall, "10", Accepted(decimal("10")));
    check(kendall, "0", Accepted(decimal("0")));
    check(kendall, "7.0", Accepted(decimal("7")));
    check(kendall, "11", OutOfRange);
    check(kendall, "-1", OutOfRange);
    check(kendall, "9.5", TooPrecise);
}

#[test]
fn enzymes_and_labs_check_value_uln_and_unit() {
    fn check(
        value: &str,
        uln: &str,
        unit: EnzymeUnit,
        expected: Result<(&str, &str), EnzymeField>,
    ) {
        let actual = EnzymeMeasurement::new(decimal(value), decimal(uln), unit)
            .map(|measurement| (measurement.value(), measurement.uln()))
            .map_err(|(field, _)| field);
        assert_eq!(
            actual,
            expected.map(|(value, uln)| (decimal(value), decimal(uln))),
            "{value} / {uln}"
        );
    }
    check(
        "2000",
        "200",
        EnzymeUnit::UnitsPerLitre,
        Ok(("2000", "200")),
    );
    check("0", "200", EnzymeUnit::UnitsPerLitre, Ok(("0", "200")));
    check(
        "1.5",
        "3.2",
        EnzymeUnit::MicrokatalPerLitre,
        Ok(("90", "192")),
    );
    check(
        "-1",
        "200",
        EnzymeUnit::UnitsPerLitre,
        Err(EnzymeField::Value),
    );
    check(
        "10000000.001",
        "200",
        EnzymeUnit::UnitsPerLitre,
        Err(EnzymeField::Value),
    );
    check("100", "0", EnzymeUnit::UnitsPerLitre, Err(EnzymeField::Uln));
    check(
        "100",
        "-3",
        EnzymeUnit::UnitsPerLitre,
        Err(EnzymeField::Uln),
    );

    fn check_lab(code: LabCode, value: &str, unit: &str, expected: Result<&str, LabField>) {
        let actual = LabMeasurement::new(code, decimal(value), unit)
            .map(|lab| lab.value())
            .map_err(|(field, _)| field);
        assert_eq!(actual, expected.map(decimal), "{code:?} {value} {unit}");
    }
    check_lab(LabCode::Cxcl9, "350.5", "pg/mL", Ok("350.5"));
    check_lab(LabCode::Cxcl10, "0", "pg/mL", Ok("0"));
    check_lab(LabCode::Cxcl10, "10", "ng/mL", Err(LabField::Unit));
    check_lab(LabCode::Crp, "5", "mg/L", Ok("5"));
    check_lab(LabCode::Crp, "5", "pg/mL", Err(LabField::Unit));
    check_lab(LabCode::Cxcl9, "-1", "pg/mL", Err(LabField::Value));
}

#[test]
fn mmt_totals_and_haq_items_keep_their_shape() {
    fn check_total(total: u16, scale: MmtScale, accepted: bool) {
        assert_eq!(
            MmtTotal::new(total, scale).is_ok(),
            accepted,
            "{total} of {}",
            scale.max_total()
        );
    }
    check_total(80, MmtScale::Unilateral, true);
    check_total(81, MmtScale::Unilateral, false);
    check_total(150, MmtScale::Bilateral, true);
    check_total(151, MmtScale::Bilateral, false);
    check_total(0, MmtScale::Bilateral, true);

    let lengths = |dressing: usize| {
        HaqCategory::ALL.map(|category| {
            vec![
                None;
                if category == HaqCategory::Dressing {
                    dressing
                } else {
                    category.item_count()
                }
            ]
        })
    };
    assert!(HaqItems::new(lengths(2), Default::default(), Default::default()).is_ok());
    for wrong in [0, 1, 3] {
        let error = HaqItems::new(lengths(wrong), Default::default(), Default::default()).err();
        assert_eq!(
            error,
            Some((
                HaqCategory::Dressing,
                Problem::WrongLength {
                    expected: 2,
                    found: wrong
                }
            )),
            "{wrong} dressing items"
        );
    }
}

#[test]
fn json_number_text_is_read_exactly() {
    fn check(text: &str, expected: Option<&str>) {
        assert_eq!(
            parse_exact_decimal(text).ok(),
            expected.map(decimal),
            "{text}"
        );
    }
    check("0.6", Some("0.6"));
    check("6e-1", Some("0.6"));
    check("1.1", Some("1.1"));
    check("1E2", Some("100"));
    check("-0.25", Some("-0.25"));
    check(
        "0.1000000000000000000000000001",
        Some("0.1000000000000000000000000001"),
    );
    check("1e400", None);
    check("123456789012345678901234567890123", None);
}
