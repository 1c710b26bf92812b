//! redcap
