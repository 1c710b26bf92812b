//! The dataset model every writer reads: a dataset's description (name, label, class, columns) and its
//! rows of typed values, and the checks that make a dataset writable in all formats (SAS V5 name and
//! label limits, value types that fit the column, lengths).

use rust_decimal::Decimal;

use crate::dates::{CalendarDate, DateTime, TimeOfDay};
use crate::error::CdiscError;

/// SAS V5 (and so FDA) limit on dataset and variable names.
pub const MAX_NAME_LEN: usize = 8;
/// SAS V5 limit on dataset and variable labels.
pub const MAX_LABEL_LEN: usize = 40;
/// SAS V5 limit on a character variable's length in bytes.
pub const MAX_TEXT_BYTES: usize = 200;

/// Define-XML `Purpose` of an ItemGroupDef: ADaM datasets are Analysis, SDTM/SEND ones Tabulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Analysis,
    Tabulation,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Analysis => "Analysis",
            Self::Tabulation => "Tabulation",
        }
    }
}

/// Logical data type of a column, as Dataset-JSON 1.1's `dataType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    String,
    Integer,
    /// Exact decimal: a JSON string in Dataset-JSON, a number in XPORT.
    Decimal,
    /// Approximate number: a JSON number in Dataset-JSON, a number in XPORT. Values are still given
    /// as `Value::Decimal` so no binary rounding happens before the final encoding.
    Float,
    Date,
    DateTime,
    Time,
    Boolean,
}

impl DataType {
    /// The Dataset-JSON `dataType` value.
    pub fn dataset_json_name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Decimal => "decimal",
            Self::Float => "float",
            Self::Date => "date",
            Self::DateTime => "datetime",
            Self::Time => "time",
            Self::Boolean => "boolean",
        }
    }
}

/// Dataset-JSON 1.1 `targetDataType`: the type a reader should convert the JSON value to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetDataType {
    /// For date/datetime/time columns: a SAS day/second number (the ADaM numeric date convention).
    Integer,
    /// For decimal columns, exchanged as JSON strings.
    Decimal,
}

impl TargetDataType {
    pub fn dataset_json_name(self) -> &'static str {
        match self {
            Self::Integer => "integer",
            Self::Decimal => "decimal",
        }
    }
}

/// One variable of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// `IT.<DATASET>.<NAME>` by convention; the key shared with Define-XML's ItemDef.
    pub item_oid: String,
    pub name: String,
    pub label: String,
    pub data_type: DataType,
    pub target_data_type: Option<TargetDataType>,
    /// Character columns: the declared length in bytes (defaults to the longest value, at least 1).
    /// Numeric columns: the Define-XML Length; XPORT always stores 8 bytes.
    pub length: Option<u32>,
    /// A SAS format such as `DATE9.` or `8.2`.
    pub display_format: Option<String>,
    /// 1-based position among the dataset's keys.
    pub key_sequence: Option<u32>,
}

impl Column {
    /// A column with no target type, length, format or key.
    pub fn new(item_oid: &str, name: &str, label: &str, data_type: DataType) -> Self {
        Self {
            item_oid: item_oid.to_owned(),
            name: name.to_owned(),
            label: label.to_owned(),
            data_type,
            target_data_type: None,
            length: None,
            display_format: None,
            key_sequence: None,
        }
    }

    pub fn with_target(mut self, target: TargetDataType) -> Self {
        self.target_data_type = Some(target);
        self
    }

    pub fn with_length(mut self, length: u32) -> Self {
        self.length = Some(length);
        self
    }

    pub fn with_display_format(mut self, format: &str) -> Self {
        self.display_format = Some(format.to_owned());
        self
    }

    pub fn with_key_sequence(mut self, key: u32) -> Self {
        self.key_sequence = Some(key);
        self
    }

    /// Whether the column is numeric in XPORT (and SAS): numbers, booleans (1/0) and the ADaM numeric
    /// dates, times and datetimes (`targetDataType` integer).
    pub fn is_numeric_in_sas(&self) -> bool {
        match self.data_type {
            DataType::Integer | DataType::Decimal | DataType::Float | DataType::Boolean => true,
            DataType::Date | DataType::DateTime | DataType::Time => {
                self.target_data_type == Some(TargetDataType::Integer)
            }
            DataType::String => false,
        }
    }
}

/// One cell. `Null` (missing) and `Text("")` (empty) differ in Dataset-JSON (`null` vs `""`); XPORT
/// writes both as blanks for character columns, and a numeric missing is only ever `Null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Text(String),
    Integer(i64),
    Decimal(Decimal),
    Date(CalendarDate),
    DateTime(DateTime),
    Time(TimeOfDay),
    Boolean(bool),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Text(_) => "text",
            Self::Integer(_) => "integer",
            Self::Decimal(_) => "decimal",
            Self::Date(_) => "date",
            Self::DateTime(_) => "datetime",
            Self::Time(_) => "time",
            Self::Boolean(_) => "boolean",
        }
    }
}

/// A dataset: its description and its rows, each row one value per column in column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub name: String,
    pub label: String,
    /// `IG.<NAME>` by convention; the key shared with Define-XML's ItemGroupDef.
    pub item_group_oid: String,
    /// Define-XML `def:Class`, e.g. `SUBJECT LEVEL ANALYSIS DATASET` or `BASIC DATA STRUCTURE`.
    pub class: String,
    /// Define-XML `def:Structure`, e.g. `One record per subject`.
    pub structure: String,
    pub purpose: Purpose,
    pub is_reference_data: bool,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

impl Dataset {
    /// Checks everything the writers rely on; each writer calls it first.
    pub fn validate(&self) -> Result<(), CdiscError> {
        let ds = self.name.as_str();
        check_sas_name(&self.name).map_err(|p| CdiscError::dataset(ds, p))?;
        check_label(&self.label).map_err(|p| CdiscError::dataset(ds, p))?;
        if self.item_group_oid.is_empty() {
            return Err(CdiscError::dataset(ds, "item_group_oid is empty"));
        }
        if self.columns.is_empty() {
            return Err(CdiscError::dataset(ds, "has no columns"));
        }
        let mut keys = Vec::new();
        for (index, column) in self.columns.iter().enumerate() {
            let col = column.name.as_str();
            check_sas_name(col).map_err(|p| CdiscError::column(ds, col, p))?;
            check_label(&column.label).map_err(|p| CdiscError::column(ds, col, p))?;
            if column.item_oid.is_empty() {
                return Err(CdiscError::column(ds, col, "item_oid is empty"));
            }
            if let Some(other) = self.columns[..index].iter().find(|c| c.name == column.name) {
                return Err(CdiscError::column(
                    ds,
                    col,
                    format!(
                        "name used twice (item OIDs {} and {})",
                        other.item_oid, column.item_oid
                    ),
                ));
            }
            if self.columns[..index]
                .iter()
                .any(|c| c.item_oid == column.item_oid)
            {
                return Err(CdiscError::column(
                    ds,
                    col,
                    format!("item OID {} used twice", column.item_oid),
                ));
            }
            check_target(column).map_err(|p| CdiscError::column(ds, col, p))?;
            if let Some(length) = column.length {
                if length == 0 {
                    return Err(CdiscError::column(ds, col, "length must be at least 1"));
                }
                if column.data_type == DataType::String && length as usize > MAX_TEXT_BYTES {
                    return Err(CdiscError::column(
                        ds,
                        col,
                        format!(
                            "length {length} exceeds the SAS V5 limit of {MAX_TEXT_BYTES} bytes"
                        ),
                    ));
                }
            }
            if let Some(format) = &column.display_format {
                SasFormat::parse(format).map_err(|p| CdiscError::column(ds, col, p))?;
            }
            if let Some(key) = column.key_sequence {
                if key == 0 {
                    return Err(CdiscError::column(ds, col, "key_sequence starts at 1"));
                }
                if keys.contains(&key) {
                    return Err(CdiscError::column(
                        ds,
                        col,
                        format!("key_sequence {key} used twice"),
                    ));
                }
                keys.push(key);
            }
        }
        for (row_index, row) in self.rows.iter().enumerate() {
            if row.len() != self.columns.len() {
                return Err(CdiscError::dataset(
                    ds,
                    format!(
                        "row {} has {} values for {} columns",
                        row_index + 1,
                        row.len(),
                        self.columns.len()
                    ),
                ));
            }
            for (column, value) in self.columns.iter().zip(row) {
                check_value(column, value)
                    .map_err(|p| CdiscError::value(ds, row_index, &column.name, p))?;
            }
        }
        Ok(())
    }

    /// The byte length a character column occupies: its declared length, else its longest value, at
    /// least 1. Only meaningful for columns that are character in SAS.
    pub fn character_length(&self, column_index: usize) -> usize {
        let declared = self
            .columns
            .get(column_index)
            .and_then(|c| c.length)
            .map(|l| l as usize);
        declared.unwrap_or_else(|| {
            self.rows
                .iter()
                .filter_map(|row| row.get(column_index).and_then(text_of))
                .map(|t| t.len())
                .max()
                .unwrap_or(0)
                .max(1)
        })
    }
}

/// The text a character cell carries in SAS and CSV: dates and times as ISO 8601, `None` for missing.
pub(crate) fn text_of(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match value {
        Value::Null => None,
        Value::Text(text) => Some(Cow::Borrowed(text)),
        Value::Integer(i) => Some(Cow::Owned(i.to_string())),
        Value::Decimal(d) => Some(Cow::Owned(d.to_string())),
        Value::Date(d) => Some(Cow::Owned(d.to_string())),
        Value::DateTime(d) => Some(Cow::Owned(d.to_string())),
        Value::Time(t) => Some(Cow::Owned(t.to_string())),
        Value::Boolean(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
    }
}

/// SAS V5 names: 1-8 characters, uppercase ASCII letters, digits or underscores, starting with a letter.
fn check_sas_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "name {name:?} must be 1 to {MAX_NAME_LEN} characters"
        ));
    }
    let mut chars = name.chars();
    let first_is_letter = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    if !first_is_letter || !chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!(
            "name {name:?} must be uppercase letters, digits or underscores, starting with a letter"
        ));
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), String> {
    if label.chars().count() > MAX_LABEL_LEN {
        return Err(format!(
            "label {label:?} is longer than {MAX_LABEL_LEN} characters"
        ));
    }
    Ok(())
}

fn check_target(column: &Column) -> Result<(), String> {
    match (column.data_type, column.target_data_type) {
        (_, None)
        | (DataType::Decimal, Some(TargetDataType::Decimal))
        | (DataType::Date | DataType::DateTime | DataType::Time, Some(TargetDataType::Integer)) => {
            Ok(())
        }
        (data_type, Some(target)) => Err(format!(
            "targetDataType {} does not apply to dataType {}",
            target.dataset_json_name(),
            data_type.dataset_json_name()
        )),
    }
}

fn check_value(column: &Column, value: &Value) -> Result<(), String> {
    let numeric_date = column.target_data_type == Some(TargetDataType::Integer);
    let fits = match (column.data_type, value) {
        (_, Value::Null) => true,
        (DataType::String, Value::Text(_)) => true,
        (DataType::Integer, Value::Integer(_)) => true,
        (DataType::Decimal | DataType::Float, Value::Decimal(_) | Value::Integer(_)) => true,
        (DataType::Boolean, Value::Boolean(_)) => true,
        (DataType::Date, Value::Date(_)) => true,
        (DataType::DateTime, Value::DateTime(_)) => true,
        (DataType::Time, Value::Time(_)) => true,
        // SDTM --DTC values may be partial ISO 8601 text ("2014-01"); a numeric date cannot be.
        (DataType::Date | DataType::DateTime | DataType::Time, Value::Text(_)) => !numeric_date,
        _ => false,
    };
    if !fits {
        let target = column
            .target_data_type
            .map(|t| format!(" (targetDataType {})", t.dataset_json_name()))
            .unwrap_or_default();
        return Err(format!(
            "a {} value does not fit dataType {}{target}",
            value.kind(),
            column.data_type.dataset_json_name()
        ));
    }
    if !column.is_numeric_in_sas()
        && let Some(text) = text_of(value)
    {
        let limit = column.length.map_or(MAX_TEXT_BYTES, |l| l as usize);
        if text.len() > limit {
            return Err(format!(
                "value {text:?} is {} bytes, more than the {} limit of {limit}",
                text.len(),
                if column.length.is_some() {
                    "declared length"
                } else {
                    "SAS V5"
                }
            ));
        }
    }
    Ok(())
}

/// A SAS format reference such as `DATE9.`, `E8601DA.`, `8.2` or `$CHAR20.`, split as XPORT's NAMESTR
/// stores it: name, width, decimals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SasFormat {
    pub name: String,
    pub width: u16,
    pub decimals: u16,
}

impl SasFormat {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("display format {text:?} is not NAMEw.d (e.g. DATE9., E8601DA., 8.2)");
        let (head, decimals) = text.split_once('.').ok_or_else(bad)?;
        // The name may contain digits (E8601DA), so the width is the digits after its last non-digit.
        let name_end = head
            .char_indices()
            .rev()
            .find(|(_, c)| !c.is_ascii_digit())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let (name, width) = head.split_at(name_end);
        let name_ok = name.is_empty()
            || (name.len() <= MAX_NAME_LEN
                && name
                    .trim_start_matches('$')
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase())
                && name
                    .chars()
                    .all(|c| c == '$' || c == '_' || c.is_ascii_uppercase() || c.is_ascii_digit()));
        if !name_ok || !decimals.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let number = |digits: &str| -> Result<u16, String> {
            if digits.is_empty() {
                Ok(0)
            } else {
                digits.parse().map_err(|_| bad())
            }
        };
        Ok(Self {
            name: name.to_owned(),
            width: number(width)?,
            decimals: number(decimals)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(columns: Vec<Column>, rows: Vec<Vec<Value>>) -> Dataset {
        Dataset {
            name: "ADSL".into(),
            label: "Subject-Level Analysis Dataset".into(),
            item_group_oid: "IG.ADSL".into(),
            class: "SUBJECT LEVEL ANALYSIS DATASET".into(),
            structure: "One record per subject".into(),
            purpose: Purpose::Analysis,
            is_reference_data: false,
            columns,
            rows,
        }
    }

    fn error_of(ds: Dataset) -> String {
        ds.validate().unwrap_err().to_string()
    }

    #[test]
    fn names_labels_and_lengths_are_checked_with_the_dataset_and_column_named() {
        let text = Column::new(
            "IT.ADSL.USUBJID",
            "USUBJID",
            "Unique Subject Identifier",
            DataType::String,
        );
        assert!(
            dataset(vec![text.clone()], vec![vec![Value::Text("01-001".into())]])
                .validate()
                .is_ok()
        );

        let mut long = dataset(vec![text.clone()], vec![]);
        long.name = "ADSLLONGX".into();
        assert!(error_of(long).contains("dataset ADSLLONGX: name \"ADSLLONGX\" must be 1 to 8"));

        let lower = Column::new("IT.ADSL.x", "usubjid", "x", DataType::String);
        assert!(
            error_of(dataset(vec![lower], vec![]))
                .contains("column usubjid: name \"usubjid\" must be uppercase")
        );

        let digit_first = Column::new("IT.ADSL.1X", "1X", "x", DataType::String);
        assert!(error_of(dataset(vec![digit_first], vec![])).contains("starting with a letter"));

        let long_label = Column::new("IT.ADSL.A", "A", &"L".repeat(41), DataType::String);
        assert!(
            error_of(dataset(vec![long_label], vec![])).contains("dataset ADSL, column A: label")
        );

        let too_long_value = vec![vec![Value::Text("x".repeat(201))]];
        assert!(
            error_of(dataset(vec![text.clone()], too_long_value))
                .contains("row 1, column USUBJID: value")
        );

        let declared = text.clone().with_length(3);
        assert!(
            error_of(dataset(
                vec![declared],
                vec![vec![Value::Text("abcd".into())]]
            ))
            .contains("more than the declared length limit of 3")
        );
    }

    #[test]
    fn values_must_fit_their_column_type() {
        let age = Column::new("IT.ADSL.AGE", "AGE", "Age", DataType::Integer);
        let message = error_of(dataset(
            vec![age],
            vec![vec![Value::Integer(50)], vec![Value::Text("50".into())]],
        ));
        assert_eq!(
            message,
            "dataset ADSL, row 2, column AGE: a text value does not fit dataType integer"
        );

        let trtsdt = Column::new(
            "IT.ADSL.TRTSDT",
            "TRTSDT",
            "Date of First Exposure",
            DataType::Date,
        )
        .with_target(TargetDataType::Integer);
        let partial = vec![vec![Value::Text("2014-01".into())]];
        assert!(error_of(dataset(vec![trtsdt], partial)).contains("(targetDataType integer)"));

        let bad_target = Column::new("IT.ADSL.AGE", "AGE", "Age", DataType::Integer)
            .with_target(TargetDataType::Decimal);
        assert!(
            error_of(dataset(vec![bad_target], vec![]))
                .contains("targetDataType decimal does not apply to dataType integer")
        );
    }

    #[test]
    fn row_width_and_duplicates_are_refused() {
        let a = Column::new("IT.ADSL.A", "A", "A", DataType::String);
        let message = error_of(dataset(
            vec![a.clone()],
            vec![vec![Value::Null, Value::Null]],
        ));
        assert_eq!(message, "dataset ADSL: row 1 has 2 values for 1 columns");
        assert!(error_of(dataset(vec![a.clone(), a], vec![])).contains("name used twice"));
    }

    #[test]
    fn sas_formats_split_into_name_width_and_decimals() {
        let check = |text: &str, name: &str, width: u16, decimals: u16| {
            assert_eq!(
                SasFormat::parse(text).unwrap(),
                SasFormat {
                    name: name.into(),
                    width,
                    decimals
                },
                "{text}"
            );
        };
        check("DATE9.", "DATE", 9, 0);
        check("E8601DA.", "E8601DA", 0, 0);
        check("E8601DT19.", "E8601DT", 19, 0);
        check("8.2", "", 8, 2);
        check("$CHAR20.", "$CHAR", 20, 0);
        assert!(SasFormat::parse("DATE9").is_err());
        assert!(SasFormat::parse("date9.").is_err());
        assert!(SasFormat::parse("VERYLONGNAME9.").is_err());
    }
}
