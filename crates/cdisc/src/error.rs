//! The one error type of the crate: every refusal names the dataset, and where it applies the column and
//! the row (1-based, as a statistician counts), so a failed export can be fixed from the message alone.

/// Why a dataset or a document could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CdiscError {
    #[error("dataset {dataset}: {problem}")]
    Dataset { dataset: String, problem: String },

    #[error("dataset {dataset}, column {column}: {problem}")]
    Column {
        dataset: String,
        column: String,
        problem: String,
    },

    #[error("dataset {dataset}, row {row}, column {column}: {problem}")]
    Value {
        dataset: String,
        row: usize,
        column: String,
        problem: String,
    },

    /// Document-level metadata (Define-XML, Dataset-JSON file attributes) that is inconsistent.
    #[error("metadata: {0}")]
    Metadata(String),

    #[error("invalid date or time: {0}")]
    InvalidDate(String),

    #[error("writing the output failed: {0}")]
    Io(#[from] std::io::Error),
}

impl CdiscError {
    pub(crate) fn dataset(dataset: &str, problem: impl Into<String>) -> Self {
        Self::Dataset {
            dataset: dataset.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn column(dataset: &str, column: &str, problem: impl Into<String>) -> Self {
        Self::Column {
            dataset: dataset.to_owned(),
            column: column.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn value(
        dataset: &str,
        row_index: usize,
        column: &str,
        problem: impl Into<String>,
    ) -> Self {
        Self::Value {
            dataset: dataset.to_owned(),
            row: row_index + 1,
            column: column.to_owned(),
            problem: problem.into(),
        }
    }
}
