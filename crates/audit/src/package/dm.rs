//! SDTM DM (Demographics), one row per subject: identifiers, reference dates as ISO 8601 text
//! (RFICDTC informed consent, RFSTDTC/RFENDTC first and last study drug), site, age, sex and race as
//! enrolled, planned and actual arm. COUNTRY is not recorded in the log, so it is missing, never
//! guessed from a site id.

use myolog_cdisc::{DataType, Dataset, Purpose, Value};

use super::subject::SubjectFacts;
use super::{Context, PackageError, column, text_or_null};

pub const NAME: &str = "DM";

/// The DM dataset of the study.
pub fn dataset(
    context: &Context<'_>,
    subjects: &[SubjectFacts<'_>],
) -> Result<Dataset, PackageError> {
    let c = |name: &str, label: &str, data_type: DataType| column(NAME, name, label, data_type);
    let columns = vec![
        c("STUDYID", "Study Identifier", DataType::String).with_key_sequence(1),
        c("DOMAIN", "Domain Abbreviation", DataType::String).with_length(2),
        c("USUBJID", "Unique Subject Identifier", DataType::String).with_key_sequence(2),
        c(
            "SUBJID",
            "Subject Identifier for the Study",
            DataType::String,
        ),
        // SDTM --DTC: ISO 8601 text (a date column without a numeric target is character).
        c(
            "RFSTDTC",
            "Subject Reference Start Date/Time",
            DataType::Date,
        ),
        c("RFENDTC", "Subject Reference End Date/Time", DataType::Date),
        c("RFICDTC", "Date/Time of Informed Consent", DataType::Date),
        c("SITEID", "Study Site Identifier", DataType::String),
        c("AGE", "Age", DataType::Integer),
        c("AGEU", "Age Units", DataType::String),
        c("SEX", "Sex", DataType::String),
        c("RACE", "Race", DataType::String),
        c("ARMCD", "Planned Arm Code", DataType::String),
        c("ARM", "Description of Planned Arm", DataType::String),
        c("ACTARMCD", "Actual Arm Code", DataType::String),
        c("ACTARM", "Description of Actual Arm", DataType::String),
        c("COUNTRY", "Country", DataType::String),
    ];
    let rows = subjects
        .iter()
        .map(|subject| {
            let [site, age, ageu, sex, race] = subject.site_age_sex_race();
            vec![
                Value::Text(context.study_id.to_string()),
                Value::Text(NAME.into()),
                Value::Text(subject.usubjid.clone()),
                Value::Text(subject.subject_id.to_string()),
                subject.trtsdt.map_or(Value::Null, Value::Date),
                subject.trtedt.map_or(Value::Null, Value::Date),
                subject.rficdt.map_or(Value::Null, Value::Date),
                site,
                age,
                ageu,
                sex,
                race,
                text_or_null(&subject.armcd),
                text_or_null(&subject.arm),
                text_or_null(&subject.actarmcd),
                text_or_null(&subject.actarm),
                Value::Null,
            ]
        })
        .collect();
    Ok(Dataset {
        name: NAME.into(),
        label: "Demographics".into(),
        item_group_oid: format!("IG.{NAME}"),
        class: "SPECIAL PURPOSE".into(),
        structure: "One record per subject".into(),
        purpose: Purpose::Tabulation,
        is_reference_data: false,
        columns,
        rows,
    })
}
