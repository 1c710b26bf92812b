//! Trial facts as validated types: studies, subjects, visits, assessments and events. No IO.
