//! CDISC Dataset-JSON 1.1 writer: `.json` (one object with `rows`) and `.ndjson` (the metadata object on
//! line 1, then one row array per line).
//!
//! Conventions, from the Dataset-JSON 1.1 specification text (committed as
//! `crates/cdisc/tests/schemas/dataset-json-1.1/dataset-json1-1.md`, beside the JSON schema):
//! - `decimal` columns carry `targetDataType: "decimal"` and their values as JSON strings with `.` as
//!   the separator, exactly the decimal's digits (no binary rounding);
//! - `float` columns are JSON numbers, written from the decimal's digits;
//! - `date`/`datetime`/`time` values are ISO 8601 strings; an ADaM numeric date is the same string with
//!   `targetDataType: "integer"`, telling the reader to convert it to a SAS day (second) number — the
//!   specification's "Supported Column Data Type Combinations" table gives the JSON type as string;
//! - missing is `null`, an empty string is `""`.
//!
//! Keys are written in the specification's attribute order and nothing depends on hash order or the
//! clock, so the output is byte-reproducible. `isReferenceData` is not written: Dataset-JSON 1.1 removed
//! it (the schema forbids unknown properties); it lives in Define-XML's ItemGroupDef.

use std::io::Write;

use crate::dates::DateTime;
use crate::error::CdiscError;
use crate::model::{DataType, Dataset, TargetDataType, Value};

/// The version written; the 1.1 schema accepts `1.1`, `1.1.0`, `1.1.1`, ...
pub const DATASET_JSON_VERSION: &str = "1.1.0";

/// File-level attributes of a Dataset-JSON file, all supplied by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetJsonFile {
    pub file_oid: String,
    /// `datasetJSONCreationDateTime`, written as UTC with a `Z`.
    pub created: DateTime,
    /// `dbLastModifiedDateTime`: when the source (the event log) last changed; not after `created`.
    pub db_last_modified: DateTime,
    pub originator: String,
    pub source_system_name: String,
    pub source_system_version: String,
    pub study_oid: String,
    pub metadata_version_oid: String,
    /// `metaDataRef`, e.g. `define.xml`.
    pub metadata_ref: Option<String>,
}

/// Writes `dataset` as one Dataset-JSON object (`.json`), one row per line inside `rows`.
pub fn write_json<W: Write>(
    out: &mut W,
    dataset: &Dataset,
    file: &DatasetJsonFile,
) -> Result<(), CdiscError> {
    let mut text = metadata_object_open(dataset, file)?;
    text.push_str(",\"rows\":[");
    for (index, row) in dataset.rows.iter().enumerate() {
        text.push_str(if index == 0 { "\n" } else { ",\n" });
        push_row(&mut text, dataset, row);
    }
    text.push_str("\n]}\n");
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// Writes `dataset` as NDJSON: metadata object (no `rows`) on line 1, then one JSON array per row.
pub fn write_ndjson<W: Write>(
    out: &mut W,
    dataset: &Dataset,
    file: &DatasetJsonFile,
) -> Result<(), CdiscError> {
    let mut text = metadata_object_open(dataset, file)?;
    text.push_str("}\n");
    for row in &dataset.rows {
        push_row(&mut text, dataset, row);
        text.push('\n');
    }
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// `{` and every attribute up to and including `columns`, without the closing brace.
fn metadata_object_open(dataset: &Dataset, file: &DatasetJsonFile) -> Result<String, CdiscError> {
    dataset.validate()?;
    if file.db_last_modified > file.created {
        return Err(CdiscError::Metadata(format!(
            "dbLastModifiedDateTime {} is after datasetJSONCreationDateTime {}",
            file.db_last_modified.iso_utc(),
            file.created.iso_utc()
        )));
    }
    for (what, value) in [
        ("fileOID", &file.file_oid),
        ("studyOID", &file.study_oid),
        ("metaDataVersionOID", &file.metadata_version_oid),
    ] {
        if value.is_empty() {
            return Err(CdiscError::Metadata(format!("{what} is empty")));
        }
    }
    let mut text = String::from("{");
    let mut first = true;
    let mut key = |text: &mut String, name: &str| {
        if !first {
            text.push(',');
        }
        first = false;
        push_string(text, name);
        text.push(':');
    };
    key(&mut text, "datasetJSONCreationDateTime");
    push_string(&mut text, &file.created.iso_utc());
    key(&mut text, "datasetJSONVersion");
    push_string(&mut text, DATASET_JSON_VERSION);
    key(&mut text, "fileOID");
    push_string(&mut text, &file.file_oid);
    key(&mut text, "dbLastModifiedDateTime");
    push_string(&mut text, &file.db_last_modified.iso_utc());
    key(&mut text, "originator");
    push_string(&mut text, &file.originator);
    key(&mut text, "sourceSystem");
    text.push_str("{\"name\":");
    push_string(&mut text, &file.source_system_name);
    text.push_str(",\"version\":");
    push_string(&mut text, &file.source_system_version);
    text.push('}');
    key(&mut text, "studyOID");
    push_string(&mut text, &file.study_oid);
    key(&mut text, "metaDataVersionOID");
    push_string(&mut text, &file.metadata_version_oid);
    if let Some(reference) = &file.metadata_ref {
        key(&mut text, "metaDataRef");
        push_string(&mut text, reference);
    }
    key(&mut text, "itemGroupOID");
    push_string(&mut text, &dataset.item_group_oid);
    key(&mut text, "records");
    text.push_str(&dataset.rows.len().to_string());
    key(&mut text, "name");
    push_string(&mut text, &dataset.name);
    key(&mut text, "label");
    push_string(&mut text, &dataset.label);
    key(&mut text, "columns");
    text.push('[');
    for (index, column) in dataset.columns.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str("{\"itemOID\":");
        push_string(&mut text, &column.item_oid);
        text.push_str(",\"name\":");
        push_string(&mut text, &column.name);
        text.push_str(",\"label\":");
        push_string(&mut text, &column.label);
        text.push_str(",\"dataType\":");
        push_string(&mut text, column.data_type.dataset_json_name());
        let target = match column.data_type {
            DataType::Decimal => Some(TargetDataType::Decimal),
            _ => column.target_data_type,
        };
        if let Some(target) = target {
            text.push_str(",\"targetDataType\":");
            push_string(&mut text, target.dataset_json_name());
        }
        let length = match column.data_type {
            DataType::String => Some(dataset.character_length(index)),
            _ => column.length.map(|l| l as usize),
        };
        if let Some(length) = length {
            text.push_str(&format!(",\"length\":{length}"));
        }
        if let Some(format) = &column.display_format {
            text.push_str(",\"displayFormat\":");
            push_string(&mut text, format);
        }
        if let Some(key) = column.key_sequence {
            text.push_str(&format!(",\"keySequence\":{key}"));
        }
        text.push('}');
    }
    text.push(']');
    Ok(text)
}

fn push_row(text: &mut String, dataset: &Dataset, row: &[Value]) {
    text.push('[');
    for (index, (column, value)) in dataset.columns.iter().zip(row).enumerate() {
        if index > 0 {
            text.push(',');
        }
        match value {
            Value::Null => text.push_str("null"),
            Value::Text(s) => push_string(text, s),
            Value::Integer(i) if column.data_type == DataType::Decimal => {
                push_string(text, &i.to_string());
            }
            Value::Integer(i) => text.push_str(&i.to_string()),
            // Decimal's Display is plain positional notation (never an exponent): valid JSON number text.
            Value::Decimal(d) if column.data_type == DataType::Float => {
                text.push_str(&d.to_string())
            }
            Value::Decimal(d) => push_string(text, &d.to_string()),
            Value::Date(d) => push_string(text, &d.to_string()),
            Value::DateTime(d) => push_string(text, &d.to_string()),
            Value::Time(t) => push_string(text, &t.to_string()),
            Value::Boolean(b) => text.push_str(if *b { "true" } else { "false" }),
        }
    }
    text.push(']');
}

/// A JSON string literal; serde_json's escaping is the reference every reader agrees with.
fn push_string(text: &mut String, value: &str) {
    // Serialising a &str cannot fail; the fallback keeps the writer panic-free regardless.
    match serde_json::to_string(value) {
        Ok(literal) => text.push_str(&literal),
        Err(_) => text.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::{CalendarDate, TimeOfDay};
    use crate::model::{Column, Purpose};
    use rust_decimal::Decimal;

    fn at(day: u8) -> DateTime {
        DateTime::new(
            CalendarDate::new(2026, 12, day).unwrap(),
            TimeOfDay::new(0, 0, 0).unwrap(),
        )
    }

    fn file() -> DatasetJsonFile {
        DatasetJsonFile {
            file_oid: "F.ADSL".into(),
            created: at(7),
            db_last_modified: at(6),
            originator: "Myolog".into(),
            source_system_name: "Myolog".into(),
            source_system_version: "0.1.0".into(),
            study_oid: "S.DM01".into(),
            metadata_version_oid: "MDV.1".into(),
            metadata_ref: None,
        }
    }

    fn dataset() -> Dataset {
        Dataset {
            name: "ADSL".into(),
            label: "Subject-Level".into(),
            item_group_oid: "IG.ADSL".into(),
            class: "SUBJECT LEVEL ANALYSIS DATASET".into(),
            structure: "One record per subject".into(),
            purpose: Purpose::Analysis,
            is_reference_data: false,
            columns: vec![
                Column::new("IT.A", "A", "Text", DataType::String),
                Column::new("IT.B", "B", "Decimal", DataType::Decimal),
                Column::new("IT.C", "C", "Float", DataType::Float),
                Column::new("IT.D", "D", "Date", DataType::Date)
                    .with_target(TargetDataType::Integer),
            ],
            rows: vec![
                vec![
                    Value::Text("a\"b".into()),
                    Value::Decimal(Decimal::new(1250, 2)),
                    Value::Decimal(Decimal::new(-5, 1)),
                    Value::Date(CalendarDate::new(2014, 1, 2).unwrap()),
                ],
                vec![
                    Value::Text(String::new()),
                    Value::Null,
                    Value::Integer(3),
                    Value::Null,
                ],
            ],
        }
    }

    #[test]
    fn ndjson_lines_and_value_conventions() {
        let mut out = Vec::new();
        write_ndjson(&mut out, &dataset(), &file()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("{\"datasetJSONCreationDateTime\":\"2026-12-07T00:00:00Z\",\"datasetJSONVersion\":\"1.1.0\""));
        assert!(lines[0].contains("{\"itemOID\":\"IT.B\",\"name\":\"B\",\"label\":\"Decimal\",\"dataType\":\"decimal\",\"targetDataType\":\"decimal\"}"));
        assert!(lines[0].contains("\"records\":2,"));
        assert_eq!(lines[1], r#"["a\"b","12.50",-0.5,"2014-01-02"]"#);
        assert_eq!(lines[2], r#"["",null,3,null]"#);
    }

    #[test]
    fn modification_after_creation_is_refused() {
        let mut late = file();
        late.db_last_modified = at(8);
        let error = write_json(&mut Vec::new(), &dataset(), &late).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("is after datasetJSONCreationDateTime")
        );
    }
}
