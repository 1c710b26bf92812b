//! REDCap's own formats: the metadata JSON (`content=metadata`), the flat record JSON
//! (`content=record&format=json&type=flat`) turned into the same [`OdmRow`]s the ODM reader yields so
//! one mapping serves both, and the Data Entry Trigger's form-encoded POST body (parsing only; the
//! HTTP endpoint belongs to the server).

use crate::odm::{FileType, ItemValue, KeyPath, Keyed, OdmRow};
use serde_json::Value;
use smol_str::SmolStr;
use std::collections::BTreeMap;

/// REDCap input that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedcapError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("{what}: expected a JSON array of objects")]
    NotAnArray { what: &'static str },
    #[error("{what}[{index}]: expected an object")]
    NotAnObject { what: &'static str, index: usize },
    #[error("{what}[{index}].{field}: expected text or a number, found {found}")]
    WrongType {
        what: &'static str,
        index: usize,
        field: String,
        found: &'static str,
    },
    #[error("{what}[{index}]: {field} is missing or empty")]
    Missing {
        what: &'static str,
        index: usize,
        field: String,
    },
    #[error("records[{index}].redcap_repeat_instance: {value:?} is not a positive whole number")]
    RepeatInstance { index: usize, value: String },
    #[error("the metadata names no fields (the record id field is the first one)")]
    NoFields,
    #[error("data entry trigger: {0}")]
    Trigger(String),
}

/// One field of the data dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedcapField {
    pub field_name: String,
    pub form_name: String,
    pub field_type: String,
    pub label: String,
    /// `select_choices_or_calculations` split into (code, label) for radio, dropdown, checkbox.
    pub choices: Vec<(String, String)>,
    pub validation: String,
}

/// The project's data dictionary (`content=metadata`), in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedcapMetadata {
    pub fields: Vec<RedcapField>,
}

fn text_of(
    value: &Value,
    what: &'static str,
    index: usize,
    field: &str,
) -> Result<String, RedcapError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(RedcapError::WrongType {
            what,
            index,
            field: field.to_string(),
            found: match other {
                Value::Bool(_) => "a boolean",
                Value::Array(_) => "an array",
                _ => "an object",
            },
        }),
    }
}

fn objects(
    text: &str,
    what: &'static str,
) -> Result<Vec<serde_json::Map<String, Value>>, RedcapError> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| RedcapError::Json(error.to_string()))?;
    let Value::Array(elements) = value else {
        return Err(RedcapError::NotAnArray { what });
    };
    elements
        .into_iter()
        .enumerate()
        .map(|(index, element)| match element {
            Value::Object(object) => Ok(object),
            _ => Err(RedcapError::NotAnObject { what, index }),
        })
        .collect()
}

/// Splits `1, Yes | 0, No` into (code, label) pairs.
pub fn parse_choices(text: &str) -> Vec<(String, String)> {
    text.split('|')
        .filter_map(|choice| {
            let (code, label) = choice.split_once(',')?;
            let code = code.trim();
            (!code.is_empty()).then(|| (code.to_string(), label.trim().to_string()))
        })
        .collect()
}

impl RedcapMetadata {
    /// Parses the `content=metadata` JSON export.
    pub fn from_json(text: &str) -> Result<Self, RedcapError> {
        const WHAT: &str = "metadata";
        let mut fields = Vec::new();
        for (index, object) in objects(text, WHAT)?.into_iter().enumerate() {
            let get = |key: &str| -> Result<String, RedcapError> {
                object
                    .get(key)
                    .map(|value| text_of(value, WHAT, index, key))
                    .transpose()
                    .map(Option::unwrap_or_default)
            };
            let field_name = get("field_name")?;
            let form_name = get("form_name")?;
            for (name, value) in [("field_name", &field_name), ("form_name", &form_name)] {
                if value.is_empty() {
                    return Err(RedcapError::Missing {
                        what: WHAT,
                        index,
                        field: name.to_string(),
                    });
                }
            }
            let field_type = get("field_type")?;
            let choices = if matches!(field_type.as_str(), "radio" | "dropdown" | "checkbox") {
                parse_choices(&get("select_choices_or_calculations")?)
            } else {
                Vec::new()
            };
            fields.push(RedcapField {
                field_name,
                form_name,
                field_type,
                label: get("field_label")?,
                choices,
                validation: get("text_validation_type_or_show_slider_number")?,
            });
        }
        if fields.is_empty() {
            return Err(RedcapError::NoFields);
        }
        Ok(Self { fields })
    }

    /// The record id field: REDCap's first field.
    pub fn record_id_field(&self) -> &str {
        self.fields
            .first()
            .map(|field| field.field_name.as_str())
            .unwrap_or_default()
    }

    /// The forms in dictionary order, each once.
    pub fn forms(&self) -> Vec<&str> {
        let mut forms: Vec<&str> = Vec::new();
        for field in &self.fields {
            if !forms.contains(&field.form_name.as_str()) {
                forms.push(&field.form_name);
            }
        }
        forms
    }

    /// The form an exported column belongs to: a field, a checkbox option (`field___code`) or a form
    /// status (`<form>_complete`).
    pub fn form_of(&self, column: &str) -> Option<&str> {
        let field = |name: &str| {
            self.fields
                .iter()
                .find(|field| field.field_name == name)
                .map(|field| field.form_name.as_str())
        };
        if let Some(form) = field(column) {
            return Some(form);
        }
        if let Some((base, _code)) = column.split_once("___")
            && let Some(form) = self
                .fields
                .iter()
                .find(|field| field.field_name == base && field.field_type == "checkbox")
                .map(|field| field.form_name.as_str())
        {
            return Some(form);
        }
        column
            .strip_suffix("_complete")
            .and_then(|form| self.forms().into_iter().find(|known| *known == form))
    }
}

/// The form OID given to columns the dictionary does not know: the planner reports them as unmapped.
pub const UNKNOWN_FORM: &str = "(not in the data dictionary)";

const SYSTEM_COLUMNS: [&str; 4] = [
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
];

/// Turns a flat record export into rows, as a REDCap ODM Snapshot would give them: one row per
/// non-blank value, rows of a record together. `study_oid` names the project (REDCap's JSON does not).
pub fn records_to_rows(
    json: &str,
    metadata: &RedcapMetadata,
    study_oid: &str,
) -> Result<Vec<OdmRow>, RedcapError> {
    const WHAT: &str = "records";
    let record_field = metadata.record_id_field();
    let mut rows = Vec::new();
    let mut blocks: BTreeMap<String, u64> = BTreeMap::new();
    for (index, object) in objects(json, WHAT)?.into_iter().enumerate() {
        let get = |key: &str| -> Result<String, RedcapError> {
            object
                .get(key)
                .map(|value| text_of(value, WHAT, index, key))
                .transpose()
                .map(|text| text.unwrap_or_default().trim().to_string())
        };
        let record = get(record_field)?;
        if record.is_empty() {
            return Err(RedcapError::Missing {
                what: WHAT,
                index,
                field: record_field.to_string(),
            });
        }
        let next_block = u64::try_from(blocks.len())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let subject_block = *blocks.entry(record.clone()).or_insert(next_block);
        // REDCap's own ODM export names events `Event.<unique name>` and forms `Form.<name>`:
        // the same names here let one mapping file serve both exports.
        let event = get("redcap_event_name")?;
        let repeat_instrument = get("redcap_repeat_instrument")?;
        let repeat_instance = get("redcap_repeat_instance")?;
        if !repeat_instance.is_empty()
            && !repeat_instance
                .parse::<u32>()
                .is_ok_and(|instance| instance > 0)
        {
            return Err(RedcapError::RepeatInstance {
                index,
                value: repeat_instance,
            });
        }
        let instance = if repeat_instance.is_empty() {
            "1".to_string()
        } else {
            repeat_instance.clone()
        };
        // A repeating event has an instance but no instrument: the event repeats, not the form.
        let repeating_event = repeat_instrument.is_empty() && !repeat_instance.is_empty();
        let site = Some(get("redcap_data_access_group")?)
            .filter(|group| !group.is_empty())
            .map(SmolStr::new);
        for (column, value) in &object {
            if column == record_field || SYSTEM_COLUMNS.contains(&column.as_str()) {
                continue;
            }
            let text = text_of(value, WHAT, index, column)?;
            if text.is_empty() {
                continue;
            }
            let form = metadata.form_of(column).unwrap_or(UNKNOWN_FORM);
            // A repeating instrument's row carries only that instrument's values; the record's other
            // columns on it are blank by REDCap's layout, and stray ones are not its data.
            if !repeat_instrument.is_empty() && form != repeat_instrument {
                continue;
            }
            let key = KeyPath {
                subject_key: Some(SmolStr::new(&record)),
                study_event: (!event.is_empty()).then(|| Keyed {
                    oid: SmolStr::new(format!("Event.{event}")),
                    repeat_key: Some(SmolStr::new(if repeating_event {
                        instance.as_str()
                    } else {
                        "1"
                    })),
                }),
                form: Some(Keyed {
                    oid: SmolStr::new(format!("Form.{form}")),
                    repeat_key: Some(SmolStr::new(if repeating_event {
                        "1"
                    } else {
                        instance.as_str()
                    })),
                }),
                item_group: Some(Keyed {
                    oid: SmolStr::new(form),
                    repeat_key: None,
                }),
                item_oid: Some(SmolStr::new(column)),
            };
            rows.push(OdmRow {
                file_type: FileType::Snapshot,
                study_oid: SmolStr::new(study_oid),
                metadata_version_oid: None,
                site: site.clone(),
                subject_name: None,
                key,
                value: ItemValue::Value(text),
                unit: None,
                transaction: None,
                audit: None,
                form_status: None,
                position: u64::try_from(index).unwrap_or(u64::MAX),
                subject_block,
            });
        }
    }
    // The planner reads one subject at a time: keep each record's rows together, in export order.
    rows.sort_by_key(|row| row.subject_block);
    Ok(rows)
}

/// A form's completion status: REDCap's `<form>_complete` 0/1/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormCompletion {
    Incomplete,
    Unverified,
    Complete,
}

impl FormCompletion {
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "0" => Some(FormCompletion::Incomplete),
            "1" => Some(FormCompletion::Unverified),
            "2" => Some(FormCompletion::Complete),
            _ => None,
        }
    }
}

/// A Data Entry Trigger notification: which form of which record was saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEntryTrigger {
    pub project_id: u64,
    pub username: Option<String>,
    pub instrument: String,
    pub record: String,
    pub event_name: Option<String>,
    pub data_access_group: Option<String>,
    /// `<instrument>_complete`.
    pub status: Option<FormCompletion>,
    pub repeat_instance: Option<u32>,
    pub repeat_instrument: Option<String>,
    pub redcap_url: Option<String>,
    pub project_url: Option<String>,
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space, `%XX` a byte).
fn form_decode(part: &[u8]) -> Result<String, RedcapError> {
    let mut bytes = Vec::with_capacity(part.len());
    let mut index = 0;
    while let Some(&byte) = part.get(index) {
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let high = part.get(index + 1).copied().and_then(hex_value);
                let low = part.get(index + 2).copied().and_then(hex_value);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(RedcapError::Trigger(format!(
                        "bad percent escape at byte {index}"
                    )));
                };
                bytes.push(high * 16 + low);
                index += 2;
            }
            other => bytes.push(other),
        }
        index += 1;
    }
    String::from_utf8(bytes).map_err(|_| RedcapError::Trigger("a value is not UTF-8".to_string()))
}

/// Parses the Data Entry Trigger's POST body. Unknown keys are ignored (REDCap adds some across
/// versions); a key given twice is an error, since either value could be the wrong one.
pub fn parse_data_entry_trigger(body: &[u8]) -> Result<DataEntryTrigger, RedcapError> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for pair in body
        .split(|byte| *byte == b'&')
        .filter(|pair| !pair.is_empty())
    {
        let (key, value) = match pair.iter().position(|byte| *byte == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        let key = form_decode(key)?;
        let value = form_decode(value)?;
        if fields.insert(key.clone(), value).is_some() {
            return Err(RedcapError::Trigger(format!("{key} is given twice")));
        }
    }
    let optional = |key: &str| fields.get(key).filter(|value| !value.is_empty()).cloned();
    let required = |key: &str| {
        optional(key).ok_or_else(|| RedcapError::Trigger(format!("{key} is missing or empty")))
    };
    let project_id_text = required("project_id")?;
    let project_id = project_id_text.parse::<u64>().map_err(|_| {
        RedcapError::Trigger(format!(
            "project_id {project_id_text:?} is not a whole number"
        ))
    })?;
    let instrument = required("instrument")?;
    let status = match optional(&format!("{instrument}_complete")) {
        None => None,
        Some(code) => Some(FormCompletion::from_code(&code).ok_or_else(|| {
            RedcapError::Trigger(format!("{instrument}_complete {code:?} is not 0, 1 or 2"))
        })?),
    };
    let repeat_instance = match optional("redcap_repeat_instance") {
        None => None,
        Some(text) => Some(
            text.parse::<u32>()
                .ok()
                .filter(|instance| *instance > 0)
                .ok_or_else(|| {
                    RedcapError::Trigger(format!(
                        "redcap_repeat_instance {text:?} is not a positive whole number"
                    ))
                })?,
        ),
    };
    Ok(DataEntryTrigger {
        project_id,
        username: optional("username"),
        record: required("record")?,
        event_name: optional("redcap_event_name"),
        data_access_group: optional("redcap_data_access_group"),
        status,
        repeat_instance,
        repeat_instrument: optional("redcap_repeat_instrument"),
        redcap_url: optional("redcap_url"),
        project_url: optional("project_url"),
        instrument,
    })
}
