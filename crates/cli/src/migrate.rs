//! `myolog migrate`: converts an event log of an older on-disk format into a new directory, offline,
//! and verifies the copy (the conversion itself is `myolog_storage::legacy_v1::migrate`). Not for
//! copying a current log (use `archive` and `restore`) and never in place: the original is left as
//! it was.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use myolog_storage::LogOptions;
use myolog_storage::legacy_v1::{self, MigrationReport};

/// `myolog migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Directory of the log to convert (format version 1). Only read; the server must be stopped.
    #[arg(long, value_name = "OLD")]
    pub from: PathBuf,
    /// New or empty directory for the converted log (format version 2).
    #[arg(long, value_name = "NEW")]
    pub to: PathBuf,
}

/// The summary printed after a migration.
pub fn render(report: &MigrationReport, seconds: f64) -> String {
    format!(
        "migrated and verified\nevents: {}\nhead seq: {}\nhead hash: {}\ntime: {seconds:.3} s\n",
        report.events, report.head.seq, report.head.hash
    )
}

/// Runs `myolog migrate`: exit 0 with the summary on stdout, 1 naming what failed.
pub fn run(args: &MigrateArgs) -> ExitCode {
    let started = Instant::now();
    match legacy_v1::migrate(&args.from, &args.to, LogOptions::default()) {
        Ok(report) => {
            print!("{}", render(&report, started.elapsed().as_secs_f64()));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "myolog migrate: {error} (delete {} before trying again)",
                args.to.display()
            );
            ExitCode::FAILURE
        }
    }
}
