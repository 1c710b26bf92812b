//! `mapping init`: a mapping file skeleton listing every source item and event, from an ODM
//! `MetaDataVersion` (ItemDef, StudyEventDef, CodeList) or a REDCap data dictionary. The skeleton maps
//! nothing: each item is a commented line showing its name, type and codes, for the study's data
//! manager to point at a Myolog field or to ignore. Nothing is matched by name.

use crate::odm::{KeyPath, ODM_NAMESPACE, OdmError, OdmErrorKind};
use crate::redcap::RedcapMetadata;
use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufRead;

/// One source item as the dictionary describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceItem {
    /// ItemOID, or REDCap field name (`field___code` for each checkbox option).
    pub oid: String,
    pub name: String,
    pub form: Option<String>,
    pub data_type: String,
    pub choices: Vec<(String, String)>,
}

/// What a source says it contains.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceDictionary {
    pub study_oid: Option<String>,
    /// (StudyEventOID or REDCap unique event name, name).
    pub events: Vec<(String, String)>,
    pub items: Vec<SourceItem>,
}

fn attribute(
    reader: &NsReader<impl BufRead>,
    start: &BytesStart<'_>,
    name: &str,
) -> Result<Option<String>, OdmError> {
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| xml_error(reader, error))?;
        if attribute.key.prefix().is_none()
            && attribute.key.local_name().as_ref() == name.as_bytes()
        {
            return attribute
                .decode_and_unescape_value(reader.decoder())
                .map(|value| Some(value.into_owned()))
                .map_err(|error| xml_error(reader, error));
        }
    }
    Ok(None)
}

fn xml_error(reader: &NsReader<impl BufRead>, error: impl std::fmt::Display) -> OdmError {
    OdmError {
        position: reader.error_position(),
        path: Box::new(KeyPath::default()),
        kind: OdmErrorKind::Xml(error.to_string()),
    }
}

/// Reads the `Study/MetaDataVersion` of an ODM file (the first one, as REDCap and OpenClinica
/// write one). Clinical data, if any, is skipped.
pub fn dictionary_from_odm(source: impl BufRead) -> Result<SourceDictionary, OdmError> {
    let mut reader = NsReader::from_reader(source);
    let mut buf = Vec::new();
    let mut dictionary = SourceDictionary::default();
    let mut item_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut code_lists: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut item_code_list: Vec<(usize, String)> = Vec::new();
    let mut current_item: Option<usize> = None;
    let mut current_code_list: Option<String> = None;
    let mut current_code: Option<String> = None;
    let mut in_decode_text = false;
    let mut decode_text = String::new();
    let mut depth = 0usize;
    loop {
        buf.clear();
        let (is_odm, event) = match reader.read_resolved_event_into(&mut buf) {
            Ok((resolved, event)) => (
                matches!(resolved, ResolveResult::Unbound)
                    || matches!(resolved, ResolveResult::Bound(Namespace(uri)) if uri == ODM_NAMESPACE.as_bytes()),
                event,
            ),
            Err(error) => return Err(xml_error(&reader, error)),
        };
        let (start, empty) = match &event {
            Event::Start(start) => (Some(start.clone()), false),
            Event::Empty(start) => (Some(start.clone()), true),
            _ => (None, false),
        };
        if let Some(start) = start {
            if !empty {
                depth += 1;
            }
            if is_odm {
                match start.local_name().as_ref() {
                    b"Study" => dictionary.study_oid = attribute(&reader, &start, "OID")?,
                    b"StudyEventDef" => {
                        let oid = attribute(&reader, &start, "OID")?.unwrap_or_default();
                        let name = attribute(&reader, &start, "Name")?.unwrap_or_default();
                        dictionary.events.push((oid, name));
                    }
                    b"ItemDef" => {
                        let oid = attribute(&reader, &start, "OID")?.unwrap_or_default();
                        let item = SourceItem {
                            name: attribute(&reader, &start, "Name")?.unwrap_or_default(),
                            data_type: attribute(&reader, &start, "DataType")?.unwrap_or_default(),
                            form: None,
                            choices: Vec::new(),
                            oid: oid.clone(),
                        };
                        item_index.insert(oid, dictionary.items.len());
                        current_item = (!empty).then_some(dictionary.items.len());
                        dictionary.items.push(item);
                    }
                    b"CodeListRef" => {
                        if let (Some(item), Some(list)) =
                            (current_item, attribute(&reader, &start, "CodeListOID")?)
                        {
                            item_code_list.push((item, list));
                        }
                    }
                    b"CodeList" => current_code_list = attribute(&reader, &start, "OID")?,
                    b"CodeListItem" | b"EnumeratedItem" => {
                        let code = attribute(&reader, &start, "CodedValue")?.unwrap_or_default();
                        if let Some(list) = &current_code_list {
                            code_lists
                                .entry(list.clone())
                                .or_default()
                                .push((code.clone(), String::new()));
                        }
                        current_code = (!empty).then_some(code);
                    }
                    b"TranslatedText" if current_code.is_some() => {
                        in_decode_text = !empty;
                        decode_text.clear();
                    }
                    _ => {}
                }
            }
            continue;
        }
        match event {
            Event::Text(text) if in_decode_text => {
                let decoded = text
                    .xml10_content()
                    .map_err(|error| xml_error(&reader, error))?;
                decode_text.push_str(&decoded);
            }
            Event::GeneralRef(reference) if in_decode_text => {
                let name = reference
                    .decode()
                    .map_err(|error| xml_error(&reader, error))?
                    .into_owned();
                let character = match reference
                    .resolve_char_ref()
                    .map_err(|error| xml_error(&reader, error))?
                {
                    Some(character) => character,
                    None => match name.as_str() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => {
                            return Err(OdmError {
                                position: reader.buffer_position(),
                                path: Box::new(KeyPath::default()),
                                kind: OdmErrorKind::UnresolvedEntity(name),
                            });
                        }
                    },
                };
                decode_text.push(character);
            }
            Event::End(end) => {
                depth = depth.saturating_sub(1);
                match end.local_name().as_ref() {
                    b"ItemDef" => current_item = None,
                    b"CodeList" => current_code_list = None,
                    b"CodeListItem" | b"EnumeratedItem" => current_code = None,
                    b"TranslatedText" if in_decode_text => {
                        in_decode_text = false;
                        if let (Some(list), Some(code)) = (&current_code_list, &current_code)
                            && let Some(entry) = code_lists.get_mut(list).and_then(|entries| {
                                entries.iter_mut().rev().find(|(c, _)| c == code)
                            })
                            && entry.1.is_empty()
                        {
                            entry.1 = decode_text.trim().to_string();
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => {
                if depth != 0 {
                    return Err(OdmError {
                        position: reader.buffer_position(),
                        path: Box::new(KeyPath::default()),
                        kind: OdmErrorKind::UnexpectedEnd("metadata".to_string()),
                    });
                }
                break;
            }
            _ => {}
        }
    }
    for (item, list) in item_code_list {
        if let (Some(choices), Some(item)) = (code_lists.get(&list), dictionary.items.get_mut(item))
        {
            item.choices = choices.clone();
        }
    }
    Ok(dictionary)
}

/// The dictionary of a REDCap project: its fields (checkboxes exploded into `field___code`, each
/// form's `<form>_complete` status left out, as the mapping's form status rules read it) and the
/// unique event names of a longitudinal project (`content=event`; none for a classic project).
pub fn dictionary_from_redcap(
    metadata: &RedcapMetadata,
    project: &str,
    event_names: &[String],
) -> SourceDictionary {
    let mut items = Vec::new();
    for field in &metadata.fields {
        if field.field_type == "descriptive" {
            continue;
        }
        if field.field_type == "checkbox" {
            for (code, label) in &field.choices {
                items.push(SourceItem {
                    oid: format!("{}___{}", field.field_name, code.to_ascii_lowercase()),
                    name: format!("{}: {label}", field.label),
                    form: Some(field.form_name.clone()),
                    data_type: "checkbox option (0/1)".to_string(),
                    choices: Vec::new(),
                });
            }
            continue;
        }
        let data_type = if field.validation.is_empty() {
            field.field_type.clone()
        } else {
            format!("{} ({})", field.field_type, field.validation)
        };
        items.push(SourceItem {
            oid: field.field_name.clone(),
            name: field.label.clone(),
            form: Some(field.form_name.clone()),
            data_type,
            choices: field.choices.clone(),
        });
    }
    SourceDictionary {
        study_oid: Some(project.to_string()),
        // Keyed as the rows name them (`Event.<unique event name>`, as REDCap's ODM export and
        // `records_to_rows` do), so an uncommented line maps the event as it is.
        events: event_names
            .iter()
            .map(|name| (format!("Event.{name}"), name.clone()))
            .collect(),
        items,
    }
}

fn toml_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04X}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// One line of a comment: no line break can end the comment early.
fn comment_text(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The skeleton mapping file (TOML): study and visit settings with their defaults spelled out, every
/// event and item listed as a commented line to complete.
pub fn skeleton(dictionary: &SourceDictionary) -> String {
    let study_id: String = dictionary
        .study_oid
        .as_deref()
        .unwrap_or("STUDY")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Myolog EDC mapping skeleton: nothing is mapped yet. For each item below, uncomment it and\n\
         # set `field` to a Myolog field, or list it under `ignore`; an item left out is reported as\n\
         # unmapped on every import, never guessed.\n"
    );
    let _ = writeln!(out, "[study]");
    let _ = writeln!(out, "id = {}", toml_string(&study_id));
    let _ = writeln!(
        out,
        "time_zone = \"Z\"  # the EDC server's zone for audit times without an offset: IANA name or +HH:MM"
    );
    let _ = writeln!(
        out,
        "# default_reason = \"changed in the source EDC; no reason for change was recorded\"\n"
    );
    let _ = writeln!(out, "[visits]");
    let _ = writeln!(
        out,
        "date_item = \"\"  # the item giving each visit's clinical date"
    );
    let _ = writeln!(
        out,
        "partial_dates = \"reject\"  # or \"first_day\"\n# visit_item = \"\"  # sources without events: the item naming the visit\n# visit_codes = {{}}\n"
    );
    let _ = writeln!(out, "[visits.events]");
    for (oid, name) in &dictionary.events {
        let _ = writeln!(
            out,
            "# {} = \"\"  # {}",
            toml_string(oid),
            comment_text(name)
        );
    }
    let _ = writeln!(
        out,
        "\n[form_status]\nsuffix = \"_complete\"\nimported = [\"2\", \"complete\", \"data entry complete\", \"signed\", \"verified\"]\nwhen_absent = \"import\"\n"
    );
    let _ = writeln!(out, "[not_done]\nvalues = []\nis_null = true\n");
    let _ = writeln!(out, "[items]");
    for item in &dictionary.items {
        let mut description = format!("{}; {}", comment_text(&item.name), item.data_type);
        if let Some(form) = &item.form {
            let _ = write!(description, "; form {form}");
        }
        if !item.choices.is_empty() {
            let codes: Vec<String> = item
                .choices
                .iter()
                .map(|(code, label)| format!("{code}={}", comment_text(label)))
                .collect();
            let _ = write!(description, "; codes {}", codes.join(", "));
        }
        let _ = writeln!(
            out,
            "# {} = {{ field = \"\" }}  # {description}",
            toml_string(&item.oid)
        );
    }
    out
}
