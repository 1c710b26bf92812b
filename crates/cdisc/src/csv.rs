//! CSV writer (RFC 4180: comma separator, CRLF line ends, fields quoted when they hold a comma, quote or
//! line break) for statisticians who want a quick look. Header row of variable names; values as text:
//! decimals with their own digits, dates and times as ISO 8601 (also ADaM numeric dates, for
//! readability), booleans `true`/`false`. Missing and empty are both an empty field: CSV cannot tell
//! them apart, so use Dataset-JSON when the difference matters.

use std::io::Write;

use crate::error::CdiscError;
use crate::model::{Dataset, text_of};

/// Writes `dataset` as CSV with a header row of column names.
pub fn write_csv<W: Write>(out: &mut W, dataset: &Dataset) -> Result<(), CdiscError> {
    dataset.validate()?;
    let mut text = String::new();
    let names: Vec<&str> = dataset.columns.iter().map(|c| c.name.as_str()).collect();
    push_line(&mut text, names.iter().copied());
    for row in &dataset.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|value| text_of(value).map(|t| t.into_owned()).unwrap_or_default())
            .collect();
        push_line(&mut text, cells.iter().map(String::as_str));
    }
    out.write_all(text.as_bytes())?;
    Ok(())
}

fn push_line<'a>(text: &mut String, cells: impl Iterator<Item = &'a str>) {
    for (index, cell) in cells.enumerate() {
        if index > 0 {
            text.push(',');
        }
        if cell.contains([',', '"', '\r', '\n']) {
            text.push('"');
            text.push_str(&cell.replace('"', "\"\""));
            text.push('"');
        } else {
            text.push_str(cell);
        }
    }
    text.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::CalendarDate;
    use crate::model::{Column, DataType, Purpose, TargetDataType, Value};
    use rust_decimal::Decimal;

    #[test]
    fn quoting_and_value_text() {
        let dataset = Dataset {
            name: "ADEFF".into(),
            label: "Efficacy".into(),
            item_group_oid: "IG.ADEFF".into(),
            class: "BASIC DATA STRUCTURE".into(),
            structure: "One record per subject per parameter per visit".into(),
            purpose: Purpose::Analysis,
            is_reference_data: false,
            columns: vec![
                Column::new("IT.A", "PARAM", "Parameter", DataType::String),
                Column::new("IT.B", "AVAL", "Analysis Value", DataType::Decimal),
                Column::new("IT.C", "ADT", "Analysis Date", DataType::Date)
                    .with_target(TargetDataType::Integer),
            ],
            rows: vec![
                vec![
                    Value::Text("MMT-8, \"total\"".into()),
                    Value::Decimal(Decimal::new(1425, 1)),
                    Value::Date(CalendarDate::new(2024, 2, 29).unwrap()),
                ],
                vec![Value::Text(String::new()), Value::Null, Value::Null],
            ],
        };
        let mut out = Vec::new();
        write_csv(&mut out, &dataset).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "PARAM,AVAL,ADT\r\n\"MMT-8, \"\"total\"\"\",142.5,2024-02-29\r\n,,\r\n"
        );
    }
}
