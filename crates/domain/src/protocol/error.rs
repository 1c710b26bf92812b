//! Protocol load errors: each one names the file, the key path inside it (`endpoints[0].encounter`) and
//! what a valid protocol would have had there, so a protocol author can fix the file without reading code.

use std::fmt;
use thiserror::Error;

/// One problem in a protocol file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}: {key_path}: {problem}")]
pub struct ProtocolError {
    /// The name the caller gave the file (the domain does no IO; it only quotes the name).
    pub file: String,
    /// Dotted key path, array positions as `[i]`, e.g. `encounters[2].window`; `(document)` for a TOML syntax error.
    pub key_path: String,
    /// What is wrong there.
    pub problem: ProtocolProblem,
}

/// What is wrong at one key path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolProblem {
    /// TOML syntax, an unknown key, a missing key, a wrong type or an unknown enumerated value,
    /// as reported by the TOML reader (with the line, which the reader knows and validation does not).
    #[error("{message}")]
    Toml { message: String },
    /// A value that is well-formed TOML but not a valid protocol.
    #[error("expected {expected}, found {found}")]
    Invalid { expected: String, found: String },
}

/// Every problem found in one protocol file; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ProtocolErrors {
    pub errors: Vec<ProtocolError>,
}

impl fmt::Display for ProtocolErrors {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                formatter.write_str("\n")?;
            }
            write!(formatter, "{error}")?;
        }
        Ok(())
    }
}
