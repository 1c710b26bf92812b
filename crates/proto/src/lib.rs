//! Generated protobuf and gRPC code for the `myolog.v1` contracts in `proto/`.
