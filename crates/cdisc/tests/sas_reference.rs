//! A reference written by SAS itself: CDISC's ADSL example (`tests/data/cdisc-example/`, SAS 9.4 XPORT
//! and CDISC's Dataset-JSON 1.1 conversion of it). The dataset is rebuilt from the JSON, written with this
//! crate, and compared with SAS's XPORT file through a small reader of the TS-140 layout written here:
//! every NAMESTR field, every character value byte for byte, every integer and date bit for bit, and
//! every other number to within one IEEE double ulp (SAS converted from an IEEE double, this crate from
//! the decimal text). The rebuilt dataset must also give back CDISC's JSON document.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

use std::path::PathBuf;
use std::str::FromStr;

use myolog_cdisc::dataset_json::{DatasetJsonFile, write_json};
use myolog_cdisc::xpt::write_xpt;
use myolog_cdisc::{
    CalendarDate, Column, DataType, Dataset, DateTime, Purpose, TargetDataType, TimeOfDay, Value,
};
use rust_decimal::Decimal;
use serde_json::Value as Json;

fn example(file: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cdisc-example")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn iso_date(text: &str) -> CalendarDate {
    let parts: Vec<&str> = text.split('-').collect();
    CalendarDate::new(
        parts[0].parse().unwrap(),
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
    )
    .unwrap()
}

fn iso_datetime(text: &str) -> DateTime {
    let (date, time) = text.split_once('T').unwrap();
    let hms: Vec<u8> = time.split(':').map(|p| p.parse().unwrap()).collect();
    DateTime::new(
        iso_date(date),
        TimeOfDay::new(hms[0], hms[1], hms[2]).unwrap(),
    )
}

fn decimal(number: &serde_json::Number) -> Decimal {
    let text = number.to_string();
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .unwrap()
}

/// The Dataset-JSON document as this crate's model.
fn dataset_from(document: &Json) -> Dataset {
    let columns: Vec<Column> = document["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let data_type = match c["dataType"].as_str().unwrap() {
                "string" => DataType::String,
                "integer" => DataType::Integer,
                "float" => DataType::Float,
                "decimal" => DataType::Decimal,
                "date" => DataType::Date,
                "datetime" => DataType::DateTime,
                other => panic!("data type {other} is not in the example"),
            };
            let mut column = Column::new(
                c["itemOID"].as_str().unwrap(),
                c["name"].as_str().unwrap(),
                c["label"].as_str().unwrap(),
                data_type,
            );
            if c["targetDataType"] == "integer" {
                column = column.with_target(TargetDataType::Integer);
            }
            if let Some(length) = c["length"].as_u64() {
                column = column.with_length(length as u32);
            }
            if let Some(format) = c["displayFormat"].as_str() {
                column = column.with_display_format(format);
            }
            if let Some(key) = c["keySequence"].as_u64() {
                column = column.with_key_sequence(key as u32);
            }
            column
        })
        .collect();
    let rows = document["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .zip(&columns)
                .map(|(cell, column)| match (cell, column.data_type) {
                    (Json::Null, _) => Value::Null,
                    (Json::String(s), DataType::Date) if column.target_data_type.is_some() => {
                        Value::Date(iso_date(s))
                    }
                    (Json::String(s), _) => Value::Text(s.clone()),
                    (Json::Number(n), DataType::Integer) => Value::Integer(n.as_i64().unwrap()),
                    (Json::Number(n), _) => Value::Decimal(decimal(n)),
                    (other, _) => panic!("cell {other} is not in the example"),
                })
                .collect()
        })
        .collect();
    Dataset {
        name: document["name"].as_str().unwrap().into(),
        label: document["label"].as_str().unwrap().into(),
        item_group_oid: document["itemGroupOID"].as_str().unwrap().into(),
        class: "SUBJECT LEVEL ANALYSIS DATASET".into(),
        structure: "One record per subject".into(),
        purpose: Purpose::Analysis,
        is_reference_data: false,
        columns,
        rows,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Variable {
    numeric: bool,
    length: usize,
    number: u16,
    name: String,
    label: String,
    format: String,
    width: u16,
    decimals: u16,
    justification: u16,
    position: usize,
}

struct Member {
    name: String,
    label: String,
    variables: Vec<Variable>,
    observations: Vec<u8>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// The first member of an XPORT v5 file, read as TS-140 lays it out.
fn read_member(bytes: &[u8]) -> Member {
    let records: Vec<&[u8]> = bytes.chunks(80).collect();
    let find = |kind: &str| {
        let header = format!("HEADER RECORD*******{kind:<7} HEADER RECORD!!!!!!!");
        records
            .iter()
            .position(|r| r.starts_with(header.as_bytes()))
            .unwrap_or_else(|| panic!("no {kind} header"))
    };
    let member = find("MEMBER");
    assert!(records[member].starts_with(
        b"HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!000000000000000001600000000140"
    ));
    let descriptor = find("DSCRPTR");
    let name = text(&records[descriptor + 1][8..16]);
    let label = text(&records[descriptor + 2][32..72]);
    let namestr = find("NAMESTR");
    let count: usize = std::str::from_utf8(&records[namestr][54..58])
        .unwrap()
        .parse()
        .unwrap();
    let start = (namestr + 1) * 80;
    let variables = (0..count)
        .map(|i| {
            let n = &bytes[start + i * 140..start + (i + 1) * 140];
            Variable {
                numeric: u16_at(n, 0) == 1,
                length: usize::from(u16_at(n, 4)),
                number: u16_at(n, 6),
                name: text(&n[8..16]),
                label: text(&n[16..56]),
                format: text(&n[56..64]),
                width: u16_at(n, 64),
                decimals: u16_at(n, 66),
                justification: u16_at(n, 68),
                position: u32::from_be_bytes([n[84], n[85], n[86], n[87]]) as usize,
            }
        })
        .collect();
    let obs = find("OBS");
    Member {
        name,
        label,
        variables,
        observations: bytes[(obs + 1) * 80..].to_vec(),
    }
}

#[test]
fn our_xport_matches_the_one_sas_wrote() {
    let document: Json = serde_json::from_slice(&example("adsl.json")).unwrap();
    let mut dataset = dataset_from(&document);
    // The JSON gives no length for its two character datetime columns; SAS's file declares 20.
    for column in dataset
        .columns
        .iter_mut()
        .filter(|c| c.name == "RFSTDTC" || c.name == "RFENDTC")
    {
        assert_eq!(column.length, None);
        column.length = Some(20);
    }
    let mut ours = Vec::new();
    write_xpt(&mut ours, &dataset, iso_datetime("2022-04-16T20:09:03")).unwrap();
    let sas = read_member(&example("adsl.xpt"));
    let ours = read_member(&ours);
    assert_eq!(ours.name, sas.name);
    // CDISC's JSON labels the dataset "Subject-Level Analysis", SAS's file "... Dataset"; ours follows the
    // JSON it was built from.
    assert_eq!(
        (ours.label.as_str(), sas.label.as_str()),
        ("Subject-Level Analysis", "Subject-Level Analysis Dataset")
    );
    assert_eq!(ours.variables.len(), sas.variables.len());
    for (mine, theirs) in ours.variables.iter().zip(&sas.variables) {
        assert_eq!(mine, theirs, "NAMESTR of {}", mine.name);
    }
    let row_length: usize = sas.variables.iter().map(|v| v.length).sum();
    let rows = dataset.rows.len();
    assert_eq!(ours.observations.len(), sas.observations.len());
    assert!(
        ours.observations[rows * row_length..]
            .iter()
            .all(|&b| b == b' ')
    );
    let (mut exact, mut within_ulp) = (0, 0);
    for row in 0..rows {
        for (variable, column) in sas.variables.iter().zip(&dataset.columns) {
            let at = row * row_length + variable.position;
            let (mine, theirs) = (
                &ours.observations[at..at + variable.length],
                &sas.observations[at..at + variable.length],
            );
            if mine == theirs {
                exact += 1;
                continue;
            }
            let integral =
                column.data_type == DataType::Integer || column.target_data_type.is_some();
            assert!(
                variable.numeric && !integral,
                "row {row}, {}: ours {mine:02X?}, SAS {theirs:02X?}",
                variable.name
            );
            // Same sign and exponent, fractions within 8 units of the 56-bit fraction: one ulp of the
            // 53-bit IEEE double SAS converted from.
            let fraction =
                |b: &[u8]| u64::from_be_bytes([0, b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            assert_eq!(mine[0], theirs[0], "row {row}, {}", variable.name);
            assert!(
                fraction(mine).abs_diff(fraction(theirs)) <= 8,
                "row {row}, {}: ours {mine:02X?}, SAS {theirs:02X?}",
                variable.name
            );
            within_ulp += 1;
        }
    }
    assert_eq!(exact + within_ulp, rows * dataset.columns.len());
    assert!(
        exact > within_ulp * 10,
        "{exact} exact, {within_ulp} within one ulp"
    );
    eprintln!("{exact} values identical to SAS's bytes, {within_ulp} within one IEEE ulp");
}

#[test]
fn our_dataset_json_gives_back_cdiscs_document() {
    let theirs: Json = serde_json::from_slice(&example("adsl.json")).unwrap();
    let dataset = dataset_from(&theirs);
    let file = DatasetJsonFile {
        file_oid: theirs["fileOID"].as_str().unwrap().into(),
        created: iso_datetime(theirs["datasetJSONCreationDateTime"].as_str().unwrap()),
        db_last_modified: iso_datetime(theirs["dbLastModifiedDateTime"].as_str().unwrap()),
        originator: theirs["originator"].as_str().unwrap().into(),
        source_system_name: theirs["sourceSystem"]["name"].as_str().unwrap().into(),
        source_system_version: theirs["sourceSystem"]["version"].as_str().unwrap().into(),
        study_oid: theirs["studyOID"].as_str().unwrap().into(),
        metadata_version_oid: theirs["metaDataVersionOID"].as_str().unwrap().into(),
        metadata_ref: theirs["metaDataRef"].as_str().map(Into::into),
    };
    let mut out = Vec::new();
    write_json(&mut out, &dataset, &file).unwrap();
    let mut ours: Json = serde_json::from_slice(&out).unwrap();
    // Ours says the times are UTC; CDISC's leave the zone unsaid.
    for key in ["datasetJSONCreationDateTime", "dbLastModifiedDateTime"] {
        let text = ours[key]
            .as_str()
            .unwrap()
            .strip_suffix('Z')
            .unwrap()
            .to_owned();
        ours[key] = text.into();
    }
    assert_eq!(ours, theirs);
}
