//! Dataset-JSON 1.1 output checked against CDISC's own JSON Schema (`tests/schemas/dataset-json-1.1/`,
//! draft 2019-09) and against the rules a schema cannot express: row width, `records` equal to the row
//! count, and each value's JSON type against its column's `dataType`/`targetDataType` as the "Supported
//! Column Data Type Combinations" table of the specification (`dataset-json1-1.md` beside the schema)
//! gives it. The Rust `jsonschema` crate validates (without default features: no HTTP client or TLS,
//! about 30 small dev-only crates, a minute to build on two cores), so the check needs no Python.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use std::path::Path;

use myolog_cdisc::Dataset;
use myolog_cdisc::dataset_json::{write_json, write_ndjson};
use serde_json::Value as Json;

fn schema(file: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schemas/dataset-json-1.1")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Json = serde_json::from_str(&text).unwrap();
    jsonschema::draft201909::new(&schema).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn schema_errors(validator: &jsonschema::Validator, instance: &Json) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The specification's type table: which JSON type a non-null value of a column must have.
fn expected_json_type(column: &Json) -> &'static str {
    let data_type = column["dataType"].as_str().unwrap();
    let target = column.get("targetDataType").and_then(Json::as_str);
    match (data_type, target) {
        ("string" | "date" | "datetime" | "time" | "URI", _) => "string",
        ("decimal", Some("decimal")) => "string",
        ("integer", None) => "integer",
        ("float" | "double", None) => "number",
        ("boolean", None) => "boolean",
        other => panic!("data type combination {other:?} is not in the specification's table"),
    }
}

/// Rules beyond the schema; returns the problems found.
fn semantic_problems(metadata: &Json, rows: &[Json]) -> Vec<String> {
    let mut problems = Vec::new();
    let columns = metadata["columns"].as_array().unwrap();
    if metadata["records"].as_u64() != Some(rows.len() as u64) {
        problems.push(format!(
            "records {} but {} rows",
            metadata["records"],
            rows.len()
        ));
    }
    for (r, row) in rows.iter().enumerate() {
        let Some(cells) = row.as_array() else {
            problems.push(format!("row {r} is not an array"));
            continue;
        };
        if cells.len() != columns.len() {
            problems.push(format!(
                "row {r} has {} values for {} columns",
                cells.len(),
                columns.len()
            ));
        }
        for (cell, column) in cells.iter().zip(columns) {
            let expected = expected_json_type(column);
            let fits = match cell {
                Json::Null => true,
                Json::String(s) if expected == "string" => {
                    // Decimals are exchanged as strings with "." as the separator.
                    column["dataType"] != "decimal" || s.parse::<f64>().is_ok() && !s.contains(',')
                }
                Json::Number(n) if expected == "integer" => n.is_i64(),
                Json::Number(_) => expected == "number",
                Json::Bool(_) => expected == "boolean",
                _ => false,
            };
            if !fits {
                problems.push(format!(
                    "row {r}, column {}: {cell} is not a JSON {expected}",
                    column["name"]
                ));
            }
        }
    }
    problems
}

fn json_of(dataset: &Dataset) -> Json {
    let mut out = Vec::new();
    write_json(&mut out, dataset, &common::file(dataset)).unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn ndjson_lines(dataset: &Dataset) -> Vec<Json> {
    let mut out = Vec::new();
    write_ndjson(&mut out, dataset, &common::file(dataset)).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn json_files_are_valid_against_the_dataset_json_1_1_schema() {
    let validator = schema("dataset.schema.json");
    for dataset in [common::adsl(), common::adeff()] {
        let document = json_of(&dataset);
        assert_eq!(
            schema_errors(&validator, &document),
            Vec::<String>::new(),
            "{}",
            dataset.name
        );
        let rows = document["rows"].as_array().unwrap();
        assert_eq!(
            semantic_problems(&document, rows),
            Vec::<String>::new(),
            "{}",
            dataset.name
        );
        assert_eq!(document["datasetJSONVersion"], "1.1.0");
        assert_eq!(
            document["datasetJSONCreationDateTime"],
            "2026-12-07T03:30:15Z"
        );
    }
}

#[test]
fn ndjson_header_and_rows_are_valid_and_agree_with_the_json_file() {
    // CDISC's own NDJSON schema does not compile (see tests/schemas/README.md); the main schema, where
    // `rows` is optional, is the contract of the metadata line.
    let validator = schema("dataset.schema.json");
    for dataset in [common::adsl(), common::adeff()] {
        let lines = ndjson_lines(&dataset);
        let (header, rows) = lines.split_first().unwrap();
        assert_eq!(
            schema_errors(&validator, header),
            Vec::<String>::new(),
            "{} header",
            dataset.name
        );
        assert!(header.get("rows").is_none());
        assert_eq!(
            semantic_problems(header, rows),
            Vec::<String>::new(),
            "{}",
            dataset.name
        );
        // Reassembled, the NDJSON is the JSON file.
        let mut whole = header.clone();
        whole["rows"] = Json::Array(rows.to_vec());
        assert_eq!(schema_errors(&validator, &whole), Vec::<String>::new());
        assert_eq!(whole, json_of(&dataset));
    }
}

#[test]
fn value_conventions_match_the_specification() {
    let document = json_of(&common::adsl());
    let columns = document["columns"].as_array().unwrap();
    let column = |name: &str| columns.iter().find(|c| c["name"] == name).unwrap();
    assert_eq!(column("HEIGHTBL")["targetDataType"], "decimal");
    assert_eq!(column("TRTSDT")["dataType"], "date");
    assert_eq!(column("TRTSDT")["targetDataType"], "integer");
    assert_eq!(column("TRTSDT")["displayFormat"], "DATE9.");
    assert!(column("RFSTDTC").get("targetDataType").is_none());
    assert_eq!(column("USUBJID")["keySequence"], 1);
    assert_eq!(column("USUBJID")["length"], 8);
    let rows = document["rows"].as_array().unwrap();
    let index = |name: &str| columns.iter().position(|c| c["name"] == name).unwrap();
    assert_eq!(rows[0][index("HEIGHTBL")], "162.9");
    assert_eq!(rows[1][index("WEIGHTBL")].to_string(), "0.1");
    assert_eq!(rows[0][index("TRTSDT")], "2024-01-02");
    assert_eq!(rows[0][index("RANDDTM")], "2023-12-28T09:30:15");
    assert_eq!(rows[0][index("ITTFL")], true);
    // Missing is null, empty is "".
    assert_eq!(rows[0][index("DCSREAS")], "");
    assert_eq!(rows[2][index("DCSREAS")], Json::Null);
    assert_eq!(rows[2][index("SEX")], "");
    assert_eq!(rows[2][index("AGE")], Json::Null);
}

#[test]
fn the_checks_reject_broken_documents() {
    let validator = schema("dataset.schema.json");
    let good = json_of(&common::adsl());

    let mut unknown_attribute = good.clone();
    unknown_attribute["isReferenceData"] = Json::Bool(false);
    assert!(!schema_errors(&validator, &unknown_attribute).is_empty());

    let mut bad_version = good.clone();
    bad_version["datasetJSONVersion"] = "1.0.0".into();
    assert!(!schema_errors(&validator, &bad_version).is_empty());

    let mut wrong_count = good.clone();
    wrong_count["records"] = 2.into();
    let rows = wrong_count["rows"].as_array().unwrap().clone();
    assert_eq!(
        semantic_problems(&wrong_count, &rows),
        vec!["records 2 but 3 rows".to_owned()]
    );

    let mut numeric_decimal = good.clone();
    numeric_decimal["rows"][0][4] = serde_json::json!(162.9);
    let rows = numeric_decimal["rows"].as_array().unwrap().clone();
    assert_eq!(semantic_problems(&numeric_decimal, &rows).len(), 1);

    let mut short_row = good;
    short_row["rows"][1].as_array_mut().unwrap().pop();
    let rows = short_row["rows"].as_array().unwrap().clone();
    assert_eq!(
        semantic_problems(&short_row, &rows),
        vec!["row 1 has 12 values for 13 columns".to_owned()]
    );
}
