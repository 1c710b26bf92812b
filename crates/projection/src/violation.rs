//! A precondition or validation failure at one field path of a request, with what would be accepted:
//! the unit every check of a batch reports, before anything is stored.

/// One field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Field path relative to the request, e.g. `events[3].assessment_recorded.mmt8.grades.deltoid.grade`.
    pub field: String,
    /// What is wrong and what would be accepted.
    pub description: String,
}

impl Violation {
    /// A violation at `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}
