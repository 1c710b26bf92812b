//! Datasets and file attributes shared by the integration tests: a small subject-level dataset and a
//! parameter-per-row efficacy dataset that between them use every data type, missing and empty values,
//! decimals that binary floating point cannot hold, negative numbers, dates before 1960 and characters
//! that need escaping in JSON, CSV and XML.
#![allow(dead_code)] // Each test binary uses a different part of the fixtures.
#![allow(clippy::unwrap_used)] // A fixture that cannot be built should fail the test at once.

use std::str::FromStr;

use myolog_cdisc::dataset_json::DatasetJsonFile;
use myolog_cdisc::{
    CalendarDate, Column, DataType, Dataset, DateTime, Purpose, TargetDataType, TimeOfDay, Value,
};
use rust_decimal::Decimal;

pub fn at(year: i32, month: u8, day: u8, hour: u8) -> DateTime {
    DateTime::new(
        CalendarDate::new(year, month, day).unwrap(),
        TimeOfDay::new(hour, 30, 15).unwrap(),
    )
}

pub fn date(year: i32, month: u8, day: u8) -> Value {
    Value::Date(CalendarDate::new(year, month, day).unwrap())
}

pub fn dec(text: &str) -> Value {
    Value::Decimal(Decimal::from_str(text).unwrap())
}

pub fn text(t: &str) -> Value {
    Value::Text(t.to_owned())
}

pub fn created() -> DateTime {
    at(2026, 12, 7, 3)
}

pub fn file(dataset: &Dataset) -> DatasetJsonFile {
    DatasetJsonFile {
        file_oid: format!("MYOLOG.DM01.{}", dataset.name),
        created: created(),
        db_last_modified: at(2026, 12, 6, 23),
        originator: "Myolog test suite".into(),
        source_system_name: "Myolog".into(),
        source_system_version: "0.1.0".into(),
        study_oid: "STUDY.DM01".into(),
        metadata_version_oid: "MDV.DM01.ADAM".into(),
        metadata_ref: Some("define.xml".into()),
    }
}

pub fn adsl() -> Dataset {
    Dataset {
        name: "ADSL".into(),
        label: "Subject-Level Analysis Dataset".into(),
        item_group_oid: "IG.ADSL".into(),
        class: "SUBJECT LEVEL ANALYSIS DATASET".into(),
        structure: "One record per subject".into(),
        purpose: Purpose::Analysis,
        is_reference_data: false,
        columns: vec![
            Column::new(
                "IT.ADSL.STUDYID",
                "STUDYID",
                "Study Identifier",
                DataType::String,
            )
            .with_length(8),
            Column::new(
                "IT.ADSL.USUBJID",
                "USUBJID",
                "Unique Subject Identifier",
                DataType::String,
            )
            .with_key_sequence(1),
            Column::new("IT.ADSL.AGE", "AGE", "Age", DataType::Integer).with_length(3),
            Column::new("IT.ADSL.SEX", "SEX", "Sex", DataType::String).with_length(1),
            Column::new(
                "IT.ADSL.HEIGHTBL",
                "HEIGHTBL",
                "Baseline Height (cm)",
                DataType::Decimal,
            ),
            Column::new(
                "IT.ADSL.WEIGHTBL",
                "WEIGHTBL",
                "Baseline Weight (kg)",
                DataType::Float,
            ),
            Column::new(
                "IT.ADSL.TRTSDT",
                "TRTSDT",
                "Date of First Exposure to Treatment",
                DataType::Date,
            )
            .with_target(TargetDataType::Integer)
            .with_display_format("DATE9."),
            Column::new("IT.ADSL.BRTHDT", "BRTHDT", "Date of Birth", DataType::Date)
                .with_target(TargetDataType::Integer),
            Column::new(
                "IT.ADSL.RANDDTM",
                "RANDDTM",
                "Datetime of Randomization",
                DataType::DateTime,
            )
            .with_target(TargetDataType::Integer),
            Column::new(
                "IT.ADSL.RFSTDTC",
                "RFSTDTC",
                "Subject Reference Start Date/Time",
                DataType::Date,
            ),
            Column::new(
                "IT.ADSL.SAFFL",
                "SAFFL",
                "Safety Population Flag",
                DataType::String,
            )
            .with_length(1),
            Column::new(
                "IT.ADSL.ITTFL",
                "ITTFL",
                "Intent-To-Treat Flag (1/0)",
                DataType::Boolean,
            ),
            Column::new(
                "IT.ADSL.DCSREAS",
                "DCSREAS",
                "Reason for Discontinuation from Study",
                DataType::String,
            ),
        ],
        rows: vec![
            vec![
                text("DM01"),
                text("DM01-001"),
                Value::Integer(54),
                text("F"),
                dec("162.9"),
                dec("61.35"),
                date(2024, 1, 2),
                date(1955, 7, 14),
                Value::DateTime(at(2023, 12, 28, 9)),
                text("2024-01-02"),
                text("Y"),
                Value::Boolean(true),
                text(""),
            ],
            vec![
                text("DM01"),
                text("DM01-002"),
                Value::Integer(37),
                text("M"),
                dec("171.1"),
                dec("0.1"),
                date(1960, 1, 1),
                date(1986, 2, 28),
                Value::Null,
                text("2024-02"),
                text("N"),
                Value::Boolean(false),
                text("Withdrawal by subject, \"personal\" <reasons> & other"),
            ],
            vec![
                text("DM01"),
                text("DM01-003"),
                Value::Null,
                text(""),
                Value::Null,
                dec("-12.375"),
                Value::Null,
                date(1959, 12, 31),
                Value::DateTime(at(1959, 12, 31, 23)),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ],
        ],
    }
}

/// Parameter codes of the efficacy dataset with the label and decimals of each.
pub const PARAMETERS: [(&str, &str); 3] = [
    ("MMT8", "Manual Muscle Testing, 8 muscles (0-150)"),
    ("PGA", "Physician Global Activity VAS (cm)"),
    ("TIS", "Total Improvement Score (0-100)"),
];

pub fn adeff() -> Dataset {
    let mut rows = Vec::new();
    let values = [
        ("DM01-001", "MMT8", "Baseline", dec("118"), date(2024, 1, 2)),
        ("DM01-001", "PGA", "Baseline", dec("6.25"), date(2024, 1, 2)),
        ("DM01-001", "MMT8", "Week 24", dec("139"), date(2024, 6, 18)),
        ("DM01-001", "TIS", "Week 24", dec("42.5"), date(2024, 6, 18)),
        ("DM01-002", "MMT8", "Baseline", dec("97"), date(2024, 2, 5)),
        ("DM01-002", "PGA", "Week 24", Value::Null, Value::Null),
        (
            "DM01-002",
            "TIS",
            "Week 24",
            dec("0.00001"),
            date(2024, 7, 22),
        ),
    ];
    for (index, (subject, paramcd, visit, aval, adt)) in values.into_iter().enumerate() {
        let param = PARAMETERS
            .iter()
            .find(|(code, _)| *code == paramcd)
            .map(|(_, label)| *label)
            .unwrap();
        rows.push(vec![
            text("DM01"),
            text(subject),
            text(paramcd),
            text(param),
            text(visit),
            aval,
            adt,
            Value::Integer(index as i64 + 1),
        ]);
    }
    Dataset {
        name: "ADEFF".into(),
        label: "Efficacy Analysis Dataset".into(),
        item_group_oid: "IG.ADEFF".into(),
        class: "BASIC DATA STRUCTURE".into(),
        structure: "One record per subject per parameter per analysis visit".into(),
        purpose: Purpose::Analysis,
        is_reference_data: false,
        columns: vec![
            Column::new(
                "IT.ADEFF.STUDYID",
                "STUDYID",
                "Study Identifier",
                DataType::String,
            ),
            Column::new(
                "IT.ADEFF.USUBJID",
                "USUBJID",
                "Unique Subject Identifier",
                DataType::String,
            )
            .with_key_sequence(1),
            Column::new(
                "IT.ADEFF.PARAMCD",
                "PARAMCD",
                "Parameter Code",
                DataType::String,
            )
            .with_length(8)
            .with_key_sequence(2),
            Column::new("IT.ADEFF.PARAM", "PARAM", "Parameter", DataType::String),
            Column::new(
                "IT.ADEFF.AVISIT",
                "AVISIT",
                "Analysis Visit",
                DataType::String,
            )
            .with_key_sequence(3),
            Column::new("IT.ADEFF.AVAL", "AVAL", "Analysis Value", DataType::Decimal),
            Column::new("IT.ADEFF.ADT", "ADT", "Analysis Date", DataType::Date)
                .with_target(TargetDataType::Integer)
                .with_display_format("E8601DA."),
            Column::new(
                "IT.ADEFF.ASEQ",
                "ASEQ",
                "Analysis Sequence Number",
                DataType::Integer,
            ),
        ],
        rows,
    }
}
