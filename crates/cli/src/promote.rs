//! `myolog promote`: makes a stopped follower's volume (or an empty one) the new primary's after
//! the primary is lost — caught up from the archive, with a writer epoch newer than every epoch in
//! the archive, recorded on the volume — so that `myolog serve --archive URL` (without `--follow`)
//! on it is the archive's writer and the old primary is fenced off.
//!
//! It does not stop the old primary or the follower (the orchestrator does: see
//! docs/operations.md) and does not serve: it runs on a log no server holds, and refuses one a
//! server holds open.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use myolog_storage::LogOptions;

/// `myolog promote`.
#[derive(Debug, Clone, Args)]
pub struct PromoteArgs {
    /// Directory of the (stopped) follower's event log, or an empty one to rebuild from the
    /// archive.
    #[arg(long, env = "MYOLOG_DATA")]
    pub data: PathBuf,
    /// The archive the lost primary wrote: file:///dir or s3://bucket/prefix (S3 credentials from
    /// AWS_* in the environment only).
    #[arg(long, env = "MYOLOG_ARCHIVE", value_name = "URL")]
    pub archive: String,
}

/// Runs the promotion and prints what it did.
pub fn run(args: &PromoteArgs) -> ExitCode {
    let result = (|| {
        let target = crate::archive::target(&args.archive).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start the async runtime: {error}"))?;
        runtime
            .block_on(myolog_archive::promote(
                &target,
                &args.data,
                LogOptions::default(),
            ))
            .map_err(|error| format!("{}: {error}", target.description()))
    })();
    match result {
        Ok(report) => {
            let previous = report
                .previous_epoch
                .map_or_else(|| "none".to_string(), |epoch| epoch.to_string());
            println!(
                "ok: promoted {}: {} events caught up from the archive (it ends at seq {}); log \
                 head seq {} hash {}; writer epoch {} (the archive's newest was {previous}), \
                 recorded in {}",
                args.data.display(),
                report.events_appended,
                report.archived.seq,
                report.log_head.seq,
                report.log_head.hash,
                report.epoch,
                args.data.join(myolog_archive::EPOCH_RECORD_FILE).display(),
            );
            println!(
                "next: serve this volume with --archive {} and without --follow",
                args.archive
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("myolog promote: {error}");
            ExitCode::FAILURE
        }
    }
}
