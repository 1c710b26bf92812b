//! REDCap's logging export (`content=log`, the project's audit trail): each entry's time as the
//! REDCap server wrote it (`YYYY-MM-DD HH:MM`, in the server's time zone), user, action (`Create
//! record 12`, `Update record (import) 12`, `Delete record 12`, ...) and details (`field = 'value',
//! ...`, with the reason for change when the project requires one). It finds the entry that set a
//! value, so a correction carries REDCap's who, when and why, and the entry that deleted a record.
//! Parsing only: the API call belongs to the bridge, and the time is kept as written, never
//! converted.

use crate::odm::{AuditRecord, OdmRow};
use crate::redcap::RedcapError;
use serde_json::Value;
use smol_str::SmolStr;

/// One logging entry, as REDCap exported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedcapLogEntry {
    /// `YYYY-MM-DD HH:MM` in the REDCap server's time zone.
    pub timestamp: String,
    pub username: String,
    pub action: String,
    pub details: String,
}

/// What a logging entry did to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogAction {
    Create {
        record: String,
    },
    Update {
        record: String,
    },
    Delete {
        record: String,
    },
    /// Exports, design changes, user rights, page views: nothing the bridge reads.
    Other,
}

/// Reads the `content=log&format=json` export: a JSON array of objects with `timestamp`,
/// `username`, `action` and `details` (text; a missing one is read as empty).
pub fn parse_log(json: &str) -> Result<Vec<RedcapLogEntry>, RedcapError> {
    const WHAT: &str = "log";
    let value: Value =
        serde_json::from_str(json).map_err(|error| RedcapError::Json(error.to_string()))?;
    let Value::Array(elements) = value else {
        return Err(RedcapError::NotAnArray { what: WHAT });
    };
    let mut entries = Vec::with_capacity(elements.len());
    for (index, element) in elements.into_iter().enumerate() {
        let Value::Object(object) = element else {
            return Err(RedcapError::NotAnObject { what: WHAT, index });
        };
        let get = |key: &str| -> Result<String, RedcapError> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(text)) => Ok(text.clone()),
                Some(Value::Number(number)) => Ok(number.to_string()),
                Some(_) => Err(RedcapError::WrongType {
                    what: WHAT,
                    index,
                    field: key.to_string(),
                    found: "a structure",
                }),
            }
        };
        let timestamp = get("timestamp")?;
        if timestamp.is_empty() {
            return Err(RedcapError::Missing {
                what: WHAT,
                index,
                field: "timestamp".into(),
            });
        }
        entries.push(RedcapLogEntry {
            timestamp,
            username: get("username")?,
            action: get("action")?,
            details: get("details")?,
        });
    }
    Ok(entries)
}

/// The record an action text names after its verb: `Update record 12`, `Update record (import) 12`,
/// `Update record (API) 12 (Week 4)`.
fn record_after(action: &str, verb: &str) -> Option<String> {
    let rest = action.strip_prefix(verb)?.trim_start();
    // A parenthesised qualifier (import, API, Auto calculation) before the record id.
    let rest = match rest.strip_prefix('(') {
        Some(qualified) => qualified.split_once(')')?.1.trim_start(),
        None => rest,
    };
    let record = rest.split_whitespace().next()?;
    (!record.is_empty()).then(|| record.to_string())
}

impl RedcapLogEntry {
    pub fn action(&self) -> LogAction {
        let action = self.action.trim();
        if let Some(record) = record_after(action, "Create record") {
            LogAction::Create { record }
        } else if let Some(record) = record_after(action, "Update record") {
            LogAction::Update { record }
        } else if let Some(record) = record_after(action, "Delete record") {
            LogAction::Delete { record }
        } else {
            LogAction::Other
        }
    }

    /// The record the entry created, changed or deleted.
    pub fn record(&self) -> Option<String> {
        match self.action() {
            LogAction::Create { record }
            | LogAction::Update { record }
            | LogAction::Delete { record } => Some(record),
            LogAction::Other => None,
        }
    }

    /// The values the entry set, as (column, value): `field = 'value'` pairs, and a checkbox
    /// option `field(code) = checked|unchecked` as its export column `field___code` = `1|0`.
    pub fn values(&self) -> Vec<(String, String)> {
        let details = self.without_reason();
        let mut values = Vec::new();
        let mut rest = details.as_str();
        loop {
            rest = rest.trim_start_matches([',', ' ', '\n', '\r', '\t']);
            let Some((name, after)) = rest.split_once(" = ") else {
                break;
            };
            let name = name.trim();
            let (value, next) = if let Some(quoted) = after.strip_prefix('\'') {
                // The value runs to the quote that ends the text or is followed by the next pair.
                let end = closing_quote(quoted);
                (
                    quoted[..end].to_string(),
                    &quoted[(end + 1).min(quoted.len())..],
                )
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            let column = match name.split_once('(') {
                Some((field, code)) => {
                    let code = code.trim_end_matches(')');
                    let checked = match value.as_str() {
                        "checked" => "1",
                        "unchecked" => "0",
                        other => other,
                    };
                    values.push((format!("{field}___{code}"), checked.to_string()));
                    rest = next;
                    continue;
                }
                None => name.to_string(),
            };
            if column.starts_with('[') {
                // `[instance = 2]` and the like: context, not a value.
                rest = next;
                continue;
            }
            values.push((column, value));
            rest = next;
        }
        values
    }

    /// The reason for change REDCap logged with the entry (projects that require one): the text
    /// after `Reason for change:` or `Reason for changes:`, to the end of its line or bracket.
    pub fn reason(&self) -> Option<String> {
        let (start, label) = reason_label(&self.details)?;
        let after = &self.details[start + label..];
        let end = after.find(['\n', ']']).unwrap_or(after.len());
        let reason = after[..end].trim().trim_matches(['\'', '"']).trim();
        (!reason.is_empty()).then(|| reason.to_string())
    }

    fn without_reason(&self) -> String {
        match reason_label(&self.details) {
            Some((start, _)) => {
                let cut = self.details[..start].trim_end();
                cut.strip_suffix('[').unwrap_or(cut).trim_end().to_string()
            }
            None => self.details.clone(),
        }
    }

    /// The entry as an ODM audit record: user, time as written, reason.
    pub fn audit_record(&self) -> AuditRecord {
        AuditRecord {
            id: None,
            user_oid: (!self.username.is_empty()).then(|| SmolStr::new(&self.username)),
            location_oid: None,
            date_time_stamp: Some(self.timestamp.clone()),
            reason_for_change: self.reason(),
            source_id: None,
        }
    }
}

/// The byte offset and length of the reason label in `details`, ignoring case.
fn reason_label(details: &str) -> Option<(usize, usize)> {
    let lower = details.to_ascii_lowercase();
    ["reason for changes:", "reason for change:"]
        .iter()
        .find_map(|label| lower.find(label).map(|start| (start, label.len())))
}

/// The index of the quote closing a quoted log value: one followed by the end, a newline, or `, `
/// and the next `name = `.
fn closing_quote(quoted: &str) -> usize {
    let bytes = quoted.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        if *byte != b'\'' {
            continue;
        }
        let after = &quoted[index + 1..];
        let next_pair = after.strip_prefix(", ").is_some_and(|next| {
            next.split_once(" = ")
                .is_some_and(|(name, _)| is_name(name))
        });
        if after.is_empty()
            || after.starts_with(['\n', '\r'])
            || after.trim_start().starts_with('[')
            || next_pair
        {
            return index;
        }
    }
    quoted.len()
}

fn is_name(text: &str) -> bool {
    let base = text.split_once('(').map_or(text, |(base, _)| base);
    !base.is_empty()
        && base
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The latest entry deleting `record`, if the log holds one.
pub fn deletion_of<'a>(entries: &'a [RedcapLogEntry], record: &str) -> Option<&'a RedcapLogEntry> {
    entries
        .iter()
        .filter(|entry| {
            entry.action()
                == LogAction::Delete {
                    record: record.into(),
                }
        })
        .max_by(|a, b| a.timestamp.cmp(&b.timestamp))
}

/// Gives each row of a REDCap record export the audit record of the latest logging entry that
/// created or updated its record with the row's value, so a correction planned from the rows
/// carries that entry's user, time and reason. Rows the log says nothing about keep none (the
/// planner then states the mapping's default reason). Returns how many rows were matched.
pub fn attach_log_audits(rows: &mut [OdmRow], entries: &[RedcapLogEntry]) -> usize {
    // (record, column, value) -> the latest entry; timestamps sort as text (`YYYY-MM-DD HH:MM`).
    let mut latest: std::collections::BTreeMap<(String, String, String), &RedcapLogEntry> =
        std::collections::BTreeMap::new();
    for entry in entries {
        let record = match entry.action() {
            LogAction::Create { record } | LogAction::Update { record } => record,
            _ => continue,
        };
        for (column, value) in entry.values() {
            let key = (record.clone(), column, value);
            match latest.get(&key) {
                Some(known) if known.timestamp > entry.timestamp => {}
                _ => {
                    latest.insert(key, entry);
                }
            }
        }
    }
    let mut matched = 0;
    for row in rows.iter_mut() {
        let (Some(record), Some(column), Some(value)) = (
            row.key.subject_key.as_deref(),
            row.key.item_oid.as_deref(),
            row.value.text(),
        ) else {
            continue;
        };
        let key = (record.to_string(), column.to_string(), value.to_string());
        if let Some(entry) = latest.get(&key) {
            row.audit = Some(entry.audit_record());
            matched += 1;
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str, details: &str) -> RedcapLogEntry {
        RedcapLogEntry {
            timestamp: "2024-06-02 10:00".into(),
            username: "jane.doe".into(),
            action: action.into(),
            details: details.into(),
        }
    }

    #[test]
    fn actions_name_their_record() {
        let check = |action: &str, expected: LogAction| {
            assert_eq!(entry(action, "").action(), expected, "{action}");
        };
        check(
            "Update record 12",
            LogAction::Update {
                record: "12".into(),
            },
        );
        check(
            "Update record (import) STIR-01",
            LogAction::Update {
                record: "STIR-01".into(),
            },
        );
        check(
            "Update record (API) 7 (Week 4)",
            LogAction::Update { record: "7".into() },
        );
        check("Create record 3", LogAction::Create { record: "3".into() });
        check("Delete record 3", LogAction::Delete { record: "3".into() });
        check("Manage/Design", LogAction::Other);
        check("Update record", LogAction::Other);
    }

    #[test]
    fn details_give_values_and_the_reason() {
        let check = |details: &str, values: &[(&str, &str)], reason: Option<&str>| {
            let entry = entry("Update record 1", details);
            let expected: Vec<(String, String)> = values
                .iter()
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect();
            assert_eq!(entry.values(), expected, "{details}");
            assert_eq!(entry.reason().as_deref(), reason, "{details}");
        };
        check(
            "pga_vas = '4.5', globals_complete = '2'",
            &[("pga_vas", "4.5"), ("globals_complete", "2")],
            None,
        );
        check(
            "comment = 'it's fine, really', ck = '700'",
            &[("comment", "it's fine, really"), ("ck", "700")],
            None,
        );
        check(
            "pred_change(1) = checked, pred_change(2) = unchecked",
            &[("pred_change___1", "1"), ("pred_change___2", "0")],
            None,
        );
        check(
            "[instance = 2], haq_di = '0.75'",
            &[("haq_di", "0.75")],
            None,
        );
        check(
            "pga_vas = '4.5'\nReason for change: transcription error",
            &[("pga_vas", "4.5")],
            Some("transcription error"),
        );
        check(
            "pga_vas = '4.5' [Reason for changes: 'source document verified']",
            &[("pga_vas", "4.5")],
            Some("source document verified"),
        );
    }

    #[test]
    fn a_log_is_an_array_of_entries() {
        let log = parse_log(
            r#"[{"timestamp":"2024-06-02 10:00","username":"jane.doe","action":"Update record 1","details":"a = '1'"}]"#,
        )
        .expect("log");
        assert_eq!(log[0].username, "jane.doe");
        assert!(matches!(
            parse_log(r#"[{"username":"x"}]"#),
            Err(RedcapError::Missing { index: 0, .. })
        ));
        assert!(matches!(
            parse_log("{}"),
            Err(RedcapError::NotAnArray { what: "log" })
        ));
    }

    #[test]
    fn the_latest_entry_setting_a_value_is_the_one_attached() {
        let metadata = crate::redcap::RedcapMetadata::from_json(
            r#"[{"field_name":"record_id","form_name":"f"},{"field_name":"pga_vas","form_name":"f"}]"#,
        )
        .expect("metadata");
        let mut rows = crate::redcap::records_to_rows(
            r#"[{"record_id":"1","pga_vas":"4.5"}]"#,
            &metadata,
            "P",
        )
        .expect("rows");
        let mut older = entry("Update record 1", "pga_vas = '4.5'");
        older.timestamp = "2024-05-01 09:00".into();
        older.username = "someone.else".into();
        let newer = entry(
            "Update record 1",
            "pga_vas = '4.5'\nReason for change: query 12 answered",
        );
        let other_record = entry("Update record 2", "pga_vas = '4.5'");
        let other_value = entry("Update record 1", "pga_vas = '9'");
        let matched = attach_log_audits(&mut rows, &[older, newer, other_record, other_value]);
        assert_eq!(matched, 1);
        let audit = rows[0].audit.clone().expect("audit");
        assert_eq!(audit.user_oid.as_deref(), Some("jane.doe"));
        assert_eq!(audit.date_time_stamp.as_deref(), Some("2024-06-02 10:00"));
        assert_eq!(
            audit.reason_for_change.as_deref(),
            Some("query 12 answered")
        );
    }
}
