//! A read-only follower: tails its primary's `Audit.ReadStored`, appends what it reads with the
//! storage's replicated append (same sequences, recorded-at, principals and hashes) and applies
//! it to its own projection, so it serves `Outcomes` and `Audit` reads like the primary.
//!
//! The follower trusts nothing it reads: each record's stated sequence, previous hash and
//! recorded-at must agree with its canonical bytes, the bytes must hash to the stated hash, and
//! the replicated append refuses anything that does not chain onto the follower's head. An event
//! that does not chain, or whose type this build cannot read, stops the follower with an error
//! naming the sequence ([`FollowError`]); nothing of its batch is stored. A lost connection is
//! retried: the follower resumes after its own durable head, so a follower killed at any moment
//! converges on restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use myolog_proto::v1 as pb;
use myolog_proto::v1::audit_client::AuditClient;
use myolog_storage::{Hash, StoredEvent, unix_nanos_from_system_time};
use tokio_stream::StreamExt;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::app::{App, ReplicaError};

/// Events asked for per `ReadStored` call (appended with one fsync).
pub const FOLLOW_BATCH: u64 = 1_000;

pub use crate::metrics::FollowerLag;

/// A reader of the follower's lag, cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct FollowerLagHandle(Arc<Mutex<FollowerLag>>);

impl FollowerLagHandle {
    pub fn get(&self) -> FollowerLag {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut FollowerLag)) {
        change(
            &mut self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
    }
}

/// Why a follower stopped for good (a connection problem is retried, never returned).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("following {primary}: {source}")]
    Replica {
        primary: String,
        source: ReplicaError,
    },
    #[error("following {primary}: record seq {seq} is malformed: {reason}")]
    BadRecord {
        primary: String,
        seq: u64,
        reason: String,
    },
}

/// How the follower reaches its primary.
#[derive(Debug, Clone)]
pub struct Primary {
    /// The primary's address, for messages.
    pub url: String,
    /// Where to dial (TLS configured by the caller).
    pub endpoint: Endpoint,
    /// `Bearer <token>` of an auditor or admin principal, if the primary has a principals file.
    pub authorization: Option<MetadataValue<Ascii>>,
}

/// Copies the primary's log into `app` until `shutdown` resolves; polls every `poll` when caught
/// up. Returns an error only for what retrying cannot fix.
pub async fn run(
    app: Arc<App>,
    primary: Primary,
    poll: Duration,
    lag: FollowerLagHandle,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), FollowError> {
    tokio::pin!(shutdown);
    let mut client = AuditClient::new(primary.endpoint.connect_lazy())
        .max_decoding_message_size(64 * 1024 * 1024);
    loop {
        let caught_up = match read_batch(&mut client, &primary, app.head_seq() + 1).await {
            Ok((events, primary_seq)) => {
                let full = events.len() as u64 >= FOLLOW_BATCH;
                let newest = events.last().map(|event| event.recorded_at_unix_nanos);
                app.apply_replicated(events)
                    .await
                    .map_err(|source| FollowError::Replica {
                        primary: primary.url.clone(),
                        source,
                    })?;
                let local_seq = app.head_seq();
                lag.update(|lag| {
                    lag.local_seq = local_seq;
                    lag.primary_seq = primary_seq.max(local_seq);
                    lag.events_behind = primary_seq.saturating_sub(local_seq);
                    lag.seconds_behind = match (lag.events_behind, newest) {
                        (0, _) | (_, None) => 0.0,
                        (_, Some(nanos)) => age_seconds(nanos),
                    };
                    lag.last_error = None;
                });
                !full
            }
            Err(Fetch::Fatal(error)) => return Err(error),
            Err(Fetch::Retry(message)) => {
                tracing::warn!(primary = %primary.url, error = %message, "follower: cannot read the primary; retrying");
                lag.update(|lag| lag.last_error = Some(message));
                true
            }
        };
        if caught_up {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(poll) => {}
            }
        } else if futures_util::FutureExt::now_or_never(&mut shutdown).is_some() {
            return Ok(());
        }
    }
}

enum Fetch {
    Retry(String),
    Fatal(FollowError),
}

/// One `ReadStored` call from `from`: the events read and the primary's head.
async fn read_batch(
    client: &mut AuditClient<Channel>,
    primary: &Primary,
    from: u64,
) -> Result<(Vec<StoredEvent>, u64), Fetch> {
    let mut request = tonic::Request::new(pb::ReadStoredRequest {
        from_sequence: from,
        limit: FOLLOW_BATCH,
    });
    if let Some(value) = &primary.authorization {
        request
            .metadata_mut()
            .insert("authorization", value.clone());
    }
    let mut stream = client
        .read_stored(request)
        .await
        .map_err(|status| Fetch::Retry(status.to_string()))?
        .into_inner();
    let mut events = Vec::new();
    let mut head = 0;
    while let Some(record) = stream.next().await {
        // A stream cut midway keeps what arrived whole: it chains, and the rest comes next time.
        let record = match record {
            Ok(record) => record,
            Err(status) if events.is_empty() => return Err(Fetch::Retry(status.to_string())),
            Err(_) => break,
        };
        head = head.max(record.head_sequence);
        let seq = record.sequence;
        events.push(stored_event(record).map_err(|reason| {
            Fetch::Fatal(FollowError::BadRecord {
                primary: primary.url.clone(),
                seq,
                reason,
            })
        })?);
    }
    Ok((events, head))
}

/// A record as a stored event, checking that its stated fields agree with its canonical bytes.
fn stored_event(record: pb::StoredEventRecord) -> Result<StoredEvent, String> {
    let hash = hash_of(&record.hash, "hash")?;
    let prev_hash = hash_of(&record.prev_hash, "prev_hash")?;
    let event = StoredEvent::from_canonical(record.canonical_event, hash)
        .map_err(|refusal| refusal.to_string())?;
    if event.seq != record.sequence {
        return Err(format!(
            "it states seq {}, its bytes seq {}",
            record.sequence, event.seq
        ));
    }
    if event.prev_hash != prev_hash {
        return Err("its stated previous hash differs from the one in its bytes".into());
    }
    if event.recorded_at_unix_nanos != record.recorded_at_unix_nanos {
        return Err("its stated recorded-at differs from the one in its bytes".into());
    }
    Ok(event)
}

fn hash_of(bytes: &[u8], field: &str) -> Result<Hash, String> {
    <[u8; 32]>::try_from(bytes)
        .map(Hash)
        .map_err(|_| format!("{field} is {} bytes, not 32", bytes.len()))
}

fn age_seconds(recorded_at_unix_nanos: i64) -> f64 {
    let now = unix_nanos_from_system_time(SystemTime::now());
    now.saturating_sub(recorded_at_unix_nanos).max(0) as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_event_type_stops_the_follower_and_stores_nothing() {
        let primary_dir = tempfile::tempdir().expect("tempdir");
        let primary = myolog_storage::EventLog::open(
            primary_dir.path(),
            myolog_storage::LogOptions::default(),
        )
        .expect("open");
        primary
            .append(
                vec![myolog_storage::NewEvent {
                    event_id: "future-1".into(),
                    stream_key: "s".into(),
                    expected_version: myolog_storage::ExpectedVersion::Any,
                    event_type: "SomethingFromTheFuture".into(),
                    schema_version: crate::app::SCHEMA_VERSION,
                    payload: vec![0xff, 0x01],
                }],
                "tester",
            )
            .expect("append");
        let events: Vec<StoredEvent> = primary
            .read_stored_range(1..=1)
            .collect::<Result<_, _>>()
            .expect("read");
        let dir = tempfile::tempdir().expect("tempdir");
        let app = App::open(crate::app::AppConfig::new(dir.path()))
            .await
            .expect("app");
        let error = app.apply_replicated(events).await.expect_err("refused");
        let message = error.to_string();
        assert!(
            message.contains("SomethingFromTheFuture") && message.contains("seq 1"),
            "{message}"
        );
        assert_eq!(app.head_seq(), 0, "nothing stored");
    }

    #[test]
    fn a_record_whose_fields_disagree_with_its_bytes_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = myolog_storage::EventLog::open(dir.path(), myolog_storage::LogOptions::default())
            .expect("open");
        log.append(
            vec![myolog_storage::NewEvent {
                event_id: "e1".into(),
                stream_key: "s".into(),
                expected_version: myolog_storage::ExpectedVersion::Any,
                event_type: "T".into(),
                schema_version: 1,
                payload: vec![1, 2, 3],
            }],
            "tester",
        )
        .expect("append");
        let stored = log
            .read_stored_range(1..=1)
            .next()
            .expect("one")
            .expect("read");
        let record = pb::StoredEventRecord {
            sequence: stored.seq,
            recorded_at_unix_nanos: stored.recorded_at_unix_nanos,
            prev_hash: stored.prev_hash.0.to_vec(),
            hash: stored.hash.0.to_vec(),
            canonical_event: stored.canonical.clone(),
            head_sequence: 1,
        };
        assert_eq!(stored_event(record.clone()), Ok(stored));
        let wrong_seq = pb::StoredEventRecord {
            sequence: 2,
            ..record.clone()
        };
        assert!(stored_event(wrong_seq).is_err());
        let wrong_time = pb::StoredEventRecord {
            recorded_at_unix_nanos: record.recorded_at_unix_nanos + 1,
            ..record.clone()
        };
        assert!(stored_event(wrong_time).is_err());
        let mut altered = record.clone();
        if let Some(byte) = altered.canonical_event.last_mut() {
            *byte ^= 1;
        }
        assert!(stored_event(altered).is_err());
        let short_hash = pb::StoredEventRecord {
            hash: vec![0; 31],
            ..record
        };
        assert!(stored_event(short_hash).is_err());
    }
}
