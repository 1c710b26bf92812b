//! The package must be byte-reproducible: writing the same input twice gives identical bytes in every
//! format, and the output depends on the caller-supplied time stamp (not the clock).
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use myolog_cdisc::csv::write_csv;
use myolog_cdisc::dataset_json::{write_json, write_ndjson};
use myolog_cdisc::xpt::write_xpt;
use myolog_cdisc::{Dataset, DateTime};

fn all_formats(dataset: &Dataset, created: DateTime) -> Vec<Vec<u8>> {
    let mut file = common::file(dataset);
    file.created = created;
    let (mut xpt, mut json, mut ndjson, mut csv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    write_xpt(&mut xpt, dataset, created).unwrap();
    write_json(&mut json, dataset, &file).unwrap();
    write_ndjson(&mut ndjson, dataset, &file).unwrap();
    write_csv(&mut csv, dataset).unwrap();
    vec![xpt, json, ndjson, csv]
}

#[test]
fn two_writes_of_the_same_input_are_byte_identical() {
    for dataset in [common::adsl(), common::adeff()] {
        let first = all_formats(&dataset, common::created());
        let second = all_formats(&dataset.clone(), common::created());
        for (a, b) in first.iter().zip(&second) {
            assert!(!a.is_empty());
            assert_eq!(a, b, "{}", dataset.name);
        }
    }
}

#[test]
fn the_time_stamp_comes_from_the_caller() {
    let dataset = common::adsl();
    let early = all_formats(&dataset, common::created());
    let late = all_formats(&dataset, common::at(2027, 1, 1, 0));
    // XPORT headers and the JSON creation time change; CSV has no time stamp.
    assert_ne!(early[0], late[0]);
    assert_ne!(early[1], late[1]);
    assert_ne!(early[2], late[2]);
    assert_eq!(early[3], late[3]);
    assert!(String::from_utf8_lossy(&late[0]).contains("01JAN27:00:30:15"));
}
