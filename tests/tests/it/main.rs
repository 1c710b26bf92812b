//! The workspace's end-to-end tests as one test binary: each former `tests/tests/<name>.rs` is a
//! module here, so the whole workspace is linked once instead of once per file (the machines that
//! run these have two cores). Run one area with `cargo test -p myolog-tests --test it <module>`,
//! e.g. `cargo test -p myolog-tests --test it golden_demo`.
//!
//! The tests share one process and run on parallel threads, so none may depend on process-wide
//! state: each works in its own temporary directory, serves on an OS-chosen loopback port, and
//! neither sets environment variables nor changes the current directory.

mod audit;
mod audit_tamper;
mod auth;
mod auth_limits;
mod auth_tls;
mod blinding;
mod bridge;
mod conventions;
mod demo;
mod golden_demo;
mod grpc;
mod import_odm;
mod lock;
mod package;
mod protocol_cohorts;
mod protocols;
mod python_client;
mod readme_tour;
