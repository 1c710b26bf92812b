//! The service's errors as values, and the ONE mapping from them to `tonic::Status`
//! ([`to_status`]): client mistakes carry a `google.rpc.BadRequest` with one field violation per
//! problem, each naming its field path relative to the request (`events[3].assessment_recorded...`).

use myolog_storage::{AppendError, StorageError};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

pub use myolog_projection::Violation;

/// Everything a service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed or out of range; nothing was stored.
    #[error("{message}")]
    InvalidArgument {
        message: String,
        violations: Vec<Violation>,
    },
    /// The request is well-formed but contradicts the log (unknown study, correction of an unknown
    /// event...); nothing was stored.
    #[error("{message}")]
    FailedPrecondition {
        message: String,
        violations: Vec<Violation>,
    },
    /// An event id was reused with different content; nothing was stored.
    #[error("{message}")]
    AlreadyExists {
        message: String,
        violations: Vec<Violation>,
    },
    /// The study or subject does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller's scope does not reach the batch (a site-scoped writer outside its sites);
    /// nothing was stored.
    #[error("{0}")]
    PermissionDenied(String),
    /// The server is shutting down or the log refuses appends until restarted.
    #[error("{0}")]
    Unavailable(String),
    /// This server is a read-only follower: writes go to the primary it names.
    #[error("{0}")]
    ReadOnly(String),
    /// The archive is further behind than `--max-archive-lag` allows: writes wait for it.
    #[error("{0}")]
    ArchiveLagging(String),
    /// The log failed.
    #[error("event log: {0}")]
    Storage(#[from] StorageError),
    /// A bug or an unexpected runtime failure (e.g. a panicked blocking task).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// An INVALID_ARGUMENT error from violations, summarised.
    pub fn invalid(violations: Vec<Violation>) -> Self {
        ServiceError::InvalidArgument {
            message: summary("invalid request", &violations),
            violations,
        }
    }

    /// A FAILED_PRECONDITION error from violations, summarised.
    pub fn precondition(violations: Vec<Violation>) -> Self {
        ServiceError::FailedPrecondition {
            message: summary("request contradicts the log", &violations),
            violations,
        }
    }

    /// A short, stable code of the error's kind (metrics label).
    pub fn reason_code(&self) -> &'static str {
        match self {
            ServiceError::InvalidArgument { .. } => "invalid_argument",
            ServiceError::FailedPrecondition { .. } => "failed_precondition",
            ServiceError::AlreadyExists { .. } => "already_exists",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::PermissionDenied(_) => "permission_denied",
            ServiceError::Unavailable(_) => "unavailable",
            ServiceError::ReadOnly(_) => "read_only",
            ServiceError::ArchiveLagging(_) => "archive_lagging",
            ServiceError::Storage(_) => "storage",
            ServiceError::Internal(_) => "internal",
        }
    }

    /// True for errors caused by the request (a rejected batch), false for server-side failures.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            ServiceError::InvalidArgument { .. }
                | ServiceError::FailedPrecondition { .. }
                | ServiceError::AlreadyExists { .. }
        )
    }
}

fn summary(what: &str, violations: &[Violation]) -> String {
    match violations {
        [] => what.to_string(),
        [one] => format!("{what}: {}: {}", one.field, one.description),
        [first, rest @ ..] => format!(
            "{what}: {}: {} (and {} more)",
            first.field,
            first.description,
            rest.len()
        ),
    }
}

impl From<AppendError> for ServiceError {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::EmptyBatch => {
                ServiceError::invalid(vec![Violation::new("events", "at least one event")])
            }
            AppendError::BatchTooLarge { len, max } => ServiceError::invalid(vec![Violation::new(
                "events",
                format!("{len} events; at most {max}"),
            )]),
            AppendError::InvalidPrincipal(reason) => ServiceError::Internal(format!(
                "configured principal rejected by the log: {reason}"
            )),
            AppendError::InvalidEvent { index, reason } => {
                ServiceError::invalid(vec![Violation::new(
                    format!("events[{index}]"),
                    reason.to_string(),
                )])
            }
            AppendError::WrongExpectedVersion { index, .. } => {
                ServiceError::precondition(vec![Violation::new(
                    format!("events[{index}]"),
                    error.to_string(),
                )])
            }
            AppendError::EventIdConflict {
                index,
                ref event_id,
                original_seq,
            } => {
                let at = original_seq
                    .map(|seq| format!(" (sequence {seq})"))
                    .unwrap_or_default();
                let description =
                    format!("event id {event_id} was already recorded{at} with different content");
                ServiceError::AlreadyExists {
                    message: format!("events[{index}].event_id: {description}"),
                    violations: vec![Violation::new(
                        format!("events[{index}].event_id"),
                        description,
                    )],
                }
            }
            AppendError::Storage(storage) => storage.into(),
        }
    }
}

/// THE mapping of every service error to a gRPC status. Client errors carry a BadRequest.
pub fn to_status(error: &ServiceError) -> Status {
    let with_violations = |code: Code, message: &str, violations: &[Violation]| {
        let violations: Vec<FieldViolation> = violations
            .iter()
            .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
            .collect();
        Status::with_error_details(code, message, ErrorDetails::with_bad_request(violations))
    };
    match error {
        ServiceError::InvalidArgument {
            message,
            violations,
        } => with_violations(Code::InvalidArgument, message, violations),
        ServiceError::FailedPrecondition {
            message,
            violations,
        } => with_violations(Code::FailedPrecondition, message, violations),
        ServiceError::AlreadyExists {
            message,
            violations,
        } => with_violations(Code::AlreadyExists, message, violations),
        ServiceError::NotFound(message) => Status::not_found(message.clone()),
        ServiceError::PermissionDenied(message) => Status::permission_denied(message.clone()),
        ServiceError::Unavailable(message) => Status::unavailable(message.clone()),
        // The request can never succeed here, whatever the retry: FAILED_PRECONDITION, not
        // UNAVAILABLE, so clients do not retry against the follower.
        ServiceError::ReadOnly(message) => Status::failed_precondition(message.clone()),
        // Retrying later succeeds once the archive catches up.
        ServiceError::ArchiveLagging(message) => Status::unavailable(message.clone()),
        ServiceError::Storage(StorageError::Poisoned { .. }) => {
            Status::unavailable(error.to_string())
        }
        ServiceError::Storage(_) | ServiceError::Internal(_) => Status::internal(error.to_string()),
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        to_status(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_code_with_field_violations() {
        let cases: Vec<(ServiceError, Code, Option<&str>)> = vec![
            (
                ServiceError::invalid(vec![Violation::new("events[3].study_id", "missing")]),
                Code::InvalidArgument,
                Some("events[3].study_id"),
            ),
            (
                ServiceError::precondition(vec![Violation::new(
                    "events[0].study_id",
                    "unknown study",
                )]),
                Code::FailedPrecondition,
                Some("events[0].study_id"),
            ),
            (
                ServiceError::from(AppendError::EventIdConflict {
                    index: 2,
                    event_id: "e".into(),
                    original_seq: Some(7),
                }),
                Code::AlreadyExists,
                Some("events[2].event_id"),
            ),
            (
                ServiceError::from(AppendError::EmptyBatch),
                Code::InvalidArgument,
                Some("events"),
            ),
            (
                ServiceError::NotFound("study X".into()),
                Code::NotFound,
                None,
            ),
            (
                ServiceError::Unavailable("shutting down".into()),
                Code::Unavailable,
                None,
            ),
            (
                ServiceError::Storage(StorageError::Poisoned {
                    cause: "disk full".into(),
                }),
                Code::Unavailable,
                None,
            ),
            (ServiceError::Internal("bug".into()), Code::Internal, None),
        ];
        for (error, code, field) in cases {
            let status = to_status(&error);
            assert_eq!(status.code(), code, "{error}");
            let fields: Vec<String> = status
                .get_details_bad_request()
                .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
                .unwrap_or_default();
            assert_eq!(fields.first().map(String::as_str), field, "{error}");
        }
    }
}
