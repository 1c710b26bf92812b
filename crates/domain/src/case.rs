//! A scoring case, baseline and follow-up visit of one subject, and its parser from the JSON of the
//! `myolog score` contract (docs/reference/score-json.md). Every rejection names the field path, e.g.
//! `followup.mmt8.grades.deltoid`, and what is allowed there. Numbers are read exactly.

use crate::biopsy::Stat1;
use crate::cdasi::{CdasiLocation, CdasiLocationScores, CdasiV2, GottronHands};
use crate::conventions::{
    CdasiMcid, CdasiSeverityCutoff, HaqMinimumCategories, InputConventions, ScoringConventions,
};
use crate::enzyme::{Enzyme, EnzymeField, EnzymeMeasurement, EnzymePanel, EnzymeUnit};
use crate::error::{InvalidInput, Problem};
use crate::global::{GlobalAssessment, VasCm};
use crate::glucocorticoid::PrednisoneEquivalentDose;
use crate::haq::{Haq, HaqAid, HaqCategory, HaqDiScore, HaqItemScore, HaqItems};
use crate::json::{Json, Node, ObjectNode, join};
use crate::lab::{LabCode, LabField, LabMeasurement, LabPanel};
use crate::mmt8::{
    BilateralGrades, KendallGrade, Mmt8, MmtScale, MmtTotal, MuscleGroup, UnilateralGrades,
};
use crate::score::BoundedScore;
use crate::visit::{Population, VisitAssessments};
use rust_decimal::Decimal;
use std::collections::BTreeSet;

/// One subject's baseline and follow-up, with the conventions to score them by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreCase {
    /// An optional caller-chosen identifier, echoed in the result.
    pub id: Option<String>,
    pub population: Population,
    pub baseline: VisitAssessments,
    pub followup: VisitAssessments,
    pub conventions: ScoringConventions,
}

const CASE_KEYS: &[&str] = &["id", "population", "baseline", "followup", "conventions"];
const VISIT_KEYS: &[&str] = &[
    "physician_global",
    "patient_global",
    "extramuscular_global",
    "mmt8",
    "haq_di",
    "haq",
    "enzymes",
    "cdasi",
    "labs",
    "stat1",
    "prednisone_mg_per_day",
];
const CONVENTION_KEYS: &[&str] = &[
    "haq_min_categories",
    "cdasi_mcid",
    "cdasi_severity_cutoff",
    "allow_likert_globals",
    "mmt_trace_grade",
];

impl ScoreCase {
    /// Parses one case from JSON text. Syntax errors are reported at the field path `""` (the case).
    pub fn from_json(text: &str) -> Result<Self, InvalidInput> {
        let json =
            Json::parse(text).map_err(|message| InvalidInput::at("", Problem::Syntax(message)))?;
        Self::from_json_value(&json)
    }

    /// Parses one case from an exact JSON tree.
    pub fn from_json_value(json: &Json) -> Result<Self, InvalidInput> {
        let case = Node::root(json).object(CASE_KEYS)?;
        let id = match case.get_present("id") {
            None => None,
            Some(node) => Some(match node.value {
                Json::String(text) => text.clone(),
                Json::Number(text) => text.clone(),
                _ => return Err(node.wrong_type("a string or a number")),
            }),
        };
        let population_node = case.require("population", "\"adult\" or \"juvenile\"")?;
        let population_key = population_node.string()?;
        let population = Population::from_key(population_key).ok_or_else(|| {
            population_node.error(Problem::UnknownValue {
                value: population_key.to_string(),
                allowed: "adult, juvenile".to_string(),
            })
        })?;
        let (conventions, input_conventions) = match case.get_present("conventions") {
            None => (ScoringConventions::default(), InputConventions::default()),
            Some(node) => parse_conventions(&node)?,
        };
        let baseline = parse_visit(
            &case.require("baseline", "a visit object")?,
            &input_conventions,
        )?;
        let followup = parse_visit(
            &case.require("followup", "a visit object")?,
            &input_conventions,
        )?;
        Ok(Self {
            id,
            population,
            baseline,
            followup,
            conventions,
        })
    }
}

fn parse_conventions(
    node: &Node<'_>,
) -> Result<(ScoringConventions, InputConventions), InvalidInput> {
    let object = node.object(CONVENTION_KEYS)?;
    let mut scoring = ScoringConventions::default();
    let mut input = InputConventions::default();
    if let Some(node) = object.get_present("haq_min_categories") {
        scoring.haq_min_categories = match choice(&node, &[6, 7])? {
            6 => HaqMinimumCategories::Six,
            _ => HaqMinimumCategories::Seven,
        };
    }
    if let Some(node) = object.get_present("cdasi_mcid") {
        scoring.cdasi_mcid = match choice(&node, &[4, 5])? {
            4 => CdasiMcid::UPenn4,
            _ => CdasiMcid::Stanford5,
        };
    }
    if let Some(node) = object.get_present("cdasi_severity_cutoff") {
        scoring.cdasi_severity_cutoff = match choice(&node, &[14, 19])? {
            14 => CdasiSeverityCutoff::Stanford14,
            _ => CdasiSeverityCutoff::UPenn19,
        };
    }
    if let Some(node) = object.get_present("allow_likert_globals") {
        input.allow_likert_globals = node.boolean()?;
    }
    if let Some(node) = object.get_present("mmt_trace_grade") {
        input.mmt_trace_grade = Some(bounded::<10>(&node)?);
    }
    Ok((scoring, input))
}

/// An integer that must be one of `allowed`.
fn choice(node: &Node<'_>, allowed: &[u8]) -> Result<u8, InvalidInput> {
    let value = node.decimal()?.normalize();
    let listed = allowed
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    allowed
        .iter()
        .copied()
        .find(|candidate| Decimal::from(*candidate) == value)
        .ok_or_else(|| {
            node.error(Problem::OutOfRange {
                value: value.to_string(),
                allowed: listed,
            })
        })
}

fn bounded<const MAX: u8>(node: &Node<'_>) -> Result<BoundedScore<MAX>, InvalidInput> {
    BoundedScore::<MAX>::from_decimal(node.decimal()?).map_err(|problem| node.error(problem))
}

/// Parses one visit object.
pub fn parse_visit(
    node: &Node<'_>,
    input: &InputConventions,
) -> Result<VisitAssessments, InvalidInput> {
    let visit = node.object(VISIT_KEYS)?;
    let global = |key: &str| {
        visit
            .get_present(key)
            .map(|node| parse_global(&node, input))
            .transpose()
    };
    let haq = match (visit.get_present("haq_di"), visit.get_present("haq")) {
        (Some(_), Some(items)) => {
            return Err(items.error(Problem::NotAllowed(
                "give either haq_di (the score) or haq (the items), not both".to_string(),
            )));
        }
        (Some(score), None) => Some(Haq::Score(
            HaqDiScore::try_from(score.decimal()?).map_err(|problem| score.error(problem))?,
        )),
        (None, Some(items)) => Some(Haq::Items(Box::new(parse_haq_items(&items)?))),
        (None, None) => None,
    };
    Ok(VisitAssessments {
        physician_global: global("physician_global")?,
        patient_global: global("patient_global")?,
        extramuscular_global: global("extramuscular_global")?,
        mmt8: visit
            .get_present("mmt8")
            .map(|node| parse_mmt8(&node, input))
            .transpose()?,
        haq,
        enzymes: visit
            .get_present("enzymes")
            .map(|node| parse_enzymes(&node))
            .transpose()?
            .unwrap_or_default(),
        cdasi: visit
            .get_present("cdasi")
            .map(|node| parse_cdasi(&node))
            .transpose()?,
        labs: visit
            .get_present("labs")
            .map(|node| parse_labs(&node))
            .transpose()?
            .unwrap_or_default(),
        stat1: visit
            .get_present("stat1")
            .map(|node| parse_stat1(&node))
            .transpose()?,
        prednisone_mg_per_day: visit
            .get_present("prednisone_mg_per_day")
            .map(|node| {
                PrednisoneEquivalentDose::try_from(node.decimal()?)
                    .map_err(|problem| node.error(problem))
            })
            .transpose()?,
    })
}

/// A global: a number in cm, or `{"cm": x}`, `{"mm": n}`, `{"likert": n}` (Likert only when allowed).
fn parse_global(
    node: &Node<'_>,
    input: &InputConventions,
) -> Result<GlobalAssessment, InvalidInput> {
    if let Json::Number(_) = node.value {
        return VasCm::from_cm(node.decimal()?)
            .map(GlobalAssessment::Vas)
            .map_err(|problem| node.error(problem));
    }
    let object = node.object(&["cm", "mm", "likert"])?;
    let mut forms = object.entries();
    let (Some((form, value)), None) = (forms.next(), forms.next()) else {
        return Err(node.error(Problem::NotAllowed(
            "give exactly one of cm, mm or likert (or a number in cm)".to_string(),
        )));
    };
    match form {
        "cm" => VasCm::from_cm(value.decimal()?)
            .map(GlobalAssessment::Vas)
            .map_err(|problem| value.error(problem)),
        "mm" => VasCm::from_mm(value.decimal()?)
            .map(GlobalAssessment::Vas)
            .map_err(|problem| value.error(problem)),
        _ => {
            if !input.allow_likert_globals {
                return Err(value.error(Problem::NotAllowed(
                    "Likert 0-4 globals are accepted only where the study allows them \
                     (conventions.allow_likert_globals); give the 10 cm VAS in cm"
                        .to_string(),
                )));
            }
            Ok(GlobalAssessment::Likert(bounded::<4>(&value)?))
        }
    }
}

fn parse_grade(
    node: &Node<'_>,
    input: &InputConventions,
) -> Result<Option<KendallGrade>, InvalidInput> {
    match node.value {
        Json::Null => Ok(None),
        Json::String(text)
            if text.eq_ignore_ascii_case("t") || text.eq_ignore_ascii_case("trace") =>
        {
            input
                .mmt_trace_grade
                .map(Some)
                .ok_or_else(|| node.error(Problem::TraceGrade))
        }
        _ => bounded::<10>(node).map(Some),
    }
}

fn parse_mmt8(node: &Node<'_>, input: &InputConventions) -> Result<Mmt8, InvalidInput> {
    let object = node.object(&["total", "max", "grades"])?;
    let max_node = object.require("max", "80 (unilateral) or 150 (bilateral)")?;
    let max = choice(&max_node, &[80, 150])?;
    let scale =
        MmtScale::from_max_total(u16::from(max)).map_err(|problem| max_node.error(problem))?;
    match (object.get_present("total"), object.get_present("grades")) {
        (Some(_), Some(grades)) => Err(grades.error(Problem::NotAllowed(
            "give either total or grades, not both".to_string(),
        ))),
        (Some(total), None) => {
            let value = total.decimal()?.normalize();
            let allowed = format!("an integer from 0 to {}", scale.max_total());
            if value.scale() != 0 {
                return Err(total.error(Problem::TooPrecise {
                    value: value.to_string(),
                    max_decimals: 0,
                    allowed,
                }));
            }
            let as_u16 = u16::try_from(value.mantissa()).map_err(|_| {
                total.error(Problem::OutOfRange {
                    value: value.to_string(),
                    allowed,
                })
            })?;
            MmtTotal::new(as_u16, scale)
                .map(Mmt8::Total)
                .map_err(|problem| total.error(problem))
        }
        (None, Some(grades)) => parse_mmt8_grades(&grades, scale, input),
        (None, None) => Err(object.error(Problem::Missing {
            expected: "total or grades".to_string(),
        })),
    }
}

fn parse_mmt8_grades(
    node: &Node<'_>,
    scale: MmtScale,
    input: &InputConventions,
) -> Result<Mmt8, InvalidInput> {
    let keys = MuscleGroup::ALL.map(MuscleGroup::key);
    let object = node.object(&keys)?;
    match scale {
        MmtScale::Unilateral => {
            let mut grades = UnilateralGrades::default();
            for group in MuscleGroup::ALL {
                if let Some(grade) = object.get(group.key()) {
                    if let Json::Array(_) = grade.value {
                        return Err(grade.error(Problem::NotAllowed(
                            "unilateral MMT-8 (max 80) takes one grade per group; [right, left] needs max 150"
                                .to_string(),
                        )));
                    }
                    grades.grades[group.index()] = parse_grade(&grade, input)?;
                }
            }
            Ok(Mmt8::Unilateral(grades))
        }
        MmtScale::Bilateral => {
            let mut grades = BilateralGrades::default();
            if let Some(neck) = object.get(MuscleGroup::NeckFlexors.key()) {
                if let Json::Array(_) = neck.value {
                    return Err(neck.error(Problem::NotAllowed(
                        "neck flexors are graded once (axial), not [right, left]".to_string(),
                    )));
                }
                grades.neck_flexors = parse_grade(&neck, input)?;
            }
            for (position, group) in MuscleGroup::LIMB.into_iter().enumerate() {
                let Some(sides) = object.get(group.key()) else {
                    continue;
                };
                if sides.is_null() {
                    continue;
                }
                let elements = sides.elements().map_err(|_| {
                    sides.error(Problem::WrongType {
                        expected: "[right, left] grades (bilateral MMT-8, max 150)".to_string(),
                        found: sides.value.kind().to_string(),
                    })
                })?;
                if elements.len() != 2 {
                    return Err(sides.error(Problem::WrongLength {
                        expected: 2,
                        found: elements.len(),
                    }));
                }
                for (side, element) in elements.iter().enumerate() {
                    grades.limbs[position][side] = parse_grade(element, input)?;
                }
            }
            Ok(Mmt8::Bilateral(grades))
        }
    }
}

fn parse_haq_items(node: &Node<'_>) -> Result<HaqItems, InvalidInput> {
    let object = node.object(&["items", "aids", "help"])?;
    let items_node = object.require("items", "an object of category item arrays")?;
    let items = items_node.object(&HaqCategory::ALL.map(HaqCategory::key))?;
    let mut answers: [Vec<Option<HaqItemScore>>; 8] = Default::default();
    for category in HaqCategory::ALL {
        let slot = &mut answers[category.index()];
        match items.get_present(category.key()) {
            None => *slot = vec![None; category.item_count()],
            Some(list) => {
                let elements = list.elements()?;
                if elements.len() != category.item_count() {
                    return Err(list.error(Problem::WrongLength {
                        expected: category.item_count(),
                        found: elements.len(),
                    }));
                }
                for element in &elements {
                    slot.push(if element.is_null() {
                        None
                    } else {
                        Some(bounded::<3>(element)?)
                    });
                }
            }
        }
    }
    let mut aids = BTreeSet::new();
    if let Some(list) = object.get_present("aids") {
        for element in list.elements()? {
            let key = element.string()?;
            aids.insert(HaqAid::from_key(key).ok_or_else(|| {
                element.error(Problem::UnknownValue {
                    value: key.to_string(),
                    allowed: HaqAid::ALL.map(HaqAid::key).join(", "),
                })
            })?);
        }
    }
    let mut help = BTreeSet::new();
    if let Some(list) = object.get_present("help") {
        for element in list.elements()? {
            let key = element.string()?;
            help.insert(HaqCategory::from_key(key).ok_or_else(|| {
                element.error(Problem::UnknownValue {
                    value: key.to_string(),
                    allowed: HaqCategory::ALL.map(HaqCategory::key).join(", "),
                })
            })?);
        }
    }
    HaqItems::new(answers, aids, help)
        .map_err(|(category, problem)| InvalidInput::at(join(&items.path, category.key()), problem))
}

fn parse_enzymes(node: &Node<'_>) -> Result<EnzymePanel, InvalidInput> {
    let object = node.object(&Enzyme::ALL.map(Enzyme::key))?;
    let mut panel = EnzymePanel::new();
    for enzyme in Enzyme::ALL {
        let Some(result) = object.get_present(enzyme.key()) else {
            continue;
        };
        let fields = result.object(&["value", "uln", "unit"])?;
        let value = fields.require("value", "the enzyme activity, >= 0")?;
        let uln = fields.require("uln", "the laboratory's upper limit of normal, > 0")?;
        let unit = match fields.get_present("unit") {
            None => EnzymeUnit::UnitsPerLitre,
            Some(unit_node) => {
                let key = unit_node.string()?;
                EnzymeUnit::from_key(key).ok_or_else(|| {
                    unit_node.error(Problem::UnknownValue {
                        value: key.to_string(),
                        allowed: "U/L, ukat/L".to_string(),
                    })
                })?
            }
        };
        let measurement = EnzymeMeasurement::new(value.decimal()?, uln.decimal()?, unit).map_err(
            |(field, problem)| match field {
                EnzymeField::Value => value.error(problem),
                EnzymeField::Uln => uln.error(problem),
            },
        )?;
        panel.insert(enzyme, measurement);
    }
    Ok(panel)
}

fn parse_cdasi(node: &Node<'_>) -> Result<CdasiV2, InvalidInput> {
    let object = node.object(&["locations", "gottron_hands", "periungual", "alopecia"])?;
    let mut cdasi = CdasiV2::default();
    if let Some(locations) = object.get_present("locations") {
        let locations = locations.object(&CdasiLocation::ALL.map(CdasiLocation::key))?;
        for location in CdasiLocation::ALL {
            let Some(scores) = locations.get_present(location.key()) else {
                continue;
            };
            let items =
                scores.object(&["erythema", "scale", "erosion", "poikiloderma", "calcinosis"])?;
            let mut parsed = CdasiLocationScores::default();
            if let Some(item) = items.get_present("erythema") {
                parsed.erythema = bounded::<3>(&item)?;
            }
            if let Some(item) = items.get_present("scale") {
                parsed.scale = bounded::<2>(&item)?;
            }
            if let Some(item) = items.get_present("erosion") {
                parsed.erosion = bounded::<1>(&item)?;
            }
            if let Some(item) = items.get_present("poikiloderma") {
                parsed.poikiloderma = bounded::<1>(&item)?;
            }
            if let Some(item) = items.get_present("calcinosis") {
                parsed.calcinosis = bounded::<1>(&item)?;
            }
            cdasi.locations.insert(location, parsed);
        }
    }
    if let Some(gottron) = object.get_present("gottron_hands") {
        let items = gottron.object(&["erythema", "papules", "ulceration", "damage"])?;
        let mut parsed = GottronHands::default();
        if let Some(item) = items.get_present("erythema") {
            parsed.erythema = bounded::<3>(&item)?;
        }
        if let Some(item) = items.get_present("papules") {
            parsed.papules = item.boolean()?;
        }
        if let Some(item) = items.get_present("ulceration") {
            parsed.ulceration = bounded::<1>(&item)?;
        }
        if let Some(item) = items.get_present("damage") {
            parsed.damage = bounded::<2>(&item)?;
        }
        cdasi.gottron_hands = parsed;
    }
    if let Some(item) = object.get_present("periungual") {
        cdasi.periungual = bounded::<2>(&item)?;
    }
    if let Some(item) = object.get_present("alopecia") {
        cdasi.alopecia = bounded::<1>(&item)?;
    }
    Ok(cdasi)
}

fn parse_labs(node: &Node<'_>) -> Result<LabPanel, InvalidInput> {
    let object = node.object(&LabCode::ALL.map(LabCode::key))?;
    let mut panel = LabPanel::new();
    for code in LabCode::ALL {
        let Some(result) = object.get_present(code.key()) else {
            continue;
        };
        let fields = result.object(&["value", "unit"])?;
        let value = fields.require("value", "the measured value, >= 0")?;
        let unit = fields.require("unit", code.unit())?;
        let measurement = LabMeasurement::new(code, value.decimal()?, unit.string()?).map_err(
            |(field, problem)| match field {
                LabField::Value => value.error(problem),
                LabField::Unit => unit.error(problem),
            },
        )?;
        panel.insert(code, measurement);
    }
    Ok(panel)
}

fn parse_stat1(node: &Node<'_>) -> Result<Stat1, InvalidInput> {
    let object: ObjectNode<'_> = node.object(&["ihc_score", "percent_positive"])?;
    match (
        object.get_present("ihc_score"),
        object.get_present("percent_positive"),
    ) {
        (Some(score), None) => {
            Stat1::ihc_score(score.decimal()?).map_err(|problem| score.error(problem))
        }
        (None, Some(percent)) => {
            Stat1::percent_positive(percent.decimal()?).map_err(|problem| percent.error(problem))
        }
        _ => Err(object.error(Problem::NotAllowed(
            "give exactly one of ihc_score or percent_positive".to_string(),
        ))),
    }
}
