//! The `myolog` binary: a thin entry point over the command line's library (`myolog --help`).

// jemalloc instead of the system allocator: see `tikv-jemallocator` in the workspace manifest.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    myolog_cli::main()
}
