//! The analysis and tabulation package (`myolog export --package DIR`): ADSL, ADEFF, SDTM DM and the
//! trial design datasets TA/TE/TV/TI/TS, each in SAS XPORT v5, Dataset-JSON 1.1 and/or CSV, with the
//! Define-XML 2.1 that describes them, a short analysis data reviewer's guide and `manifest.json`
//! (every file's SHA-256, the log head the package was built from).
//!
//! Everything is a function of the replayed log: the one time stamp written (file creation and the
//! database's last modification) is the recorded-at time of the last event the replay applied, never
//! the wall clock, so two exports of the same log at the same as-of point are byte-identical and
//! [`verify`] can rebuild a package from the log and name the file that differs.
//!
//! The datasets are built by [`adsl`], [`adeff`], [`dm`] and [`trial_design`] as
//! `myolog_cdisc::Dataset`s and written by `myolog-cdisc`; [`define`] and [`guide`] describe them and
//! [`manifest`] lists them. Conventions (populations, windows, rounding) are documented in the
//! reviewer's guide ([`guide`]) and in `docs/analysis-package.md`.

pub mod adeff;
pub mod adsl;
pub mod define;
pub mod dm;
pub mod guide;
pub mod manifest;
pub mod subject;
pub mod trial_design;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use myolog_cdisc::dataset_json::{DatasetJsonFile, write_json};
use myolog_cdisc::{CalendarDate, CdiscError, Dataset, DateTime, TimeOfDay};
use myolog_domain::event::{ClinicalDate, StudyId};
use myolog_projection::Study;

use crate::ENGINE_VERSION;
use crate::replay::Replay;

/// A file format of the package's datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PackageFormat {
    /// SAS XPORT v5, `.xpt`.
    Xpt,
    /// CDISC Dataset-JSON 1.1, `.json`.
    DatasetJson,
    /// RFC 4180 CSV, `.csv`.
    Csv,
    /// CDISC Dataset-JSON 1.1 as NDJSON, `.ndjson`: the metadata object on line 1, one row a line
    /// (for datasets too large to load whole). Written when asked for.
    DatasetNdjson,
}

impl PackageFormat {
    /// The formats a package holds unless others are asked for.
    pub const ALL: [PackageFormat; 3] = [Self::Xpt, Self::DatasetJson, Self::Csv];
    /// Every format a package can hold.
    pub const KNOWN: [PackageFormat; 4] =
        [Self::Xpt, Self::DatasetJson, Self::Csv, Self::DatasetNdjson];

    pub fn extension(self) -> &'static str {
        match self {
            Self::Xpt => "xpt",
            Self::DatasetJson => "json",
            Self::Csv => "csv",
            Self::DatasetNdjson => "ndjson",
        }
    }

    /// The name used on the command line and in the manifest.
    pub fn key(self) -> &'static str {
        match self {
            Self::Xpt => "xpt",
            Self::DatasetJson => "dataset-json",
            Self::Csv => "csv",
            Self::DatasetNdjson => "dataset-ndjson",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::KNOWN.into_iter().find(|format| format.key() == key)
    }
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageOptions {
    /// The study to export; `None` when the log holds exactly one.
    pub study: Option<String>,
    /// Formats of every dataset, at least one.
    pub formats: Vec<PackageFormat>,
    /// The reason given for exporting arms of a blinded study before its unblinding, recorded in the
    /// manifest; `None` refuses such an export.
    pub unblinded_reason: Option<String>,
}

/// Why a package cannot be built or verified.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("the log holds no study as of sequence {0}: nothing to export")]
    NoStudy(u64),
    #[error("the log holds several studies ({0}); name one with --study")]
    WhichStudy(String),
    #[error("study {0} is not in the log as of this point")]
    UnknownStudy(String),
    #[error(
        "study {0} is blinded and not yet unblinded: the package would show each subject's arm; \
         export it with --unblinded-export --reason TEXT (recorded in the manifest), or unblind the study"
    )]
    Blinded(String),
    #[error("--unblinded-export needs a non-empty --reason")]
    EmptyReason,
    #[error("no format to write: give at least one")]
    NoFormat,
    #[error("{0}")]
    Cdisc(#[from] CdiscError),
    #[error("{what}: {why}")]
    Derivation { what: String, why: String },
    #[error(
        "{dir} holds files that are not part of this package ({others}); write it to an empty \
         directory or one holding only an earlier export of the same package files"
    )]
    NotEmpty { dir: PathBuf, others: String },
    #[error("manifest: {0}")]
    Manifest(String),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl PackageError {
    pub(crate) fn derivation(what: impl Into<String>, why: impl Into<String>) -> Self {
        Self::Derivation {
            what: what.into(),
            why: why.into(),
        }
    }
}

/// One file of the package: its name inside the package directory and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The study, the replay point and the time stamp every file of a package shares.
#[derive(Debug)]
pub struct Context<'a> {
    pub replay: &'a Replay,
    pub study_id: &'a StudyId,
    pub study: &'a Study,
    /// Recorded-at of the last event applied: the package's creation time.
    pub as_of_time: DateTime,
}

impl Context<'_> {
    /// Dataset-JSON file attributes of one dataset.
    fn json_file(&self, dataset: &Dataset) -> DatasetJsonFile {
        DatasetJsonFile {
            file_oid: format!(
                "MYOLOG.{}.{}.SEQ{}",
                self.study_id, dataset.name, self.replay.last_sequence
            ),
            created: self.as_of_time,
            db_last_modified: self.as_of_time,
            originator: "Myolog".into(),
            source_system_name: "Myolog".into(),
            source_system_version: ENGINE_VERSION.into(),
            study_oid: study_oid(self.study_id),
            metadata_version_oid: metadata_version_oid(self.study_id),
            metadata_ref: Some(define::DEFINE_FILE.into()),
        }
    }
}

pub(crate) fn study_oid(study: &StudyId) -> String {
    format!("STUDY.{study}")
}

pub(crate) fn metadata_version_oid(study: &StudyId) -> String {
    format!("MDV.{study}.PACKAGE")
}

/// A column whose item OID follows the `IT.<DATASET>.<NAME>` convention Define-XML keys on.
pub(crate) fn column(
    dataset: &str,
    name: &str,
    label: &str,
    data_type: myolog_cdisc::DataType,
) -> myolog_cdisc::Column {
    myolog_cdisc::Column::new(&format!("IT.{dataset}.{name}"), name, label, data_type)
}

/// An ADaM numeric date column (SAS day number, shown as DATE9.).
pub(crate) fn date_column(dataset: &str, name: &str, label: &str) -> myolog_cdisc::Column {
    column(dataset, name, label, myolog_cdisc::DataType::Date)
        .with_target(myolog_cdisc::TargetDataType::Integer)
        .with_display_format("DATE9.")
}

/// Text, or a missing value for empty text.
pub(crate) fn text_or_null(text: &str) -> myolog_cdisc::Value {
    if text.is_empty() {
        myolog_cdisc::Value::Null
    } else {
        myolog_cdisc::Value::Text(text.to_string())
    }
}

/// A Y/N flag; `None` is missing.
pub(crate) fn flag(value: Option<bool>) -> myolog_cdisc::Value {
    match value {
        Some(true) => myolog_cdisc::Value::Text("Y".into()),
        Some(false) => myolog_cdisc::Value::Text("N".into()),
        None => myolog_cdisc::Value::Null,
    }
}

/// A clinical date as the CDISC writers take it.
pub(crate) fn calendar(date: ClinicalDate) -> Result<CalendarDate, PackageError> {
    Ok(CalendarDate::new(
        i32::from(date.year()),
        date.month(),
        date.day(),
    )?)
}

/// Days from 1960-01-01 (the SAS epoch) to 1970-01-01 (the Unix epoch).
const SAS_TO_UNIX_DAYS: i64 = 3653;
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// A recorded-at instant (Unix nanoseconds, UTC) to the second, as a CDISC date-time.
pub(crate) fn date_time_of(unix_nanos: i64) -> Result<DateTime, PackageError> {
    let days = unix_nanos.div_euclid(NANOS_PER_DAY);
    let seconds = unix_nanos.rem_euclid(NANOS_PER_DAY) / 1_000_000_000;
    let date = CalendarDate::from_sas_days(days + SAS_TO_UNIX_DAYS)?;
    // Each part is below 24, 60 and 60, so the narrowing cannot fail.
    let part = |value: i64| u8::try_from(value).unwrap_or(0);
    let time = TimeOfDay::new(
        part(seconds / 3600),
        part(seconds / 60 % 60),
        part(seconds % 60),
    )?;
    Ok(DateTime::new(date, time))
}

/// Picks the study the package is for, refusing a blinded study's arms without a recorded reason.
fn study_of<'a>(
    replay: &'a Replay,
    options: &PackageOptions,
) -> Result<(&'a StudyId, &'a Study), PackageError> {
    let studies = &replay.projection.studies;
    let found = match &options.study {
        Some(wanted) => studies
            .iter()
            .find(|(id, _)| id.as_str() == wanted)
            .ok_or_else(|| PackageError::UnknownStudy(wanted.clone()))?,
        None => {
            let mut all = studies.iter();
            match (all.next(), all.next()) {
                (None, _) => return Err(PackageError::NoStudy(replay.last_sequence)),
                (Some(only), None) => only,
                (Some(_), Some(_)) => {
                    let ids: Vec<&str> = studies.keys().map(StudyId::as_str).collect();
                    return Err(PackageError::WhichStudy(ids.join(", ")));
                }
            }
        }
    };
    if let Some(reason) = &options.unblinded_reason
        && reason.trim().is_empty()
    {
        return Err(PackageError::EmptyReason);
    }
    if found.1.hides_arms() && options.unblinded_reason.is_none() {
        return Err(PackageError::Blinded(found.0.to_string()));
    }
    Ok(found)
}

/// Builds every file of the package, in memory, in name order. The manifest is last.
pub fn build(replay: &Replay, options: &PackageOptions) -> Result<Vec<PackageFile>, PackageError> {
    if options.formats.is_empty() {
        return Err(PackageError::NoFormat);
    }
    let (study_id, study) = study_of(replay, options)?;
    let recorded_at = replay
        .last_recorded_at
        .ok_or(PackageError::NoStudy(replay.last_sequence))?;
    let context = Context {
        replay,
        study_id,
        study,
        as_of_time: date_time_of(recorded_at)?,
    };
    let subjects = subject::subjects(&context)?;
    let adsl = adsl::dataset(&context, &subjects)?;
    let adeff = adeff::dataset(&context, &subjects)?;
    let dm = dm::dataset(&context, &subjects)?;
    let mut datasets = vec![adsl, adeff, dm];
    datasets.extend(trial_design::datasets(&context)?);

    let mut formats = options.formats.clone();
    formats.sort();
    formats.dedup();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for dataset in &datasets {
        for format in &formats {
            let mut bytes = Vec::new();
            match format {
                PackageFormat::Xpt => {
                    myolog_cdisc::xpt::write_xpt(&mut bytes, dataset, context.as_of_time)?
                }
                PackageFormat::DatasetJson => {
                    write_json(&mut bytes, dataset, &context.json_file(dataset))?
                }
                PackageFormat::Csv => myolog_cdisc::csv::write_csv(&mut bytes, dataset)?,
                PackageFormat::DatasetNdjson => myolog_cdisc::dataset_json::write_ndjson(
                    &mut bytes,
                    dataset,
                    &context.json_file(dataset),
                )?,
            }
            files.insert(dataset_file(&dataset.name, *format), bytes);
        }
    }
    let define = define::document(&context, &datasets, formats[0])?;
    files.insert(define::DEFINE_FILE.into(), define);
    files.insert(
        guide::GUIDE_FILE.into(),
        guide::render(&context, &datasets, &formats).into_bytes(),
    );
    let mut out: Vec<PackageFile> = files
        .into_iter()
        .map(|(name, bytes)| PackageFile { name, bytes })
        .collect();
    let manifest = manifest::Manifest::of(&context, &formats, options, &out);
    out.push(PackageFile {
        name: manifest::MANIFEST_FILE.into(),
        bytes: manifest.to_json(),
    });
    Ok(out)
}

/// The file name of a dataset in a format: the dataset name in lower case, as FDA submissions name them.
pub fn dataset_file(dataset: &str, format: PackageFormat) -> String {
    format!("{}.{}", dataset.to_ascii_lowercase(), format.extension())
}

/// Writes the files into `dir` (created if missing). A directory holding anything that is not part
/// of this package (another format's files, notes) is refused: the package would no longer be what
/// its manifest lists, and `verify --package` would report the leftovers.
pub fn write(dir: &Path, files: &[PackageFile]) -> Result<(), PackageError> {
    std::fs::create_dir_all(dir).map_err(|source| PackageError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let others: Vec<String> = compare(dir, files)?
        .into_iter()
        .filter_map(|difference| match difference {
            Difference::Extra(name) => Some(name),
            _ => None,
        })
        .collect();
    if !others.is_empty() {
        return Err(PackageError::NotEmpty {
            dir: dir.to_path_buf(),
            others: others.join(", "),
        });
    }
    for file in files {
        let path = dir.join(&file.name);
        std::fs::write(&path, &file.bytes)
            .map_err(|source| PackageError::Write { path, source })?;
    }
    Ok(())
}

/// What a verification found wrong, one entry per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// In the rebuilt package but not in the directory.
    Missing(String),
    /// Bytes differ from the rebuilt file.
    Changed(String),
    /// In the directory but not part of the package.
    Extra(String),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(name) => write!(f, "{name}: missing"),
            Self::Changed(name) => write!(
                f,
                "{name}: changed (differs from the package rebuilt from the log)"
            ),
            Self::Extra(name) => write!(f, "{name}: not part of the package"),
        }
    }
}

/// Compares a package directory with the files rebuilt from the log; empty when identical.
pub fn compare(dir: &Path, rebuilt: &[PackageFile]) -> Result<Vec<Difference>, PackageError> {
    let mut differences = Vec::new();
    for file in rebuilt {
        let path = dir.join(&file.name);
        match std::fs::read(&path) {
            Ok(bytes) if bytes == file.bytes => {}
            Ok(_) => differences.push(Difference::Changed(file.name.clone())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                differences.push(Difference::Missing(file.name.clone()));
            }
            Err(source) => return Err(PackageError::Read { path, source }),
        }
    }
    let entries = std::fs::read_dir(dir).map_err(|source| PackageError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut extra = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| PackageError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !rebuilt.iter().any(|file| file.name == name) {
            extra.push(Difference::Extra(name));
        }
    }
    extra.sort_by_key(ToString::to_string);
    differences.extend(extra);
    Ok(differences)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_at_instants_become_utc_date_times() {
        assert_eq!(date_time_of(0).unwrap().iso_utc(), "1970-01-01T00:00:00Z");
        // 2026-11-25T14:30:05.999Z: the fraction of a second is cut, not rounded.
        let nanos = 1_764_081_005_999_000_000;
        assert_eq!(
            date_time_of(nanos).unwrap().iso_utc(),
            "2025-11-25T14:30:05Z"
        );
        assert_eq!(date_time_of(-1).unwrap().iso_utc(), "1969-12-31T23:59:59Z");
    }

    /// A package of a study registered without a protocol (the synthetic cohort's test log).
    fn no_protocol_package(formats: Vec<PackageFormat>) -> Vec<PackageFile> {
        let dir = tempfile::tempdir().unwrap();
        crate::test_log::cohort_log(dir.path(), &myolog_synth::Cohort::new(3, 4));
        let log = crate::open_log(dir.path()).unwrap();
        let replay = crate::replay::project(
            &log,
            crate::replay::AsOf::Head,
            &mut crate::progress::Progress::hidden(),
        )
        .unwrap();
        let options = PackageOptions {
            study: None,
            formats,
            unblinded_reason: None,
        };
        build(&replay, &options).unwrap()
    }

    #[test]
    fn a_study_without_protocol_gets_analysis_datasets_and_dm_but_no_trial_design() {
        let files = no_protocol_package(vec![PackageFormat::Csv]);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "adeff.csv",
                "adrg.md",
                "adsl.csv",
                "define.xml",
                "dm.csv",
                "manifest.json"
            ]
        );
        let text = |name: &str| {
            String::from_utf8(files.iter().find(|f| f.name == name).unwrap().bytes.clone()).unwrap()
        };
        // One ADSL row per subject (header + 4).
        assert_eq!(text("adsl.csv").lines().count(), 5);
        let adeff = text("adeff.csv");
        let header: Vec<&str> = adeff.lines().next().unwrap().split(',').collect();
        let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
        for line in adeff.lines().skip(1) {
            // No field of the synthetic cohort's rows has a comma or quote.
            let cells: Vec<&str> = line.split(',').collect();
            if matches!(cells[at("PARAMCD")], "DOI" | "TIS") {
                assert_eq!(
                    (cells[at("BASE")], cells[at("CHG")], cells[at("PCHG")]),
                    ("", "", ""),
                    "{line}"
                );
            }
            // Without a protocol the baseline is visit 0 and no visit is outside a window.
            if cells[at("ABLFL")] == "Y" {
                assert_eq!(cells[at("AVISITN")], "0", "{line}");
            }
            assert_eq!(cells[at("ANL01FL")], "Y", "{line}");
        }
        assert!(text("adrg.md").contains("Registered without a protocol"));
    }

    #[test]
    fn a_package_without_a_format_or_with_a_blank_reason_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        crate::test_log::cohort_log(dir.path(), &myolog_synth::Cohort::new(3, 2));
        let log = crate::open_log(dir.path()).unwrap();
        let replay = crate::replay::project(
            &log,
            crate::replay::AsOf::Head,
            &mut crate::progress::Progress::hidden(),
        )
        .unwrap();
        let options = |formats, reason: Option<&str>| PackageOptions {
            study: None,
            formats,
            unblinded_reason: reason.map(str::to_string),
        };
        assert!(matches!(
            build(&replay, &options(vec![], None)),
            Err(PackageError::NoFormat)
        ));
        assert!(matches!(
            build(&replay, &options(vec![PackageFormat::Csv], Some(" "))),
            Err(PackageError::EmptyReason)
        ));
        let unknown = PackageOptions {
            study: Some("NOPE".into()),
            ..options(vec![PackageFormat::Csv], None)
        };
        assert!(matches!(
            build(&replay, &unknown),
            Err(PackageError::UnknownStudy(_))
        ));
        // Nothing replayed: no study to export.
        let empty = crate::replay::project(
            &log,
            crate::replay::AsOf::Sequence(0),
            &mut crate::progress::Progress::hidden(),
        )
        .unwrap();
        assert!(matches!(
            build(&empty, &options(vec![PackageFormat::Csv], None)),
            Err(PackageError::NoStudy(0))
        ));
    }

    #[test]
    fn a_directory_with_other_files_is_refused_and_an_earlier_export_is_replaced() {
        let files = no_protocol_package(vec![PackageFormat::Csv]);
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &files).unwrap();
        // The same package again over itself: fine, and identical.
        write(dir.path(), &files).unwrap();
        assert!(compare(dir.path(), &files).unwrap().is_empty());
        std::fs::write(dir.path().join("adsl.xpt"), b"stale").unwrap();
        let error = write(dir.path(), &files).unwrap_err().to_string();
        assert!(error.contains("(adsl.xpt)"), "{error}");
    }

    #[test]
    fn formats_round_trip_their_keys() {
        for format in PackageFormat::ALL {
            assert_eq!(PackageFormat::from_key(format.key()), Some(format));
        }
        assert_eq!(PackageFormat::from_key("sas"), None);
        assert_eq!(dataset_file("ADSL", PackageFormat::Xpt), "adsl.xpt");
    }
}
