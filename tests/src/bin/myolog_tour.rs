//! `myolog` for the README tour test (`tests/tests/it/readme_tour.rs`): the same entry point as
//! `crates/cli/src/main.rs`, built in this package so that cargo builds it, up to date, before the
//! test runs and hands the test its path (`CARGO_BIN_EXE_myolog-tour`); another package's binary
//! comes with no such guarantee and may be stale or missing.

fn main() -> std::process::ExitCode {
    myolog_cli::main()
}
