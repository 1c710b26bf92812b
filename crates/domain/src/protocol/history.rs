//! A study's protocol versions in order: the original, then each amendment (ProtocolAmended). An
//! outcome names the version it was computed under, so amending a window never silently changes a
//! result reported under the earlier version.

use super::AmendmentError;
use super::model::Protocol;
use serde::Serialize;
use std::fmt;

/// Which protocol version an outcome used: `STIR v2`, or `STIR v2 registered as STIR-DEMO` when
/// the protocol's study id is not the study id it was registered under (a reader of the outcome
/// must be able to tell which trial's file it came from and which study it was applied to).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ProtocolRef {
    /// The protocol's own study id (`study.id` in its file).
    pub study_id: String,
    pub version: u32,
    /// The study id it is registered under, when that differs from `study_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_as: Option<String>,
}

impl fmt::Display for ProtocolRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} v{}", self.study_id, self.version)?;
        match &self.registered_as {
            Some(study) => write!(formatter, " registered as {study}"),
            None => Ok(()),
        }
    }
}

impl Protocol {
    pub fn reference(&self) -> ProtocolRef {
        ProtocolRef {
            study_id: self.study.id.clone(),
            version: self.version,
            registered_as: self.registered_as.clone(),
        }
    }
}

/// Every version of one study's protocol, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolHistory {
    superseded: Vec<Protocol>,
    current: Protocol,
}

impl ProtocolHistory {
    /// Starts the history with the registered protocol (StudyRegistered).
    pub fn new(registered: Protocol) -> Self {
        ProtocolHistory {
            superseded: Vec::new(),
            current: registered,
        }
    }

    /// Adds an amendment (ProtocolAmended): the same study, the next version.
    pub fn amend(&mut self, mut amended: Protocol) -> Result<ProtocolRef, AmendmentError> {
        amended.check_amends(&self.current)?;
        // One history is one registered study: every version is registered under the same id.
        amended.registered_as = self.current.registered_as.clone();
        let reference = amended.reference();
        let previous = std::mem::replace(&mut self.current, amended);
        self.superseded.push(previous);
        Ok(reference)
    }

    /// The version in force: the latest.
    pub fn current(&self) -> &Protocol {
        &self.current
    }

    pub fn version(&self, version: u32) -> Option<&Protocol> {
        self.versions()
            .find(|protocol| protocol.version() == version)
    }

    /// Oldest first.
    pub fn versions(&self) -> impl Iterator<Item = &Protocol> {
        self.superseded.iter().chain(std::iter::once(&self.current))
    }
}
