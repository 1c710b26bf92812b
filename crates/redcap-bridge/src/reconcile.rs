//! What a full reconciliation of REDCap against Myolog found, and its report files: subjects
//! present on one side only, and forms whose REDCap values Myolog does not hold (which the bridge
//! then sends). Building the report only; pulling REDCap and reading Myolog belong to
//! `crate::bridge`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use myolog_domain::event::EventBody;
use myolog_edc::plan::Change;
use serde::Serialize;

use crate::files::{FileError, write_atomically};

/// One form whose REDCap values Myolog does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub subject: String,
    pub visit: String,
    /// `recorded` (Myolog has no such form), `corrected` (other values), `retracted` (REDCap
    /// has none any more), `enrolled`, `dose`.
    pub kind: &'static str,
    /// The event the bridge sends to close the difference.
    pub event_id: String,
    /// Where the values sit in REDCap (ODM key paths).
    pub sources: Vec<String>,
}

impl Difference {
    pub fn of(change: &Change) -> Self {
        let event = change.to_event();
        let kind = match (&event.body, change) {
            (_, Change::Retraction { .. }) => "retracted",
            (EventBody::AssessmentRecorded(_), _) => "recorded",
            (EventBody::AssessmentCorrected { .. }, _) => "corrected",
            (EventBody::SubjectEnrolled { .. }, _) => "enrolled",
            (EventBody::DoseRecorded(_), _) => "dose",
            _ => "other",
        };
        Self {
            subject: event
                .subject
                .as_ref()
                .map(|subject| subject.as_str().to_string())
                .unwrap_or_default(),
            visit: event
                .visit
                .as_ref()
                .map(|visit| visit.as_str().to_string())
                .unwrap_or_default(),
            kind,
            event_id: change.event_id().to_string(),
            sources: change.sources().iter().map(ToString::to_string).collect(),
        }
    }
}

/// What one reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileSummary {
    /// Unix seconds it began.
    pub began_unix: u64,
    pub redcap_records: usize,
    pub myolog_subjects: usize,
    /// Records in REDCap of which Myolog holds nothing.
    pub redcap_only_subjects: BTreeSet<String>,
    /// Subjects in Myolog that REDCap does not have (deleted there, or never entered there).
    pub myolog_only_subjects: BTreeSet<String>,
    /// Forms whose REDCap values Myolog does not hold; queued and sent.
    pub differences: Vec<Difference>,
    /// Records not imported (unmapped, out of range, ...), counted.
    pub discrepancies: usize,
    /// The report files written, if a directory was named.
    pub report: Option<PathBuf>,
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

impl ReconcileSummary {
    /// The report as CSV: one line per finding (`side`, `subject`, `visit`, `kind`, `event_id`,
    /// `sources`).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("finding,subject,visit,kind,event_id,sources\n");
        for subject in &self.redcap_only_subjects {
            out.push_str(&format!("redcap_only_subject,{},,,,\n", csv_field(subject)));
        }
        for subject in &self.myolog_only_subjects {
            out.push_str(&format!("myolog_only_subject,{},,,,\n", csv_field(subject)));
        }
        for difference in &self.differences {
            out.push_str(&format!(
                "value_missing_in_myolog,{},{},{},{},{}\n",
                csv_field(&difference.subject),
                csv_field(&difference.visit),
                difference.kind,
                csv_field(&difference.event_id),
                csv_field(&difference.sources.join("; "))
            ));
        }
        out
    }

    /// Writes `reconcile-<began>.json` and `.csv` into `dir` (created if missing); returns the JSON
    /// file's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, FileError> {
        std::fs::create_dir_all(dir).map_err(|source| FileError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let stem = format!("reconcile-{}", self.began_unix);
        let json_path = dir.join(format!("{stem}.json"));
        let mut summary = self.clone();
        summary.report = Some(json_path.clone());
        let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
        write_atomically(&json_path, json.as_bytes())?;
        write_atomically(&dir.join(format!("{stem}.csv")), self.to_csv().as_bytes())?;
        Ok(json_path)
    }
}

/// Parses a duration as an operator writes it: a whole number with `s`, `m`, `h` or `d`
/// (`90s`, `30m`, `24h`, `7d`), or `0` for never; seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(0);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit: s, m, h or d (e.g. 24h)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a whole number and s, m, h or d (e.g. 24h)"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is one of s, m, h, d")),
    };
    number
        .checked_mul(scale)
        .filter(|seconds| *seconds <= 365 * 86_400)
        .ok_or_else(|| format!("{text:?}: at most 365d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_with_their_unit() {
        let check = |text: &str, expected: Result<u64, ()>| {
            assert_eq!(parse_duration(text).map_err(|_| ()), expected, "{text}");
        };
        check("24h", Ok(86_400));
        check("90s", Ok(90));
        check("30m", Ok(1800));
        check("7d", Ok(604_800));
        check("0", Ok(0));
        check("24", Err(()));
        check("h", Err(()));
        check("1w", Err(()));
        check("-1h", Err(()));
        check("366d", Err(()));
    }

    #[test]
    fn the_csv_lists_every_finding() {
        let summary = ReconcileSummary {
            redcap_only_subjects: ["R1".to_string()].into(),
            myolog_only_subjects: ["M,1".to_string()].into(),
            differences: vec![Difference {
                subject: "S".into(),
                visit: "W4".into(),
                kind: "corrected",
                event_id: "edc-1".into(),
                sources: vec!["a".into(), "b".into()],
            }],
            ..ReconcileSummary::default()
        };
        assert_eq!(
            summary.to_csv(),
            "finding,subject,visit,kind,event_id,sources\n\
             redcap_only_subject,R1,,,,\n\
             myolog_only_subject,\"M,1\",,,,\n\
             value_missing_in_myolog,S,W4,corrected,edc-1,a; b\n"
        );
    }
}
