//! grpc (in progress).
