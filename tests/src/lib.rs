//! End-to-end tests over real loopback gRPC live in `tests/`; this library is their shared harness.
