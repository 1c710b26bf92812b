//! Signed heads: a head signed with an Ed25519 PKCS#8 key verifies against the log it came from,
//! its restored copy and (as a prefix) a longer log; it fails against a log differing by one
//! byte, an altered head file, or another key.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use common::{append_events, new_event, open, reopen};
use myolog_archive::{
    ArchiveTarget, HeadError, HeadPublicKey, HeadSigningKey, RestoreOptions, SignedHead,
    archive_log, restore,
};

/// A fresh Ed25519 key written as a PKCS#8 DER file, as an operator's key file would be.
fn key_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let rng = ring::rand::SystemRandom::new();
    let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, der.as_ref()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_head_verifies_against_its_log_and_its_restored_copy() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = key_file(dir.path(), "head.p8");
    let key = HeadSigningKey::from_pkcs8_file(&key_path).unwrap();
    let trusted = HeadPublicKey::from_pkcs8_file(&key_path).unwrap();
    let log = open(&dir.path().join("log"));
    append_events(&log, "e", 120);
    let signed = SignedHead::sign(&log, &key).unwrap();
    assert_eq!((signed.seq, signed.hash), (log.head().seq, log.head().hash));

    let text = signed.to_json();
    assert!(
        text.starts_with("{\"format\":\"myolog-signed-head/1\""),
        "{text}"
    );
    let read_back = SignedHead::from_json(&text).unwrap();
    assert_eq!(read_back, signed);
    read_back.verify_log(&log, &trusted, true).unwrap();

    let target = ArchiveTarget::local_directory(&dir.path().join("archive")).unwrap();
    archive_log(&log, &target, 1, 50).await.unwrap();
    let restored_path = dir.path().join("restored");
    restore(
        &target,
        &restored_path,
        RestoreOptions {
            log_options: common::options(),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    let restored = reopen(&restored_path);
    read_back.verify_log(&restored, &trusted, true).unwrap();

    // A longer log holds the head as a prefix, but not exactly.
    append_events(&log, "more", 3);
    read_back.verify_log(&log, &trusted, false).unwrap();
    let longer = read_back.verify_log(&log, &trusted, true);
    assert!(
        matches!(
            longer,
            Err(HeadError::LogLonger {
                log_head: 123,
                signed: 120
            })
        ),
        "{longer:?}"
    );
}

#[test]
fn a_signed_head_fails_against_a_log_differing_by_one_byte() {
    let dir = tempfile::tempdir().unwrap();
    let key = HeadSigningKey::from_pkcs8_file(&key_file(dir.path(), "head.p8")).unwrap();
    let trusted = key.public_key();
    // Two logs with the same events and the same clock, but one payload byte differs.
    let build = |name: &str, last_byte: u8| {
        let log = open(&dir.path().join(name));
        append_events(&log, "e", 40);
        let mut payload = b"final payload".to_vec();
        payload.push(last_byte);
        log.append(vec![new_event("last", "s", payload)], "edc")
            .unwrap();
        append_events(&log, "after", 5);
        log
    };
    let original = build("original", b'a');
    let differing = build("differing", b'b');
    let signed = SignedHead::sign(&original, &key).unwrap();
    signed.verify_log(&original, &trusted, true).unwrap();
    let failed = signed.verify_log(&differing, &trusted, true);
    assert!(
        matches!(failed, Err(HeadError::HashMismatch { seq: 46, .. })),
        "{failed:?}"
    );
    let failed = signed.verify_log(&differing, &trusted, false);
    assert!(
        matches!(failed, Err(HeadError::HashMismatch { .. })),
        "{failed:?}"
    );

    // A shorter log does not contain the head.
    let short = open(&dir.path().join("short"));
    append_events(&short, "e", 40);
    let failed = signed.verify_log(&short, &trusted, false);
    assert!(
        matches!(
            failed,
            Err(HeadError::LogShorter {
                log_head: 40,
                signed: 46
            })
        ),
        "{failed:?}"
    );
}

#[test]
fn an_altered_head_file_or_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = HeadSigningKey::from_pkcs8_file(&key_file(dir.path(), "a.p8")).unwrap();
    let other = HeadSigningKey::from_pkcs8_file(&key_file(dir.path(), "b.p8")).unwrap();
    let log = open(&dir.path().join("log"));
    append_events(&log, "e", 10);
    let signed = SignedHead::sign(&log, &key).unwrap();
    let text = signed.to_json();

    // One hex digit of the hash, the sequence, or the recorded-at changed: the signature fails.
    let hash_hex = signed.hash.to_hex();
    let flipped = if hash_hex.starts_with('0') { "1" } else { "0" };
    let altered_hash = text.replace(&hash_hex, &format!("{flipped}{}", &hash_hex[1..]));
    let altered_seq = text.replace("\"seq\":10,", "\"seq\":9,");
    let altered_time = text.replace(
        &signed.recorded_at_unix_nanos.to_string(),
        &(signed.recorded_at_unix_nanos + 1).to_string(),
    );
    for altered in [altered_hash, altered_seq, altered_time] {
        assert_ne!(altered, text);
        let parsed = SignedHead::from_json(&altered).unwrap();
        let failed = parsed.verify_log(&log, &key.public_key(), false);
        assert!(matches!(failed, Err(HeadError::BadSignature)), "{failed:?}");
    }

    // Signed by another key than the trusted one, or claiming the trusted key falsely.
    let by_other = SignedHead::sign(&log, &other).unwrap();
    let failed = by_other.verify_signature(&key.public_key());
    assert!(
        matches!(failed, Err(HeadError::OtherKey { .. })),
        "{failed:?}"
    );
    let impostor = SignedHead {
        public_key: key.public_key(),
        ..by_other
    };
    assert!(matches!(
        impostor.verify_signature(&key.public_key()),
        Err(HeadError::BadSignature)
    ));

    for garbage in [
        "",
        "{}",
        "not json",
        &text.replace("myolog-signed-head/1", "other/1"),
    ] {
        assert!(
            matches!(SignedHead::from_json(garbage), Err(HeadError::Malformed(_))),
            "{garbage}"
        );
    }
    assert!(matches!(
        HeadSigningKey::from_pkcs8_der(b"not a key"),
        Err(HeadError::BadKey(_))
    ));
    let empty = open(&dir.path().join("empty"));
    assert!(matches!(
        SignedHead::sign(&empty, &key),
        Err(HeadError::EmptyLog)
    ));
}
