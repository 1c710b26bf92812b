//! The `myolog` binary: a thin entry point over the server crate's commands.

fn main() {}
