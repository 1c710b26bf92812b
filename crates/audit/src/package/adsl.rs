//! ADSL, the subject-level analysis dataset: one row per enrolled subject with identifiers,
//! demographics as enrolled, planned and actual arm, reference dates, the analysis population flags
//! and the protocol eligibility verdict. The derivations live in [`super::subject`]; this module lays
//! them out as ADaMIG 1.3 names them.

use myolog_cdisc::{DataType, Dataset, Purpose, Value};

use super::subject::SubjectFacts;
use super::{Context, PackageError, column, date_column, flag, text_or_null};

pub const NAME: &str = "ADSL";

/// The ADSL dataset of the study.
pub fn dataset(
    context: &Context<'_>,
    subjects: &[SubjectFacts<'_>],
) -> Result<Dataset, PackageError> {
    let c = |name: &str, label: &str, data_type: DataType| column(NAME, name, label, data_type);
    let columns = vec![
        c("STUDYID", "Study Identifier", DataType::String).with_key_sequence(1),
        c("USUBJID", "Unique Subject Identifier", DataType::String).with_key_sequence(2),
        c(
            "SUBJID",
            "Subject Identifier for the Study",
            DataType::String,
        ),
        c("SITEID", "Study Site Identifier", DataType::String),
        c("AGE", "Age", DataType::Integer),
        c("AGEU", "Age Units", DataType::String),
        c("SEX", "Sex", DataType::String),
        c("RACE", "Race", DataType::String),
        c("ARM", "Description of Planned Arm", DataType::String),
        c("ARMCD", "Planned Arm Code", DataType::String),
        c("ACTARM", "Description of Actual Arm", DataType::String),
        c("ACTARMCD", "Actual Arm Code", DataType::String),
        c(
            "TRT01P",
            "Planned Treatment for Period 01",
            DataType::String,
        ),
        c("TRT01A", "Actual Treatment for Period 01", DataType::String),
        date_column(NAME, "RFICDT", "Date of Informed Consent"),
        date_column(NAME, "RANDDT", "Date of Randomization"),
        date_column(NAME, "TRTSDT", "Date of First Exposure to Treatment"),
        date_column(NAME, "TRTEDT", "Date of Last Exposure to Treatment"),
        c("ITTFL", "Intent-To-Treat Population Flag", DataType::String).with_length(1),
        c("SAFFL", "Safety Population Flag", DataType::String).with_length(1),
        c("EFFFL", "Efficacy Population Flag", DataType::String).with_length(1),
        c(
            "ELIGFL",
            "Eligible per Protocol Criteria Flag",
            DataType::String,
        )
        .with_length(1),
        c("IENOTMET", "Eligibility Criteria Not Met", DataType::String),
        c("EOSSTT", "End of Study Status", DataType::String),
    ];
    let mut rows = Vec::new();
    for subject in subjects {
        let [site, age, ageu, sex, race] = subject.site_age_sex_race();
        let trt01p = if subject.arm.is_empty() {
            &subject.armcd
        } else {
            &subject.arm
        };
        let trt01a = if subject.actarm.is_empty() {
            &subject.actarmcd
        } else {
            &subject.actarm
        };
        rows.push(vec![
            Value::Text(context.study_id.to_string()),
            Value::Text(subject.usubjid.clone()),
            Value::Text(subject.subject_id.to_string()),
            site,
            age,
            ageu,
            sex,
            race,
            text_or_null(&subject.arm),
            text_or_null(&subject.armcd),
            text_or_null(&subject.actarm),
            text_or_null(&subject.actarmcd),
            text_or_null(trt01p),
            text_or_null(trt01a),
            subject.rficdt.map_or(Value::Null, Value::Date),
            Value::Date(subject.randdt),
            subject.trtsdt.map_or(Value::Null, Value::Date),
            subject.trtedt.map_or(Value::Null, Value::Date),
            flag(Some(subject.ittfl)),
            flag(Some(subject.saffl)),
            flag(Some(subject.efffl)),
            flag(subject.eligible),
            text_or_null(&subject.criteria_not_met.join(", ")),
            Value::Text(
                if subject.subject.withdrawn {
                    "DISCONTINUED"
                } else {
                    "ONGOING"
                }
                .into(),
            ),
        ]);
    }
    Ok(Dataset {
        name: NAME.into(),
        label: "Subject-Level Analysis Dataset".into(),
        item_group_oid: format!("IG.{NAME}"),
        class: "SUBJECT LEVEL ANALYSIS DATASET".into(),
        structure: "One record per subject".into(),
        purpose: Purpose::Analysis,
        is_reference_data: false,
        columns,
        rows,
    })
}
