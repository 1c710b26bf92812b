//! The `myolog` command line: every subcommand's arguments (the only place that knows clap) and
//! what each runs: the service (`serve`, from `myolog-server`), the client commands that talk to a
//! running server (`demo`, `outcomes`, `healthcheck`, `study register`, `import odm`, `bridge`), the offline ones over a
//! log directory (`verify`, `replay`, `export`, `report`, from `myolog-audit`), `score`, `token` and
//! `study validate | export`, and the archive's (`archive`, `restore`, `promote`, `head`, `verify --head`, and
//! `serve --archive | --follow | --promote`, from `myolog-archive` and [`serve`]).
//!
//! It holds no clinical rule and no service logic; each command parses, calls a library, and turns
//! the result into output and an exit code.

// jemalloc instead of the system allocator for the `myolog` binary (and everything else that links
// this library): see `tikv-jemallocator` in the workspace manifest for the measurement.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub mod archive;
pub mod audit;
pub mod bridge;
pub mod client;
pub mod command;
pub mod demo;
pub mod edc;
pub mod healthcheck;
pub mod migrate;
pub mod promote;
pub mod reference;
pub mod score;
pub mod serve;
pub mod study;
pub mod telemetry;
pub mod token;

pub use command::main;
