//! Replay benchmark (filled in below): replay of the log to all outcomes against the bare log scan.

fn main() {}
