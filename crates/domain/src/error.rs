//! Validation errors: every rejected input names its field path (`followup.mmt8.grades.deltoid`) and
//! what would have been accepted, so a data manager can fix the record without reading code.

use thiserror::Error;

/// An input that was rejected, with the dotted path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {problem}")]
pub struct InvalidInput {
    /// Dotted path from the case root, array positions as `[i]`, e.g. `baseline.haq.items.dressing[1]`.
    pub field: String,
    /// What is wrong with the value found there.
    pub problem: Problem,
}

impl InvalidInput {
    /// Attaches a field path to a problem found by a type-level check.
    pub fn at(field: impl Into<String>, problem: Problem) -> Self {
        Self {
            field: field.into(),
            problem,
        }
    }
}

/// What is wrong with one value, independent of where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    /// A number outside the type's range.
    #[error("{value} is out of range; allowed: {allowed}")]
    OutOfRange { value: String, allowed: String },
    /// A number with more decimal places than the instrument records.
    #[error("{value} has more than {max_decimals} decimal place(s); allowed: {allowed}")]
    TooPrecise {
        value: String,
        max_decimals: u32,
        allowed: String,
    },
    /// A number that is not a number the type can hold (exponent overflow, too many digits).
    #[error("{value} is not a representable number; allowed: {allowed}")]
    NotRepresentable { value: String, allowed: String },
    /// The JSON value has the wrong shape (string for a number, array for an object...).
    #[error("expected {expected}, found {found}")]
    WrongType { expected: String, found: String },
    /// An object key the contract does not define.
    #[error("unknown key {key:?}; allowed keys: {allowed}")]
    UnknownKey { key: String, allowed: String },
    /// A string value outside the defined vocabulary.
    #[error("unknown value {value:?}; allowed values: {allowed}")]
    UnknownValue { value: String, allowed: String },
    /// A key given twice in the same object.
    #[error("key {key:?} is given more than once")]
    DuplicateKey { key: String },
    /// A required field is absent.
    #[error("required field is missing ({expected})")]
    Missing { expected: String },
    /// An array with the wrong number of elements.
    #[error("expected {expected} element(s), found {found}")]
    WrongLength { expected: usize, found: usize },
    /// The MMT "trace" grade, which has no agreed Kendall number (docs/clinical.md#2-mmt-8-total).
    #[error(
        "trace (\"T\") has no agreed number on the Kendall 0-10 scale; give a grade 0 to 10, \
         or set conventions.mmt_trace_grade if the study maps trace to a number"
    )]
    TraceGrade,
    /// A value that is valid on its own but not in this context (e.g. a Likert global where the study
    /// does not allow Likert, two alternative forms of one measure given together).
    #[error("{0}")]
    NotAllowed(String),
    /// The text is not JSON.
    #[error("not valid JSON: {0}")]
    Syntax(String),
}
