//! The archive on the command line: where an archive lives (`file:///dir` or
//! `s3://bucket/prefix`, credentials only from the environment), `serve`'s archive, follower and
//! head-signing settings, and the offline commands `archive` (ship a stopped log), `restore`
//! (rebuild a log, or with `--verify-only` the drill), `head` (sign a log's head) and the signed
//! head check of `verify`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use myolog_archive::{
    ArchiveError, ArchiveTarget, HeadPublicKey, HeadSigningKey, RestoreOptions, RestorePoint,
    SignedHead,
};
use myolog_storage::{EventLog, LogOptions};

/// Parses an archive URL: `file:///absolute/dir` or `s3://bucket[/prefix]`. S3 credentials, region
/// and endpoint come from the `AWS_*` environment (a Kubernetes Secret), never from the URL.
pub fn target(url: &str) -> Result<ArchiveTarget, ArchiveError> {
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(ArchiveError::Config(format!(
                "{url}: a file archive URL needs an absolute path, e.g. file:///backup/myolog"
            )));
        }
        return ArchiveTarget::local_directory(Path::new(path));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ArchiveError::Config(format!("{url}: no bucket name")));
        }
        if bucket.contains('@') || bucket.contains(':') {
            return Err(ArchiveError::Config(format!(
                "{url}: credentials do not go in the URL; set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY in the environment"
            )));
        }
        return ArchiveTarget::s3_from_env(bucket, prefix.trim_end_matches('/'));
    }
    Err(ArchiveError::Config(format!(
        "{url}: an archive is file:///dir or s3://bucket/prefix"
    )))
}

/// `serve`'s archive, follower and signed-head settings.
#[derive(Debug, Clone, Args)]
pub struct ServeArchiveArgs {
    /// Ship the log to this archive in the background: file:///dir or s3://bucket/prefix (S3
    /// credentials from AWS_* in the environment only). Empty: no archive (a follower sharing the
    /// primary's environment sets MYOLOG_ARCHIVE to "").
    #[arg(long, env = "MYOLOG_ARCHIVE", value_name = "URL")]
    pub archive: Option<String>,
    /// This writer's archive epoch (default 1). The epoch recorded on the data volume (by
    /// `myolog promote`, or an earlier start) wins when it is larger, so a promoted primary keeps
    /// its epoch across restarts; a newer epoch fences older writers off.
    #[arg(long, env = "MYOLOG_ARCHIVE_EPOCH", value_name = "N")]
    pub archive_epoch: Option<u64>,
    /// Seal a segment as soon as this many events wait.
    #[arg(long, env = "MYOLOG_ARCHIVE_SEGMENT_EVENTS", default_value_t = 1_000)]
    pub archive_segment_events: usize,
    /// Seal whatever waits once the oldest waiting event is this old (milliseconds): the most a
    /// lost disk can lose. Default 5000, or 20 with --ack-after-archive.
    #[arg(long, env = "MYOLOG_ARCHIVE_MAX_AGE_MS", value_name = "MS")]
    pub archive_max_age_ms: Option<u64>,
    /// Refuse writes (UNAVAILABLE, naming the lag) while more than N durable events are not yet
    /// archived. Without it an object-store outage never stops data entry.
    #[arg(long, env = "MYOLOG_MAX_ARCHIVE_LAG", value_name = "N")]
    pub max_archive_lag: Option<u64>,
    /// Answer an ingest call only once its events are in a sealed segment of the archive (adds
    /// the segment age limit plus an upload to every answer).
    #[arg(long, env = "MYOLOG_ACK_AFTER_ARCHIVE")]
    pub ack_after_archive: bool,
    /// Run `myolog promote` on --data first, then serve as the primary: catch the log up from
    /// the archive and take an epoch newer than any the archive has seen (fencing the old
    /// primary off). Every start with it takes a new epoch: prefer `myolog promote` once.
    #[arg(long)]
    pub promote: bool,
    /// Run as a read-only follower of this primary (http(s)://host:port): copy its log, serve
    /// reads, refuse writes. The token of an auditor or admin principal comes from
    /// MYOLOG_FOLLOW_TOKEN.
    #[arg(long, env = "MYOLOG_FOLLOW", value_name = "URL")]
    pub follow: Option<String>,
    /// CA certificate (PEM) of the primary's TLS certificate (an https:// --follow).
    #[arg(
        long,
        env = "MYOLOG_FOLLOW_TLS_CA",
        value_name = "FILE",
        requires = "follow"
    )]
    pub follow_tls_ca: Option<PathBuf>,
    /// How often a caught-up follower asks its primary for new events (milliseconds).
    #[arg(
        long,
        env = "MYOLOG_FOLLOW_POLL_MS",
        default_value_t = 200,
        requires = "follow"
    )]
    pub follow_poll_ms: u64,
    /// Ed25519 key (PKCS#8 DER) that Audit.GetSignedHead signs with; mount it from a secret, never
    /// from the data volume.
    #[arg(long, env = "MYOLOG_HEAD_KEY", value_name = "FILE")]
    pub head_key: Option<PathBuf>,
}

impl ServeArchiveArgs {
    /// The archive URL, if one is set and not empty.
    pub fn archive_url(&self) -> Option<&str> {
        self.archive.as_deref().filter(|url| !url.trim().is_empty())
    }

    /// The segment policy these settings give.
    pub fn policy(&self) -> myolog_archive::SegmentPolicy {
        let default_ms = if self.ack_after_archive { 20 } else { 5_000 };
        myolog_archive::SegmentPolicy {
            max_events: self.archive_segment_events.max(1),
            max_age: Duration::from_millis(self.archive_max_age_ms.unwrap_or(default_ms)),
        }
    }

    /// Whether an unreachable archive at start must stop the server (writes depend on it).
    pub fn archive_required(&self) -> bool {
        self.ack_after_archive || self.max_archive_lag.is_some()
    }
}

/// The variable a follower reads its primary's token from.
pub const FOLLOW_TOKEN_ENV: &str = "MYOLOG_FOLLOW_TOKEN";

/// Loads a head-signing key, refusing one stored inside the log's directory: a key next to the
/// data it signs proves nothing to whoever can write the data.
pub fn load_head_key(path: &Path, data: &Path) -> Result<HeadSigningKey, String> {
    let key_path = std::fs::canonicalize(path)
        .map_err(|error| format!("head key {}: {error}", path.display()))?;
    if let Ok(data) = std::fs::canonicalize(data)
        && key_path.starts_with(&data)
    {
        return Err(format!(
            "head key {} lies inside the log's directory {}: keep it off the data volume",
            path.display(),
            data.display()
        ));
    }
    HeadSigningKey::from_pkcs8_file(&key_path).map_err(|error| error.to_string())
}

/// `myolog archive`.
#[derive(Debug, Clone, Args)]
pub struct ArchiveArgs {
    /// Directory of the (stopped) event log.
    #[arg(long, env = "MYOLOG_DATA")]
    pub data: PathBuf,
    /// The archive: file:///dir or s3://bucket/prefix.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The writer epoch to seal with (see `serve --archive-epoch`; the epoch recorded on the
    /// volume wins when larger).
    #[arg(long)]
    pub epoch: Option<u64>,
    /// Events per segment.
    #[arg(long, default_value_t = 1_000)]
    pub segment_events: usize,
}

/// `myolog restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The archive: file:///dir or s3://bucket/prefix.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// Directory to rebuild the log in (new or empty, or the log an interrupted restore left).
    #[arg(long, required_unless_present = "verify_only")]
    pub data: Option<PathBuf>,
    /// Restore events 1..=N only.
    #[arg(long, value_name = "N", conflicts_with = "as_of_time")]
    pub as_of_seq: Option<u64>,
    /// Restore only the events recorded at or before this RFC 3339 time.
    #[arg(long, value_name = "T")]
    pub as_of_time: Option<String>,
    /// Check the archive as a restore would, writing nothing (the scheduled drill).
    #[arg(long)]
    pub verify_only: bool,
}

/// `myolog head`.
#[derive(Debug, Clone, Args)]
pub struct HeadArgs {
    /// Directory of the event log.
    #[arg(long, env = "MYOLOG_DATA", required_unless_present = "public_key")]
    pub data: Option<PathBuf>,
    /// Ed25519 private key (PKCS#8 DER), kept off the data volume.
    #[arg(long, value_name = "KEY")]
    pub sign: PathBuf,
    /// Write the signed head here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the key's public half (64 hex digits, what verifiers trust) and exit.
    #[arg(long)]
    pub public_key: bool,
}

/// `verify`'s signed-head check (the default: none).
#[derive(Debug, Clone, Default, Args)]
pub struct HeadCheckArgs {
    /// A signed head file (`myolog head`) the log must contain.
    #[arg(long, value_name = "FILE", requires = "pubkey")]
    pub head: Option<PathBuf>,
    /// The trusted public key: 64 hex digits, a file holding them, or a PKCS#8 key file.
    #[arg(long, value_name = "KEY", requires = "head")]
    pub pubkey: Option<String>,
    /// The log must end exactly at the signed head.
    #[arg(long, requires = "head")]
    pub exact: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))
}

fn fail(command: &str, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("myolog {command}: {error}");
    ExitCode::FAILURE
}

/// `myolog archive`: ships every event of a stopped log not yet in the archive.
pub fn run_archive(args: &ArchiveArgs) -> ExitCode {
    let result = (|| {
        let runtime = runtime()?;
        let target = target(&args.to).map_err(|e| e.to_string())?;
        let options = LogOptions {
            create_if_missing: false,
            ..LogOptions::default()
        };
        let log = EventLog::open(&args.data, options).map_err(|e| e.to_string())?;
        let epoch =
            myolog_archive::writer_epoch(&args.data, args.epoch).map_err(|e| e.to_string())?;
        runtime
            .block_on(myolog_archive::archive_log(
                &log,
                &target,
                epoch,
                args.segment_events,
            ))
            .map_err(|e| e.to_string())
    })();
    match result {
        Ok(report) => {
            println!(
                "ok: {} segments sealed; archive ends at seq {} hash {}",
                report.sealed.len(),
                report.archived.seq,
                report.archived.hash
            );
            ExitCode::SUCCESS
        }
        Err(error) => fail("archive", error),
    }
}

/// `myolog restore`: rebuilds a log from the archive (or checks that it could).
pub fn run_restore(args: &RestoreArgs) -> ExitCode {
    let result = (|| {
        let as_of = match (&args.as_of_seq, &args.as_of_time) {
            (Some(seq), _) => Some(RestorePoint::Seq(*seq)),
            (None, Some(text)) => Some(RestorePoint::RecordedAt(
                myolog_audit::table::parse_rfc3339(text)
                    .ok_or_else(|| format!("--as-of-time {text}: not an RFC 3339 time"))?,
            )),
            (None, None) => None,
        };
        let runtime = runtime()?;
        let target = target(&args.from).map_err(|e| e.to_string())?;
        let dir = args.data.clone().unwrap_or_default();
        runtime
            .block_on(myolog_archive::restore(
                &target,
                &dir,
                RestoreOptions {
                    as_of,
                    verify_only: args.verify_only,
                    log_options: LogOptions::default(),
                },
            ))
            .map_err(|e| e.to_string())
    })();
    match result {
        Ok(report) => {
            let what = if args.verify_only {
                "archive verified (nothing written)"
            } else {
                "restored and verified"
            };
            println!(
                "ok: {what}: {} segments, head sequence {} hash {}, {} events appended",
                report.segments, report.head.seq, report.head.hash, report.events_appended
            );
            ExitCode::SUCCESS
        }
        Err(error) => fail("restore", error),
    }
}

/// `myolog head`: signs the head of a log (or prints the key's public half).
pub fn run_head(args: &HeadArgs) -> ExitCode {
    let result = (|| -> Result<String, String> {
        if args.public_key {
            let key = HeadSigningKey::from_pkcs8_file(&args.sign).map_err(|e| e.to_string())?;
            return Ok(key.public_key().to_hex());
        }
        let data = args.data.clone().unwrap_or_default();
        let key = load_head_key(&args.sign, &data)?;
        let options = LogOptions {
            create_if_missing: false,
            ..LogOptions::default()
        };
        let log = EventLog::open(&data, options).map_err(|e| e.to_string())?;
        let signed = SignedHead::sign(&log, &key).map_err(|e| e.to_string())?;
        Ok(signed.to_json())
    })();
    match result {
        Ok(line) => match &args.out {
            None => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Some(path) => match std::fs::write(path, format!("{line}\n")) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail("head", format!("writing {}: {error}", path.display())),
            },
        },
        Err(error) => fail("head", error),
    }
}

/// The trusted key a verifier names: hex, a file of hex, or a PKCS#8 key file.
fn trusted_key(text: &str) -> Result<HeadPublicKey, String> {
    if let Some(key) = HeadPublicKey::from_hex(text) {
        return Ok(key);
    }
    let path = Path::new(text);
    let bytes = std::fs::read(path).map_err(|error| format!("public key {text}: {error}"))?;
    if let Some(key) = std::str::from_utf8(&bytes)
        .ok()
        .and_then(HeadPublicKey::from_hex)
    {
        return Ok(key);
    }
    HeadPublicKey::from_pkcs8_file(path).map_err(|error| error.to_string())
}

/// `verify --head FILE --pubkey KEY [--exact]`: the log must contain the signed head.
pub fn check_head(log: &EventLog, args: &HeadCheckArgs) -> Result<Option<String>, String> {
    let (Some(head), Some(pubkey)) = (&args.head, &args.pubkey) else {
        return Ok(None);
    };
    let trusted = trusted_key(pubkey)?;
    let text = std::fs::read_to_string(head)
        .map_err(|error| format!("signed head {}: {error}", head.display()))?;
    let signed = SignedHead::from_json(text.trim()).map_err(|e| e.to_string())?;
    signed
        .verify_log(log, &trusted, args.exact)
        .map_err(|error| format!("signed head {}: {error}", head.display()))?;
    Ok(Some(format!(
        "signed head ok: seq {} hash {}{}",
        signed.seq,
        signed.hash,
        if args.exact {
            " (the log ends there)"
        } else {
            ""
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_urls() {
        let dir = std::env::temp_dir().join("myolog-cli-archive-url-test");
        let url = format!("file://{}", dir.display());
        assert!(target(&url).is_ok());
        for bad in [
            "file://relative/dir",
            "s3://",
            "s3:///prefix",
            "s3://key:secret@bucket/p",
            "gs://bucket",
            "/plain/path",
        ] {
            assert!(target(bad).is_err(), "{bad}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_key_on_the_data_volume_is_refused() {
        let dir = std::env::temp_dir().join(format!("myolog-cli-key-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key = dir.join("head.p8");
        std::fs::write(&key, b"not a key").expect("write");
        let error = load_head_key(&key, &dir).expect_err("refused");
        assert!(error.contains("inside the log's directory"), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
