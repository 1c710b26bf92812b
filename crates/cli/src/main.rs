//! The `myolog` binary: a thin entry point over the command line's library (`myolog --help`).

fn main() -> std::process::ExitCode {
    myolog_cli::main()
}
