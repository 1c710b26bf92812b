//! Signed heads: the log's head — sequence, chain hash and recorded-at — signed with Ed25519, so
//! that anyone holding the public key can later check that a log (a restored one, a follower, the
//! original after an incident) contains exactly that history: the chain makes the head hash a
//! commitment to every event before it.
//!
//! # File format
//!
//! One JSON object, UTF-8, on one line:
//!
//! ```text
//! {"format":"myolog-signed-head/1","seq":1234,"hash":"<64 hex>","recorded_at_unix_nanos":...,
//!  "public_key":"<64 hex>","signature":"<128 hex>"}
//! ```
//!
//! The signature is Ed25519 (RFC 8032) over these bytes: `"MYOLOGHD"` ‖ u16 1 ‖ seq (u64 BE) ‖
//! hash (32 bytes) ‖ recorded-at (i64 BE). `public_key` says which key signed; verification uses
//! the key the caller trusts and refuses a file naming another.
//!
//! Keys are PKCS#8 DER files (`openssl genpkey -algorithm ed25519 -outform DER -out head.p8`).

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use myolog_storage::{EventLog, Hash, StorageError};

const FORMAT: &str = "myolog-signed-head/1";
const MESSAGE_TAG: &[u8; 8] = b"MYOLOGHD";

/// Why a head could not be signed, or a signed head does not match.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("reading key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the key is not an Ed25519 PKCS#8 key: {0}")]
    BadKey(String),
    #[error("the signed head file is malformed: {0}")]
    Malformed(String),
    #[error("the log is empty: there is no head to sign")]
    EmptyLog,
    #[error("the head was signed by key {signed_by}, not by the trusted key {trusted}")]
    OtherKey { signed_by: String, trusted: String },
    #[error("the signature does not match the head: the file was altered or signed by another key")]
    BadSignature,
    #[error("the log does not verify: {0}")]
    LogDamaged(String),
    #[error("the log ends at seq {log_head}, before the signed head {signed}")]
    LogShorter { log_head: u64, signed: u64 },
    #[error("at seq {seq} the log's hash is {log}, the signed head's {signed}: another history")]
    HashMismatch { seq: u64, log: Hash, signed: Hash },
    #[error("at seq {seq} the log's recorded-at is {log}, the signed head's {signed}")]
    RecordedAtMismatch { seq: u64, log: i64, signed: i64 },
    #[error("the log goes on past the signed head (seq {signed}) to seq {log_head}")]
    LogLonger { log_head: u64, signed: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// An Ed25519 private key for signing heads.
pub struct HeadSigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for HeadSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "HeadSigningKey({})", self.public_key().to_hex())
    }
}

impl HeadSigningKey {
    /// From PKCS#8 DER bytes (v1, as `openssl` writes, or v2 with the public key).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<HeadSigningKey, HeadError> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(|pair| HeadSigningKey { pair })
            .map_err(|error| HeadError::BadKey(error.to_string()))
    }

    /// From a PKCS#8 DER file.
    pub fn from_pkcs8_file(path: &std::path::Path) -> Result<HeadSigningKey, HeadError> {
        let der = std::fs::read(path).map_err(|source| HeadError::KeyFile {
            path: path.display().to_string(),
            source,
        })?;
        HeadSigningKey::from_pkcs8_der(&der)
    }

    pub fn public_key(&self) -> HeadPublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        HeadPublicKey(bytes)
    }
}

/// An Ed25519 public key: the one a verifier trusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadPublicKey(pub [u8; 32]);

impl HeadPublicKey {
    pub fn to_hex(&self) -> String {
        Hash(self.0).to_hex()
    }

    /// From 64 hexadecimal characters.
    pub fn from_hex(text: &str) -> Option<HeadPublicKey> {
        Hash::from_hex(text.trim()).map(|hash| HeadPublicKey(hash.0))
    }

    /// The public half of the key in a PKCS#8 DER file.
    pub fn from_pkcs8_file(path: &std::path::Path) -> Result<HeadPublicKey, HeadError> {
        HeadSigningKey::from_pkcs8_file(path).map(|key| key.public_key())
    }
}

/// A signed head (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHead {
    pub seq: u64,
    pub hash: Hash,
    pub recorded_at_unix_nanos: i64,
    pub public_key: HeadPublicKey,
    pub signature: [u8; 64],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedHeadFile {
    format: String,
    seq: u64,
    hash: String,
    recorded_at_unix_nanos: i64,
    public_key: String,
    signature: String,
}

fn message(seq: u64, hash: Hash, recorded_at_unix_nanos: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 2 + 8 + 32 + 8);
    out.extend_from_slice(MESSAGE_TAG);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&hash.0);
    out.extend_from_slice(&recorded_at_unix_nanos.to_be_bytes());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex<const N: usize>(text: &str, field: &str) -> Result<[u8; N], HeadError> {
    let malformed = || HeadError::Malformed(format!("{field} is not {} hex digits", 2 * N));
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return Err(malformed());
    }
    let mut out = [0u8; N];
    for (index, pair) in bytes.chunks_exact(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| malformed())?;
        out[index] = u8::from_str_radix(text, 16).map_err(|_| malformed())?;
    }
    Ok(out)
}

impl SignedHead {
    /// Signs the log's current head. Blocking (reads the head event).
    pub fn sign(log: &EventLog, key: &HeadSigningKey) -> Result<SignedHead, HeadError> {
        let head = log.head();
        let event = log.get(head.seq)?.ok_or(HeadError::EmptyLog)?;
        Ok(SignedHead::sign_parts(
            head.seq,
            head.hash,
            event.recorded_at_unix_nanos,
            key,
        ))
    }

    /// Signs the given head values.
    pub fn sign_parts(
        seq: u64,
        hash: Hash,
        recorded_at_unix_nanos: i64,
        key: &HeadSigningKey,
    ) -> SignedHead {
        let signature = key.pair.sign(&message(seq, hash, recorded_at_unix_nanos));
        let mut bytes = [0u8; 64];
        bytes.copy_from_slice(signature.as_ref());
        SignedHead {
            seq,
            hash,
            recorded_at_unix_nanos,
            public_key: key.public_key(),
            signature: bytes,
        }
    }

    /// The file's text: one JSON line.
    pub fn to_json(&self) -> String {
        let file = SignedHeadFile {
            format: FORMAT.to_owned(),
            seq: self.seq,
            hash: self.hash.to_hex(),
            recorded_at_unix_nanos: self.recorded_at_unix_nanos,
            public_key: self.public_key.to_hex(),
            signature: hex(&self.signature),
        };
        // Serialising a struct of strings and integers cannot fail.
        let mut text = serde_json::to_string(&file).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses the file's text; checks its shape, not its signature.
    pub fn from_json(text: &str) -> Result<SignedHead, HeadError> {
        let file: SignedHeadFile =
            serde_json::from_str(text).map_err(|error| HeadError::Malformed(error.to_string()))?;
        if file.format != FORMAT {
            return Err(HeadError::Malformed(format!(
                "format {:?}, expected {FORMAT:?}",
                file.format
            )));
        }
        Ok(SignedHead {
            seq: file.seq,
            hash: Hash(unhex(&file.hash, "hash")?),
            recorded_at_unix_nanos: file.recorded_at_unix_nanos,
            public_key: HeadPublicKey(unhex(&file.public_key, "public_key")?),
            signature: unhex(&file.signature, "signature")?,
        })
    }

    /// Checks the signature with the trusted key.
    pub fn verify_signature(&self, trusted: &HeadPublicKey) -> Result<(), HeadError> {
        if self.public_key != *trusted {
            return Err(HeadError::OtherKey {
                signed_by: self.public_key.to_hex(),
                trusted: trusted.to_hex(),
            });
        }
        UnparsedPublicKey::new(&ED25519, trusted.0)
            .verify(
                &message(self.seq, self.hash, self.recorded_at_unix_nanos),
                &self.signature,
            )
            .map_err(|_| HeadError::BadSignature)
    }

    /// Checks that `log` contains this head: the signature is the trusted key's, the whole log
    /// verifies, and its event at `seq` has the signed hash and recorded-at — so every event up
    /// to it is the signed history. With `exact`, the log must also end there. Blocking (walks
    /// the log).
    pub fn verify_log(
        &self,
        log: &EventLog,
        trusted: &HeadPublicKey,
        exact: bool,
    ) -> Result<(), HeadError> {
        self.verify_signature(trusted)?;
        let report = log.verify()?;
        if let Some(failure) = report.first_bad {
            return Err(HeadError::LogDamaged(failure.to_string()));
        }
        if report.head.seq < self.seq {
            return Err(HeadError::LogShorter {
                log_head: report.head.seq,
                signed: self.seq,
            });
        }
        let event = log.get(self.seq)?.ok_or(HeadError::LogShorter {
            log_head: log.head().seq,
            signed: self.seq,
        })?;
        if event.hash != self.hash {
            return Err(HeadError::HashMismatch {
                seq: self.seq,
                log: event.hash,
                signed: self.hash,
            });
        }
        if event.recorded_at_unix_nanos != self.recorded_at_unix_nanos {
            return Err(HeadError::RecordedAtMismatch {
                seq: self.seq,
                log: event.recorded_at_unix_nanos,
                signed: self.recorded_at_unix_nanos,
            });
        }
        if exact && report.head.seq != self.seq {
            return Err(HeadError::LogLonger {
                log_head: report.head.seq,
                signed: self.seq,
            });
        }
        Ok(())
    }
}
