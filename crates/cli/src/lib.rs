//! The `myolog` command line: every subcommand's arguments (the only place that knows clap) and
//! what each runs: the service (`serve`, from `myolog-server`), the client commands that talk to a
//! running server (`demo`, `outcomes`, `healthcheck`, `study register`), the offline ones over a
//! log directory (`verify`, `replay`, `export`, `report`, from `myolog-audit`), `score`, `token` and
//! `study validate | export`.
//!
//! It holds no clinical rule and no service logic; each command parses, calls a library, and turns
//! the result into output and an exit code.

pub mod audit;
pub mod client;
pub mod command;
pub mod demo;
pub mod healthcheck;
pub mod reference;
pub mod score;
pub mod study;
pub mod telemetry;
pub mod token;

pub use command::main;
