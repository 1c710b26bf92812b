//! SAS XPORT version 5 ("SAS transport") writer, the format FDA accepts for submission datasets, laid out
//! as SAS technical note TS-140 "Record Layout of a SAS Version 5 or 6 Data Set in SAS Transport (XPORT)
//! Format" describes: 80-byte records padded with ASCII blanks; a library header, then per dataset a member
//! header, one 140-byte NAMESTR per variable, an OBS header and the observations packed back to back.
//!
//! Numbers are 8-byte IBM hexadecimal doubles (see [`crate::ibm`] for the exact rounding rule), missing
//! numbers are `.` (0x2E then zeros), character values are blank-padded to the variable's length, and a
//! character missing and an empty string are both all blanks. Header time stamps come from the caller,
//! never the clock, so the same input always gives the same bytes.

use std::io::Write;

use crate::dates::DateTime;
use crate::error::CdiscError;
use crate::ibm;
use crate::model::{Column, DataType, Dataset, SasFormat, Value};

/// All XPORT records are this long.
const RECORD: usize = 80;
const NAMESTR_LEN: usize = 140;
/// Written where TS-140 puts the SAS release and the host; readers do not interpret them.
const SAS_VERSION: &str = "9.4";
const HOST: &str = "Myolog";

/// Writes one dataset as an XPORT v5 file (one member, as FDA expects one dataset per file).
pub fn write_xpt<W: Write>(
    out: &mut W,
    dataset: &Dataset,
    created: DateTime,
) -> Result<(), CdiscError> {
    write_xpt_library(out, &[dataset], created)
}

/// Writes several datasets as members of one XPORT v5 library file. `created` is used for every
/// created and modified stamp.
pub fn write_xpt_library<W: Write>(
    out: &mut W,
    datasets: &[&Dataset],
    created: DateTime,
) -> Result<(), CdiscError> {
    let stamp = created.xport_stamp();
    let mut bytes = Vec::new();
    bytes.extend(header_record("LIBRARY", "000000000000000000000000000000"));
    bytes.extend(record(&[
        field("SAS", 8),
        field("SAS", 8),
        field("SASLIB", 8),
        field(SAS_VERSION, 8),
        field(HOST, 8),
        field("", 24),
        field(&stamp, 16),
    ]));
    bytes.extend(record(&[field(&stamp, 16)]));
    for (index, dataset) in datasets.iter().enumerate() {
        dataset.validate()?;
        if datasets[..index].iter().any(|d| d.name == dataset.name) {
            return Err(CdiscError::dataset(
                &dataset.name,
                "is in the library twice",
            ));
        }
        member(&mut bytes, dataset, &stamp)?;
    }
    out.write_all(&bytes)?;
    Ok(())
}

fn member(bytes: &mut Vec<u8>, dataset: &Dataset, stamp: &str) -> Result<(), CdiscError> {
    let ds = dataset.name.as_str();
    require_ascii(&dataset.label).map_err(|p| CdiscError::dataset(ds, format!("label {p}")))?;
    bytes.extend(header_record("MEMBER ", "000000000000000001600000000140"));
    bytes.extend(header_record("DSCRPTR", "000000000000000000000000000000"));
    bytes.extend(record(&[
        field("SAS", 8),
        field(ds, 8),
        field("SASDATA", 8),
        field(SAS_VERSION, 8),
        field(HOST, 8),
        field("", 24),
        field(stamp, 16),
    ]));
    bytes.extend(record(&[
        field(stamp, 16),
        field("", 16),
        field(&dataset.label, 40),
        field("", 8),
    ]));
    let variables = dataset.columns.len();
    if variables > 9999 {
        return Err(CdiscError::dataset(
            ds,
            "XPORT v5 holds at most 9999 variables",
        ));
    }
    bytes.extend(header_record(
        "NAMESTR",
        &format!("000000{variables:04}00000000000000000000"),
    ));

    let lengths: Vec<usize> = (0..variables)
        .map(|i| {
            if dataset.columns[i].is_numeric_in_sas() {
                8
            } else {
                dataset.character_length(i)
            }
        })
        .collect();
    let mut namestrs = Vec::with_capacity(variables * NAMESTR_LEN);
    let mut position = 0usize;
    for (index, column) in dataset.columns.iter().enumerate() {
        namestrs.extend(namestr(dataset, column, index, lengths[index], position)?);
        position += lengths[index];
    }
    pad_to_record(&mut namestrs);
    bytes.extend(namestrs);

    bytes.extend(header_record("OBS    ", "000000000000000000000000000000"));
    let mut observations = Vec::with_capacity(position * dataset.rows.len());
    for (row_index, row) in dataset.rows.iter().enumerate() {
        for ((column, value), &length) in dataset.columns.iter().zip(row).zip(&lengths) {
            if column.is_numeric_in_sas() {
                observations.extend(numeric_cell(value));
            } else {
                let text = crate::model::text_of(value).unwrap_or_default();
                require_ascii(&text).map_err(|p| {
                    CdiscError::value(ds, row_index, &column.name, format!("value {p}"))
                })?;
                observations.extend(text.as_bytes());
                observations.extend(std::iter::repeat_n(b' ', length - text.len()));
            }
        }
    }
    pad_to_record(&mut observations);
    bytes.extend(observations);
    Ok(())
}

fn namestr(
    dataset: &Dataset,
    column: &Column,
    index: usize,
    length: usize,
    position: usize,
) -> Result<Vec<u8>, CdiscError> {
    let problem = |p: String| CdiscError::column(&dataset.name, &column.name, p);
    require_ascii(&column.label).map_err(|p| problem(format!("label {p}")))?;
    let format = match &column.display_format {
        Some(text) => SasFormat::parse(text).map_err(problem)?,
        None => default_format(column),
    };
    let numeric = column.is_numeric_in_sas();
    let int16 = |n: usize, what: &str| {
        i16::try_from(n)
            .map(i16::to_be_bytes)
            .map_err(|_| problem(format!("{what} {n} does not fit XPORT's 16-bit field")))
    };
    let mut out = Vec::with_capacity(NAMESTR_LEN);
    out.extend(int16(if numeric { 1 } else { 2 }, "type")?);
    out.extend(int16(0, "hash")?);
    out.extend(int16(length, "length")?);
    out.extend(int16(index + 1, "variable number")?);
    out.extend(field(&column.name, 8));
    out.extend(field(&column.label, 40));
    out.extend(field(&format.name, 8));
    out.extend(int16(usize::from(format.width), "format width")?);
    out.extend(int16(usize::from(format.decimals), "format decimals")?);
    // Format justification: 0 for every variable, as SAS 9.4 writes it (see tests/sas_reference.rs).
    out.extend(int16(0, "justification")?);
    out.extend([0u8; 2]);
    out.extend(field("", 8));
    out.extend(int16(0, "informat width")?);
    out.extend(int16(0, "informat decimals")?);
    let position = i32::try_from(position).map_err(|_| {
        problem(format!(
            "observation offset {position} exceeds XPORT's 32-bit field"
        ))
    })?;
    out.extend(position.to_be_bytes());
    out.extend([0u8; 52]);
    Ok(out)
}

/// Numeric dates need a format for SAS to show them as dates; ISO 8601 ones, as ADaM prefers.
fn default_format(column: &Column) -> SasFormat {
    let (name, width) = match (column.is_numeric_in_sas(), column.data_type) {
        (true, DataType::Date) => ("E8601DA", 10),
        (true, DataType::DateTime) => ("E8601DT", 19),
        (true, DataType::Time) => ("E8601TM", 8),
        _ => ("", 0),
    };
    SasFormat {
        name: name.to_owned(),
        width,
        decimals: 0,
    }
}

fn numeric_cell(value: &Value) -> ibm::IbmDouble {
    match value {
        Value::Integer(i) => ibm::from_i64(*i),
        Value::Decimal(d) => ibm::from_decimal(*d),
        Value::Boolean(b) => ibm::from_i64(i64::from(*b)),
        Value::Date(d) => ibm::from_i64(d.sas_days()),
        Value::DateTime(d) => ibm::from_i64(d.sas_seconds()),
        Value::Time(t) => ibm::from_i64(t.sas_seconds()),
        // Validation admits only Null among the rest for numeric columns.
        Value::Null | Value::Text(_) => ibm::MISSING,
    }
}

fn require_ascii(text: &str) -> Result<(), String> {
    if text.is_ascii() {
        Ok(())
    } else {
        Err(format!("{text:?} is not ASCII, which XPORT v5 requires"))
    }
}

/// `text` blank-padded (or cut) to `width` bytes. Callers pass validated ASCII, so cutting never splits a
/// character.
fn field(text: &str, width: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = text.bytes().take(width).collect();
    bytes.resize(width, b' ');
    bytes
}

fn record(fields: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes: Vec<u8> = fields.concat();
    bytes.resize(RECORD, b' ');
    bytes
}

/// `HEADER RECORD*******<kind> HEADER RECORD!!!!!!!<digits>` blank-padded to 80.
fn header_record(kind: &str, digits: &str) -> Vec<u8> {
    record(&[format!("HEADER RECORD*******{kind:<7} HEADER RECORD!!!!!!!{digits}").into_bytes()])
}

fn pad_to_record(bytes: &mut Vec<u8>) {
    let tail = bytes.len() % RECORD;
    if tail != 0 {
        bytes.resize(bytes.len() + RECORD - tail, b' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::{CalendarDate, TimeOfDay};
    use crate::model::{Purpose, TargetDataType};
    use rust_decimal::Decimal;

    fn created() -> DateTime {
        DateTime::new(
            CalendarDate::new(2026, 12, 7).unwrap(),
            TimeOfDay::new(1, 2, 3).unwrap(),
        )
    }

    fn small() -> Dataset {
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
                    "IT.ADSL.USUBJID",
                    "USUBJID",
                    "Unique Subject Identifier",
                    DataType::String,
                )
                .with_length(6),
                Column::new(
                    "IT.ADSL.TRTSDT",
                    "TRTSDT",
                    "Date of First Exposure",
                    DataType::Date,
                )
                .with_target(TargetDataType::Integer),
                Column::new("IT.ADSL.BMIBL", "BMIBL", "Baseline BMI", DataType::Decimal),
            ],
            rows: vec![
                vec![
                    Value::Text("01-001".into()),
                    Value::Date(CalendarDate::new(2014, 1, 2).unwrap()),
                    Value::Decimal(Decimal::new(1, 1)),
                ],
                vec![Value::Text(String::new()), Value::Null, Value::Null],
            ],
        }
    }

    #[test]
    fn record_layout_follows_ts_140() {
        let mut bytes = Vec::new();
        write_xpt(&mut bytes, &small(), created()).unwrap();
        assert_eq!(bytes.len() % 80, 0);
        let record = |n: usize| String::from_utf8_lossy(&bytes[n * 80..(n + 1) * 80]).into_owned();
        assert_eq!(
            record(0),
            format!(
                "{:<80}",
                "HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!000000000000000000000000000000"
            )
        );
        assert_eq!(
            record(1),
            format!(
                "{:<64}07DEC26:01:02:03",
                "SAS     SAS     SASLIB  9.4     Myolog"
            )
        );
        assert_eq!(record(2), format!("{:<80}", "07DEC26:01:02:03"));
        assert_eq!(
            record(3),
            format!(
                "{:<80}",
                "HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!000000000000000001600000000140"
            )
        );
        assert_eq!(
            record(4),
            format!(
                "{:<80}",
                "HEADER RECORD*******DSCRPTR HEADER RECORD!!!!!!!000000000000000000000000000000"
            )
        );
        assert_eq!(
            record(5),
            format!(
                "{:<64}07DEC26:01:02:03",
                "SAS     ADSL    SASDATA 9.4     Myolog"
            )
        );
        assert_eq!(
            record(6),
            format!(
                "07DEC26:01:02:03{:16}{:<40}{:8}",
                "", "Subject-Level Analysis Dataset", ""
            )
        );
        assert_eq!(
            record(7),
            format!(
                "{:<80}",
                "HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!000000000300000000000000000000"
            )
        );
        // Three NAMESTRs (420 bytes) fill six records (480 bytes).
        let namestrs = &bytes[8 * 80..14 * 80];
        let second = &namestrs[140..280];
        assert_eq!(&second[0..8], &[0, 1, 0, 0, 0, 8, 0, 2]);
        assert_eq!(&second[8..16], b"TRTSDT  ");
        assert_eq!(&second[56..64], b"E8601DA ");
        assert_eq!(&second[64..66], &[0, 10]);
        assert_eq!(&second[84..88], &[0, 0, 0, 6]);
        assert!(namestrs[420..].iter().all(|&b| b == b' '));
        assert_eq!(
            record(14),
            format!(
                "{:<80}",
                "HEADER RECORD*******OBS     HEADER RECORD!!!!!!!000000000000000000000000000000"
            )
        );
        let obs = &bytes[15 * 80..];
        assert_eq!(obs.len(), 80);
        assert_eq!(&obs[0..6], b"01-001");
        assert_eq!(&obs[6..14], &[0x44, 0x4D, 0x0D, 0, 0, 0, 0, 0]);
        assert_eq!(
            &obs[14..22],
            &[0x40, 0x19, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9A]
        );
        assert_eq!(&obs[22..28], b"      ");
        assert_eq!(&obs[28..36], &ibm::MISSING);
        assert_eq!(&obs[36..44], &ibm::MISSING);
        assert!(obs[44..].iter().all(|&b| b == b' '));
    }

    #[test]
    fn a_library_holds_each_member_once() {
        let (a, mut b) = (small(), small());
        let mut bytes = Vec::new();
        let error = write_xpt_library(&mut bytes, &[&a, &b], created()).unwrap_err();
        assert_eq!(error.to_string(), "dataset ADSL: is in the library twice");
        b.name = "ADSL2".into();
        write_xpt_library(&mut bytes, &[&a, &b], created()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(
            text.matches("HEADER RECORD*******MEMBER  HEADER RECORD")
                .count(),
            2
        );
        assert!(text.contains("SAS     ADSL2   SASDATA "));
    }

    #[test]
    fn non_ascii_text_is_refused_with_its_place() {
        let mut dataset = small();
        dataset.rows[1][0] = Value::Text("Zoë".into());
        let error = write_xpt(&mut Vec::new(), &dataset, created()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("dataset ADSL, row 2, column USUBJID: value \"Zoë\" is not ASCII")
        );
    }
}
