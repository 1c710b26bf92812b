//! The `myolog` binary: a thin entry point over the server crate's commands (`myolog --help`).

fn main() -> std::process::ExitCode {
    myolog_server::cli::main()
}
