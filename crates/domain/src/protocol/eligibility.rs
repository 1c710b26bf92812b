//! Eligibility from baseline data, criterion by criterion, with the value each rule saw. A missing
//! measure makes a rule "not evaluable", never "not met": a screening form with a blank field is a
//! query to the site, not an ineligible subject. Combinations use three-valued logic, so a decision
//! that the known values already settle (e.g. two of five abnormal measures) is still made.

use super::model::{
    CompareOp, Criterion, CriterionCategory, Flag, GlobalScale, Measure, Protocol, Rule,
    WashoutPeriod,
};
use crate::treatment_history::{
    AttestationCode, PriorDrug, TreatmentBeforeBaseline, TreatmentResponse,
};
use rust_decimal::Decimal;
use serde::Serialize;
use std::fmt;

/// The baseline values eligibility rules read. `None` = not recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BaselineMeasures {
    /// Completed years.
    pub age_years: Option<Decimal>,
    pub cdasi_activity: Option<Decimal>,
    pub cdasi_damage: Option<Decimal>,
    pub mmt8: Option<Mmt8Total>,
    pub physician_global: Option<GlobalValue>,
    pub patient_global: Option<GlobalValue>,
    pub extramuscular_global: Option<GlobalValue>,
    pub haq_di: Option<Decimal>,
    pub prednisone_mg_per_day: Option<Decimal>,
    pub prednisone_stable_weeks: Option<Decimal>,
    /// Muscle enzymes with their lab's upper limit of normal; empty = none recorded.
    pub enzymes: Vec<EnzymeResult>,
    pub muscle_active: Option<bool>,
    /// The other yes/no facts that were recorded; a flag not listed was not recorded.
    pub flags: Vec<(Flag, bool)>,
    pub eular_acr_probability_percent: Option<Decimal>,
    pub fi3_percent_of_upper: Option<Decimal>,
    pub immunosuppressant_stable_months: Option<Decimal>,
    pub disease_duration_months: Option<Decimal>,
    pub glucocorticoid_treated_weeks: Option<Decimal>,
    /// The subject's glucocorticoid dose records up to baseline, in day order; empty = none.
    pub glucocorticoid_history: Vec<DoseChange>,
    /// Days from the informed consent to the baseline visit (negative: consent after baseline).
    pub consent_days_before_baseline: Option<i32>,
    /// The drugs received before the trial, with their last dose counted back from baseline;
    /// `None` when no history was reported (an empty list: none received).
    pub treatment_history: Option<Vec<TreatmentBeforeBaseline>>,
    /// The investigator's attestations; a code not listed was not attested.
    pub attestations: Vec<(AttestationCode, bool)>,
}

/// A glucocorticoid dose record: the prednisone-equivalent dose in effect from `day` on, where day 0
/// is the baseline visit and earlier days are negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DoseChange {
    pub day: i32,
    pub mg_per_day: Decimal,
}

/// An MMT-8 total with the scale it was recorded on, so a 0-80 total is never read as 0-150.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mmt8Total {
    pub total: Decimal,
    /// 80 (unilateral) or 150 (bilateral).
    pub max: u16,
}

/// A global assessment with the scale it was recorded on, so a Likert 3 is never read as 3 cm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GlobalValue {
    /// cm for `vas_cm`, 0-4 for `likert`.
    pub value: Decimal,
    pub scale: GlobalScale,
}

impl GlobalValue {
    pub fn vas_cm(value: Decimal) -> Self {
        GlobalValue {
            value,
            scale: GlobalScale::VasCm,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnzymeResult {
    /// E.g. `CK`, `aldolase`.
    pub name: String,
    pub value: Decimal,
    pub upper_limit_of_normal: Decimal,
}

/// The outcome of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    Met,
    NotMet,
    /// A conditional rule whose condition is not met (e.g. MMT-8 rule when muscle is not active).
    NotApplicable,
    /// A value the rule needs is missing.
    NotEvaluable,
}

impl fmt::Display for Verdict {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Verdict::Met => "met",
            Verdict::NotMet => "not met",
            Verdict::NotApplicable => "not applicable",
            Verdict::NotEvaluable => "not evaluable",
        })
    }
}

/// What a leaf rule saw in the baseline data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Seen {
    Value(Decimal),
    Flag(bool),
    Missing,
    /// A value recorded on another scale than the protocol's (MMT-8 of 80 vs 150, Likert vs VAS).
    OtherScale {
        value: Decimal,
        scale: String,
        protocol_scale: String,
    },
    /// The most abnormal enzyme (highest value / ULN).
    Enzyme {
        name: String,
        value: Decimal,
        upper_limit_of_normal: Decimal,
    },
    /// A combination: see its parts.
    Parts,
    /// A number of days (a glucocorticoid run, or consent before baseline).
    Days(i32),
    /// The most recent last dose of a washout's drugs, counted back from baseline.
    LastDose {
        drug: PriorDrug,
        days: i32,
        completed_months: i32,
    },
    /// None of a washout's drugs was ever received.
    NoneReceived,
}

impl fmt::Display for Seen {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Value(value) => write!(formatter, "{value}"),
            Seen::Flag(value) => write!(formatter, "{value}"),
            Seen::Missing => formatter.write_str("nothing"),
            Seen::OtherScale {
                value,
                scale,
                protocol_scale,
            } => write!(formatter, "{value} on {scale}, not on {protocol_scale}"),
            Seen::Enzyme {
                name,
                value,
                upper_limit_of_normal,
            } => {
                write!(formatter, "{name} {value} (ULN {upper_limit_of_normal})")
            }
            Seen::Parts => formatter.write_str("its parts"),
            Seen::Days(days) => write!(formatter, "{days} days"),
            Seen::LastDose {
                drug,
                days,
                completed_months,
            } => write!(
                formatter,
                "{drug} last given {days} days ({completed_months} completed months) before baseline"
            ),
            Seen::NoneReceived => formatter.write_str("none of them received"),
        }
    }
}

/// A rule's verdict with what it saw; combinations carry their parts' results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    /// A leaf rule as text (`cdasi_activity >= 5`); for a combination its head only (`at least 2 of`,
    /// `if`), its parts being listed in `parts`.
    pub rule: String,
    pub verdict: Verdict,
    pub seen: Seen,
    pub parts: Vec<RuleResult>,
}

impl fmt::Display for RuleResult {
    /// `cdasi_activity >= 5 saw 4: not met`; combinations list their parts in brackets.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.is_empty() {
            return write!(
                formatter,
                "{} saw {}: {}",
                self.rule, self.seen, self.verdict
            );
        }
        let parts = self
            .parts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        match parts.as_slice() {
            [condition, then] if self.rule == "if" => {
                write!(
                    formatter,
                    "if [{condition}] then [{then}]: {}",
                    self.verdict
                )
            }
            _ => write!(
                formatter,
                "{} [{}]: {}",
                self.rule,
                parts.join("; "),
                self.verdict
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CriterionResult {
    pub id: String,
    pub category: CriterionCategory,
    pub text: String,
    /// Whether the criterion's rule holds (for an exclusion, `Met` means the subject is excluded).
    pub verdict: Verdict,
    pub result: RuleResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EligibilityVerdict {
    Eligible,
    /// At least one inclusion not met or one exclusion met.
    NotEligible,
    /// Nothing rules the subject out, but a criterion could not be evaluated.
    NotEvaluable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EligibilityReport {
    pub verdict: EligibilityVerdict,
    pub criteria: Vec<CriterionResult>,
}

impl Protocol {
    /// Checks every eligibility criterion against a subject's baseline values.
    pub fn check_eligibility(&self, measures: &BaselineMeasures) -> EligibilityReport {
        let reader = Reader {
            measures,
            mmt8_max: self.conventions.mmt8_max,
            global_scale: self.conventions.global_scale,
        };
        let criteria: Vec<CriterionResult> = self
            .eligibility
            .iter()
            .map(|criterion| reader.criterion(criterion))
            .collect();
        let blocks = |result: &CriterionResult| match result.category {
            CriterionCategory::Inclusion => result.verdict == Verdict::NotMet,
            CriterionCategory::Exclusion => result.verdict == Verdict::Met,
        };
        let verdict = if criteria.iter().any(blocks) {
            EligibilityVerdict::NotEligible
        } else if criteria
            .iter()
            .any(|result| result.verdict == Verdict::NotEvaluable)
        {
            EligibilityVerdict::NotEvaluable
        } else {
            EligibilityVerdict::Eligible
        };
        EligibilityReport { verdict, criteria }
    }
}

struct Reader<'m> {
    measures: &'m BaselineMeasures,
    mmt8_max: u16,
    global_scale: GlobalScale,
}

impl Reader<'_> {
    fn criterion(&self, criterion: &Criterion) -> CriterionResult {
        let result = self.rule(&criterion.rule);
        CriterionResult {
            id: criterion.id.clone(),
            category: criterion.category,
            text: criterion.text.clone(),
            verdict: result.verdict,
            result,
        }
    }

    fn rule(&self, rule: &Rule) -> RuleResult {
        let leaf = |verdict, seen| RuleResult {
            rule: rule.to_string(),
            verdict,
            seen,
            parts: Vec::new(),
        };
        let combination = |verdict, parts| RuleResult {
            rule: combination_head(rule),
            verdict,
            seen: Seen::Parts,
            parts,
        };
        match rule {
            Rule::Compare {
                measure,
                op,
                threshold,
            } => {
                let (verdict, seen) = self.compare(*measure, *op, *threshold);
                leaf(verdict, seen)
            }
            Rule::Flag { flag, is } => {
                let observed = match flag {
                    Flag::MuscleActive => self.measures.muscle_active,
                    other => self
                        .measures
                        .flags
                        .iter()
                        .find(|(recorded, _)| recorded == other)
                        .map(|(_, value)| *value),
                };
                match observed {
                    Some(value) => leaf(met_if(value == *is), Seen::Flag(value)),
                    None => leaf(Verdict::NotEvaluable, Seen::Missing),
                }
            }
            Rule::AnyEnzymeAboveUln => self.enzymes(leaf),
            Rule::AllOf(rules) => {
                let parts: Vec<RuleResult> = rules.iter().map(|rule| self.rule(rule)).collect();
                let counts = Counts::of(&parts);
                let verdict = if counts.not_met > 0 {
                    Verdict::NotMet
                } else if counts.not_evaluable > 0 {
                    Verdict::NotEvaluable
                } else {
                    Verdict::Met
                };
                combination(verdict, parts)
            }
            Rule::AnyOf(rules) => {
                let parts: Vec<RuleResult> = rules.iter().map(|rule| self.rule(rule)).collect();
                combination(at_least(1, Counts::of(&parts)), parts)
            }
            Rule::AtLeast { count, rules } => {
                let parts: Vec<RuleResult> = rules.iter().map(|rule| self.rule(rule)).collect();
                combination(at_least(*count as usize, Counts::of(&parts)), parts)
            }
            Rule::When { condition, then } => {
                let condition_result = self.rule(condition);
                let then_result = self.rule(then);
                let verdict = match condition_result.verdict {
                    Verdict::Met => then_result.verdict,
                    Verdict::NotMet | Verdict::NotApplicable => Verdict::NotApplicable,
                    Verdict::NotEvaluable => Verdict::NotEvaluable,
                };
                combination(verdict, vec![condition_result, then_result])
            }
            Rule::GlucocorticoidMaxWithin {
                weeks,
                op,
                threshold,
            } => {
                let (verdict, seen) = self.glucocorticoid_max_within(*weeks, *op, *threshold);
                leaf(verdict, seen)
            }
            Rule::GlucocorticoidSustained { mg_per_day, weeks } => {
                let (verdict, seen) = self.glucocorticoid_sustained(*mg_per_day, *weeks);
                leaf(verdict, seen)
            }
            Rule::InformedConsent => match self.measures.consent_days_before_baseline {
                Some(days) => leaf(met_if(days >= 0), Seen::Days(days)),
                None => leaf(Verdict::NotEvaluable, Seen::Missing),
            },
            Rule::Washout { drugs, period } => {
                let (verdict, seen) = self.washout(drugs, *period);
                leaf(verdict, seen)
            }
            Rule::PriorResponse {
                drugs,
                responses,
                count,
            } => {
                let (verdict, seen) = self.prior_response(drugs, responses, *count);
                leaf(verdict, seen)
            }
            Rule::Attested { code, is } => {
                let attested = self
                    .measures
                    .attestations
                    .iter()
                    .find(|(attested, _)| attested == code)
                    .map(|(_, value)| *value);
                match attested {
                    Some(value) => leaf(met_if(value == *is), Seen::Flag(value)),
                    None => leaf(Verdict::NotEvaluable, Seen::Missing),
                }
            }
        }
    }

    /// Each listed drug never received, or last given at least `period` before baseline. A drug
    /// given too recently settles "not met" whatever the others; a received drug whose last dose
    /// is unknown leaves the rule not evaluable. Shows the most recent known last dose.
    fn washout(&self, drugs: &[PriorDrug], period: WashoutPeriod) -> (Verdict, Seen) {
        let Some(history) = &self.measures.treatment_history else {
            return (Verdict::NotEvaluable, Seen::Missing);
        };
        let received: Vec<&TreatmentBeforeBaseline> = history
            .iter()
            .filter(|treatment| drugs.contains(&treatment.drug))
            .collect();
        let known: Vec<(PriorDrug, crate::treatment_history::Elapsed)> = received
            .iter()
            .filter_map(|treatment| treatment.last_dose.map(|elapsed| (treatment.drug, elapsed)))
            .collect();
        let long_enough = |elapsed: crate::treatment_history::Elapsed| match period {
            WashoutPeriod::Weeks(weeks) => i64::from(elapsed.days) >= i64::from(weeks) * 7,
            WashoutPeriod::Months(months) => {
                i64::from(elapsed.completed_months) >= i64::from(months)
            }
        };
        let most_recent = known.iter().min_by_key(|(_, elapsed)| elapsed.days);
        let seen = match most_recent {
            Some((drug, elapsed)) => Seen::LastDose {
                drug: *drug,
                days: elapsed.days,
                completed_months: elapsed.completed_months,
            },
            None if received.is_empty() => Seen::NoneReceived,
            None => Seen::Missing,
        };
        let verdict = if known.iter().any(|(_, elapsed)| !long_enough(*elapsed)) {
            Verdict::NotMet
        } else if known.len() < received.len() {
            Verdict::NotEvaluable
        } else {
            Verdict::Met
        };
        (verdict, seen)
    }

    /// At least `count` of the listed drugs received and answered with one of `responses`; a
    /// received drug without a recorded response could still count, so it keeps an undecided rule
    /// not evaluable. Shows how many drugs qualify.
    fn prior_response(
        &self,
        drugs: &[PriorDrug],
        responses: &[TreatmentResponse],
        count: u32,
    ) -> (Verdict, Seen) {
        let Some(history) = &self.measures.treatment_history else {
            return (Verdict::NotEvaluable, Seen::Missing);
        };
        let listed = history
            .iter()
            .filter(|treatment| drugs.contains(&treatment.drug));
        let mut counts = Counts {
            met: 0,
            not_met: 0,
            not_evaluable: 0,
        };
        for treatment in listed {
            match treatment.response {
                Some(response) if responses.contains(&response) => counts.met += 1,
                Some(_) => counts.not_met += 1,
                None => counts.not_evaluable += 1,
            }
        }
        let verdict = at_least(count as usize, counts);
        (verdict, Seen::Value(Decimal::from(counts.met)))
    }

    /// The highest dose in effect within `weeks` weeks before baseline. The history is known from
    /// the first record on: when the window starts earlier, the unknown part can still be settled by
    /// what is known (a known dose above the limit is above it whatever came before).
    fn glucocorticoid_max_within(
        &self,
        weeks: u32,
        op: CompareOp,
        threshold: Decimal,
    ) -> (Verdict, Seen) {
        let history = &self.measures.glucocorticoid_history;
        let window_start = -(i32::try_from(weeks).unwrap_or(i32::MAX / 7) * 7);
        let in_effect_at_start = history
            .iter()
            .rfind(|change| change.day <= window_start)
            .map(|change| change.mg_per_day);
        let within = history
            .iter()
            .filter(|change| change.day > window_start && change.day <= 0)
            .map(|change| change.mg_per_day);
        let Some(known_max) = in_effect_at_start.into_iter().chain(within).max() else {
            return (Verdict::NotEvaluable, Seen::Missing);
        };
        let holds = op.holds(known_max, threshold);
        let verdict = if in_effect_at_start.is_some() {
            met_if(holds)
        } else {
            // Days before the first record are unknown and could only raise the maximum.
            match op {
                CompareOp::Greater | CompareOp::GreaterOrEqual if holds => Verdict::Met,
                CompareOp::Less | CompareOp::LessOrEqual if !holds => Verdict::NotMet,
                _ => Verdict::NotEvaluable,
            }
        };
        (verdict, Seen::Value(known_max))
    }

    /// The longest unbroken run at or above `mg_per_day` up to baseline. A long enough run is proof;
    /// a shorter one is not proof of the contrary, because the history before the first record is
    /// unknown, so the rule is then not evaluable rather than not met.
    fn glucocorticoid_sustained(&self, mg_per_day: Decimal, weeks: u32) -> (Verdict, Seen) {
        let history: Vec<&DoseChange> = self
            .measures
            .glucocorticoid_history
            .iter()
            .filter(|change| change.day <= 0)
            .collect();
        if history.is_empty() {
            return (Verdict::NotEvaluable, Seen::Missing);
        }
        let mut longest = 0;
        let mut run_start: Option<i32> = None;
        for (index, change) in history.iter().enumerate() {
            let next_day = history.get(index + 1).map_or(0, |next| next.day);
            if change.mg_per_day >= mg_per_day {
                let start = *run_start.get_or_insert(change.day);
                longest = longest.max(next_day - start);
            } else {
                run_start = None;
            }
        }
        let needed = i32::try_from(weeks).unwrap_or(i32::MAX / 7) * 7;
        let verdict = if longest >= needed {
            Verdict::Met
        } else {
            Verdict::NotEvaluable
        };
        (verdict, Seen::Days(longest))
    }

    fn compare(&self, measure: Measure, op: CompareOp, threshold: Decimal) -> (Verdict, Seen) {
        let measures = self.measures;
        let global = |value: Option<GlobalValue>| match value {
            Some(global) if global.scale != self.global_scale => Err(Seen::OtherScale {
                value: global.value,
                scale: global.scale.name().to_string(),
                protocol_scale: self.global_scale.name().to_string(),
            }),
            other => Ok(other.map(|global| global.value)),
        };
        let observed = match measure {
            Measure::AgeYears => Ok(measures.age_years),
            Measure::CdasiActivity => Ok(measures.cdasi_activity),
            Measure::CdasiDamage => Ok(measures.cdasi_damage),
            Measure::Mmt8Total => match measures.mmt8 {
                Some(mmt8) if mmt8.max != self.mmt8_max => Err(Seen::OtherScale {
                    value: mmt8.total,
                    scale: format!("0-{}", mmt8.max),
                    protocol_scale: format!("0-{}", self.mmt8_max),
                }),
                other => Ok(other.map(|mmt8| mmt8.total)),
            },
            Measure::PhysicianGlobal => global(measures.physician_global),
            Measure::PatientGlobal => global(measures.patient_global),
            Measure::ExtramuscularGlobal => global(measures.extramuscular_global),
            Measure::HaqDi => Ok(measures.haq_di),
            Measure::PrednisoneMgPerDay => Ok(measures.prednisone_mg_per_day),
            Measure::PrednisoneStableWeeks => Ok(measures.prednisone_stable_weeks),
            Measure::EularAcrProbabilityPercent => Ok(measures.eular_acr_probability_percent),
            Measure::Fi3PercentOfUpper => Ok(measures.fi3_percent_of_upper),
            Measure::ImmunosuppressantStableMonths => Ok(measures.immunosuppressant_stable_months),
            Measure::DiseaseDurationMonths => Ok(measures.disease_duration_months),
            Measure::GlucocorticoidTreatedWeeks => Ok(measures.glucocorticoid_treated_weeks),
        };
        let observed = match observed {
            Ok(observed) => observed,
            // A value on another scale is known but not comparable: not evaluable, and shown as seen.
            Err(other_scale) => return (Verdict::NotEvaluable, other_scale),
        };
        match observed {
            Some(value) => (met_if(op.holds(value, threshold)), Seen::Value(value)),
            None => (Verdict::NotEvaluable, Seen::Missing),
        }
    }

    /// Met when any enzyme exceeds its ULN; shows the most abnormal one (highest value / ULN).
    fn enzymes(&self, leaf: impl Fn(Verdict, Seen) -> RuleResult) -> RuleResult {
        let usable = self
            .measures
            .enzymes
            .iter()
            .filter(|enzyme| enzyme.upper_limit_of_normal > Decimal::ZERO);
        let most_abnormal = usable.max_by(|a, b| {
            // a.value / a.uln vs b.value / b.uln, cross-multiplied so no rounding decides it.
            let left = a.value.checked_mul(b.upper_limit_of_normal);
            let right = b.value.checked_mul(a.upper_limit_of_normal);
            left.cmp(&right)
        });
        match most_abnormal {
            Some(enzyme) => leaf(
                met_if(enzyme.value > enzyme.upper_limit_of_normal),
                Seen::Enzyme {
                    name: enzyme.name.clone(),
                    value: enzyme.value,
                    upper_limit_of_normal: enzyme.upper_limit_of_normal,
                },
            ),
            None => leaf(Verdict::NotEvaluable, Seen::Missing),
        }
    }
}

fn combination_head(rule: &Rule) -> String {
    match rule {
        Rule::AllOf(_) => "all of".to_string(),
        Rule::AnyOf(_) => "any of".to_string(),
        Rule::AtLeast { count, .. } => format!("at least {count} of"),
        Rule::When { .. } => "if".to_string(),
        leaf => leaf.to_string(),
    }
}

fn met_if(holds: bool) -> Verdict {
    if holds { Verdict::Met } else { Verdict::NotMet }
}

#[derive(Debug, Clone, Copy)]
struct Counts {
    met: usize,
    not_met: usize,
    not_evaluable: usize,
}

impl Counts {
    /// A part that is not applicable counts as met: its condition released the subject from it.
    fn of(parts: &[RuleResult]) -> Counts {
        let count = |wanted: &[Verdict]| {
            parts
                .iter()
                .filter(|part| wanted.contains(&part.verdict))
                .count()
        };
        Counts {
            met: count(&[Verdict::Met, Verdict::NotApplicable]),
            not_met: count(&[Verdict::NotMet]),
            not_evaluable: count(&[Verdict::NotEvaluable]),
        }
    }
}

/// At least `needed` parts met: decided as soon as the known values settle it either way.
fn at_least(needed: usize, counts: Counts) -> Verdict {
    if counts.met >= needed {
        Verdict::Met
    } else if counts.met + counts.not_evaluable < needed {
        Verdict::NotMet
    } else {
        Verdict::NotEvaluable
    }
}
