//! Opening things that are not (usable) Myolog logs fails with a clear, typed error.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use std::process::Command;

use common::{event, open, options};
use myolog_storage::{EventLog, ExpectedVersion, LogOptions, StorageError, format};

const CHILD_PATH_VAR: &str = "MYOLOG_TEST_SECOND_PROCESS_OPEN";

fn open_error(path: &std::path::Path, options: LogOptions) -> StorageError {
    EventLog::open(path, options).expect_err("open must fail")
}

fn log_with_one_event(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("log");
    let log = open(&path);
    log.append(vec![event("e1", "s", ExpectedVersion::Any)], "tester")
        .unwrap();
    path
}

#[test]
fn paths_that_are_not_myolog_logs_are_refused_and_left_untouched() {
    type Setup = fn(&std::path::Path) -> std::path::PathBuf;
    let cases: &[(&str, Setup, &str)] = &[
        (
            "a regular file",
            |dir| {
                let path = dir.join("file");
                std::fs::write(&path, b"hello").unwrap();
                path
            },
            "not a directory",
        ),
        (
            "a directory of other files",
            |dir| {
                std::fs::write(dir.join("notes.txt"), b"hello").unwrap();
                dir.to_path_buf()
            },
            "no sled database",
        ),
        (
            "a sled database with someone else's data",
            |dir| {
                let path = dir.join("other-db");
                let db = common::raw_sled(&path);
                db.insert(b"key", b"value").unwrap();
                db.flush().unwrap();
                path
            },
            "without the Myolog magic",
        ),
        (
            "a sled database with the log tree but another magic",
            |dir| {
                let path = dir.join("other-magic");
                let db = common::raw_sled(&path);
                let tree = db.open_tree(format::TREE_NAME).unwrap();
                tree.insert(format::META_MAGIC_KEY, b"other-log").unwrap();
                db.flush().unwrap();
                path
            },
            "magic value",
        ),
    ];
    for (what, setup, reason_fragment) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = setup(dir.path());
        let listing_before = listing(&path);
        let trees_before = tree_names(&path);
        match open_error(&path, options()) {
            StorageError::NotAMyologLog { reason, .. } => {
                assert!(reason.contains(reason_fragment), "{what}: {reason}")
            }
            other => panic!("{what}: expected NotAMyologLog, got {other}"),
        }
        assert_eq!(
            listing(&path),
            listing_before,
            "{what}: the path was modified"
        );
        assert_eq!(
            tree_names(&path),
            trees_before,
            "{what}: the database's trees were changed"
        );
    }
}

fn tree_names(path: &std::path::Path) -> Vec<Vec<u8>> {
    if !path.join("db").exists() {
        return Vec::new();
    }
    let db = common::raw_sled(path);
    let mut names: Vec<_> = db.tree_names().iter().map(|name| name.to_vec()).collect();
    names.sort();
    names
}

fn listing(path: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            // sled rewrites its own recovery snapshot (`snap.*`) whenever a database is opened; that
            // is not a change of the data.
            let mut names: Vec<_> = entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with("snap."))
                .collect();
            names.sort();
            names
        }
        Err(_) => vec!["<not a directory>".into()],
    }
}

#[test]
fn a_log_of_a_newer_format_is_refused_with_both_versions_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with_one_event(&dir);
    {
        let db = common::raw_sled(&path);
        let tree = db.open_tree(format::TREE_NAME).unwrap();
        tree.insert(
            format::META_FORMAT_KEY,
            &(format::FORMAT_VERSION + 1).to_be_bytes()[..],
        )
        .unwrap();
        db.flush().unwrap();
    }
    let error = open_error(&path, options());
    assert!(
        matches!(error, StorageError::UnsupportedFormat { found, supported, .. }
            if found == format::FORMAT_VERSION + 1 && supported == format::FORMAT_VERSION),
        "{error}"
    );
    assert!(error.to_string().contains("upgrade"), "{error}");
}

#[test]
fn a_missing_log_is_not_created_when_creation_was_not_requested() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent");
    let error = open_error(
        &path,
        LogOptions {
            create_if_missing: false,
            ..options()
        },
    );
    assert!(matches!(error, StorageError::Missing { .. }), "{error}");
    assert!(!path.exists());
}

#[test]
fn a_second_handle_in_the_same_process_gets_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with_one_event(&dir);
    let _first = open(&path);
    let error = open_error(&path, options());
    assert!(matches!(error, StorageError::InUse { .. }), "{error}");
    assert!(error.to_string().contains("in use"), "{error}");
}

#[test]
fn a_second_process_gets_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_with_one_event(&dir);
    let _first = open(&path);
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_process_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_PATH_VAR, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("OPEN RESULT: in use"),
        "child said: {stdout}"
    );
}

/// Runs as the second process of `a_second_process_gets_in_use`; does nothing in a normal run.
#[test]
fn second_process_helper() {
    let Some(path) = std::env::var_os(CHILD_PATH_VAR) else {
        return;
    };
    let options = LogOptions {
        lock_wait: std::time::Duration::from_millis(100),
        ..options()
    };
    match EventLog::open(&path, options) {
        Ok(_) => println!("OPEN RESULT: opened"),
        Err(StorageError::InUse { .. }) => println!("OPEN RESULT: in use"),
        Err(other) => println!("OPEN RESULT: other error: {other}"),
    }
}

#[test]
fn a_creation_killed_half_way_is_completed_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    // sled creates `blobs/` before `db` and `conf`; a kill in between leaves only the directory.
    std::fs::create_dir_all(path.join("blobs")).unwrap();
    let log = open(&path);
    log.append(vec![event("e1", "s", ExpectedVersion::Any)], "tester")
        .unwrap();
    assert_eq!(log.head().seq, 1);
}
