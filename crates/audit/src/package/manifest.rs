//! `manifest.json`: what the package is (study, engine version, formats), the point of the log it was
//! built from (the as-of sequence and its chain hash, and the recorded-at time of that event), whether
//! a blinded study's arms were exported early and why, and every other file with its size and SHA-256.
//! `myolog verify --package` reads it back to rebuild the same package from the log.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Context, PackageError, PackageFile, PackageFormat, PackageOptions};
use crate::ENGINE_VERSION;

pub const MANIFEST_FILE: &str = "manifest.json";

/// The manifest's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub study_id: String,
    pub engine_version: String,
    pub as_of_sequence: u64,
    pub chain_hash: String,
    pub as_of_recorded_at: String,
    pub formats: Vec<PackageFormat>,
    pub unblinded_reason: Option<String>,
    /// Name, size in bytes, SHA-256 (hex), in name order.
    pub files: Vec<(String, u64, String)>,
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Manifest {
    /// The manifest of `files`, built under `context` with `options`.
    pub fn of(
        context: &Context<'_>,
        formats: &[PackageFormat],
        options: &PackageOptions,
        files: &[PackageFile],
    ) -> Self {
        Self {
            study_id: context.study_id.to_string(),
            engine_version: ENGINE_VERSION.to_string(),
            as_of_sequence: context.replay.last_sequence,
            chain_hash: context.replay.chain_hash.to_hex(),
            as_of_recorded_at: context.as_of_time.iso_utc(),
            formats: formats.to_vec(),
            unblinded_reason: options.unblinded_reason.clone(),
            files: files
                .iter()
                .map(|file| {
                    (
                        file.name.clone(),
                        file.bytes.len() as u64,
                        sha256_hex(&file.bytes),
                    )
                })
                .collect(),
        }
    }

    /// Pretty JSON with a final newline; keys in a fixed order.
    pub fn to_json(&self) -> Vec<u8> {
        let value = json!({
            "package": "Myolog analysis and tabulation package",
            "study_id": self.study_id,
            "engine_version": self.engine_version,
            "log": {
                "as_of_sequence": self.as_of_sequence,
                "chain_hash": self.chain_hash,
                "as_of_recorded_at": self.as_of_recorded_at,
            },
            "formats": self.formats.iter().map(|f| f.key()).collect::<Vec<_>>(),
            "unblinded_export": self.unblinded_reason.as_ref().map(|reason| json!({"reason": reason})),
            "files": self.files.iter().map(|(name, bytes, sha)| json!({
                "name": name,
                "bytes": bytes,
                "sha256": sha,
            })).collect::<Vec<_>>(),
        });
        let mut out = serde_json::to_vec_pretty(&value).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Reads what a rebuild needs back from a manifest: the study, as-of sequence, formats and the
    /// unblinded-export reason.
    pub fn options_of(bytes: &[u8]) -> Result<(u64, PackageOptions), PackageError> {
        let bad = |what: &str| PackageError::Manifest(format!("{what} is missing or malformed"));
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|error| PackageError::Manifest(format!("not JSON: {error}")))?;
        let sequence = value["log"]["as_of_sequence"]
            .as_u64()
            .ok_or_else(|| bad("log.as_of_sequence"))?;
        let study = value["study_id"]
            .as_str()
            .ok_or_else(|| bad("study_id"))?
            .to_string();
        let formats = value["formats"]
            .as_array()
            .ok_or_else(|| bad("formats"))?
            .iter()
            .map(|f| f.as_str().and_then(PackageFormat::from_key))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("formats"))?;
        let unblinded_reason = match &value["unblinded_export"] {
            Value::Null => None,
            other => Some(
                other["reason"]
                    .as_str()
                    .ok_or_else(|| bad("unblinded_export.reason"))?
                    .to_string(),
            ),
        };
        Ok((
            sequence,
            PackageOptions {
                study: Some(study),
                formats,
                unblinded_reason,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_manifest_gives_back_its_rebuild_options() {
        let manifest = Manifest {
            study_id: "STIR-DEMO".into(),
            engine_version: "0.1.0".into(),
            as_of_sequence: 42,
            chain_hash: "00".repeat(32),
            as_of_recorded_at: "2026-01-01T00:00:00Z".into(),
            formats: vec![PackageFormat::Xpt, PackageFormat::Csv],
            unblinded_reason: Some("DSMB interim".into()),
            files: vec![("adsl.xpt".into(), 3, sha256_hex(b"abc"))],
        };
        let (sequence, options) = Manifest::options_of(&manifest.to_json()).unwrap();
        assert_eq!(sequence, 42);
        assert_eq!(options.study.as_deref(), Some("STIR-DEMO"));
        assert_eq!(options.formats, manifest.formats);
        assert_eq!(options.unblinded_reason.as_deref(), Some("DSMB interim"));
        assert!(Manifest::options_of(b"{}").is_err());
    }
}
