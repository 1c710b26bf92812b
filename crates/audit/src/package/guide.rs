//! The analysis data reviewer's guide (`adrg.md`) written beside the datasets: which log and point it
//! came from, the datasets and their row counts, the analysis populations with their rules and counts,
//! every derivation rule (the same text as the Define-XML MethodDefs) and the conventions for dates,
//! missing values and rounding. Generated from the same values as the datasets, so it cannot describe
//! a different package.

use std::fmt::Write as _;

use myolog_cdisc::{Dataset, Value};

use super::define::{METHOD_TEXTS, PACKAGE_ALGORITHM, ROUNDING_RULE};
use super::{Context, PackageFormat, dataset_file};
use crate::ENGINE_VERSION;

pub const GUIDE_FILE: &str = "adrg.md";

/// Count of `Y` in a flag column of a dataset.
fn count_y(dataset: &Dataset, column: &str) -> usize {
    let Some(index) = dataset.columns.iter().position(|c| c.name == column) else {
        return 0;
    };
    dataset
        .rows
        .iter()
        .filter(|row| matches!(&row[index], Value::Text(t) if t == "Y"))
        .count()
}

/// The guide as Markdown.
pub fn render(context: &Context<'_>, datasets: &[Dataset], formats: &[PackageFormat]) -> String {
    let mut out = String::new();
    let study = context.study_id;
    let replay = context.replay;
    let _ = writeln!(out, "# Analysis Data Reviewer's Guide: {study}\n");
    let _ = writeln!(out, "{}\n", context.study.title);
    let _ = writeln!(out, "## Source\n");
    let _ = writeln!(
        out,
        "- Built by Myolog {ENGINE_VERSION} from the study's event log as of sequence {} \
         (chain hash `{}`, recorded at {}).",
        replay.last_sequence,
        replay.chain_hash.to_hex(),
        context.as_of_time.iso_utc()
    );
    let _ = writeln!(
        out,
        "- Every time stamp in the package is that recorded-at time, never the clock of the export, so \
         the same log and as-of point give byte-identical files. `myolog verify --package DIR --data LOG` \
         rebuilds the package from the log and names any file that differs."
    );
    match &context.study.protocol {
        Some(history) => {
            let _ = writeln!(
                out,
                "- Protocol in force: {}.",
                history.current().reference()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "- Registered without a protocol: no trial design datasets."
            );
        }
    }
    if context.study.hides_arms() {
        let _ = writeln!(
            out,
            "- **The study is blinded and not unblinded at this point of the log.** This package shows \
             arms because the export was requested with a recorded reason (see `manifest.json`)."
        );
    }
    let _ = writeln!(out, "\n## Datasets\n");
    let _ = writeln!(out, "| Dataset | Label | Rows | Files |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    for dataset in datasets {
        let files: Vec<String> = formats
            .iter()
            .map(|format| format!("`{}`", dataset_file(&dataset.name, *format)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            dataset.name,
            dataset.label,
            dataset.rows.len(),
            files.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\nMetadata: `define.xml` (Define-XML 2.1). Checksums and the log point: `manifest.json`."
    );
    if let Some(adsl) = datasets.iter().find(|d| d.name == super::adsl::NAME) {
        let _ = writeln!(out, "\n## Populations\n");
        let _ = writeln!(
            out,
            "The protocol file has no population section, so the populations are derived from the \
             enrolment and dose facts in the log:\n"
        );
        let _ = writeln!(out, "| Flag | Subjects with Y | Rule |");
        let _ = writeln!(out, "| --- | --- | --- |");
        for flag in ["ITTFL", "SAFFL", "EFFFL", "ELIGFL"] {
            let rule = METHOD_TEXTS
                .iter()
                .find(|(suffix, _, _)| *suffix == flag)
                .map_or("", |(_, _, text)| text);
            let _ = writeln!(
                out,
                "| {flag} | {} of {} | {rule} |",
                count_y(adsl, flag),
                adsl.rows.len()
            );
        }
    }
    let _ = writeln!(out, "\n## Derivations\n");
    let _ = writeln!(
        out,
        "Algorithm id of the package's own derivations: `{PACKAGE_ALGORITHM}`. Scores (MMT-8, HAQ-DI, \
         CDASI, DOI, TIS, biomarker changes) are the scoring engine's, named per row in ADEFF.ALGOID and \
         per parameter in the Define-XML value-level metadata.\n"
    );
    for (suffix, name, text) in METHOD_TEXTS {
        let _ = writeln!(out, "- **{name}** ({suffix}): {text}");
    }
    let _ = writeln!(out, "\n## Conventions\n");
    let _ = writeln!(out, "- Rounding: {ROUNDING_RULE}");
    let _ = writeln!(
        out,
        "- Dates: ADaM dates (RANDDT, TRTSDT, TRTEDT, RFICDT, ADT) are SAS day numbers with the DATE9. \
         format in XPORT, ISO 8601 text with `targetDataType` integer in Dataset-JSON and ISO 8601 in CSV; \
         SDTM --DTC variables are ISO 8601 text."
    );
    let _ = writeln!(
        out,
        "- Missing: a value the log does not hold is missing (null in Dataset-JSON, blank in XPORT and \
         CSV), never imputed. Sex, race and the informed-consent date are missing for subjects enrolled \
         by events written before those fields existed; COUNTRY is not recorded."
    );
    let _ = writeln!(
        out,
        "- ADEFF holds one record per subject, parameter and analysis visit; visits outside their \
         protocol window are kept with ANL01FL missing."
    );
    out
}
