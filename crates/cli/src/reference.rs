//! The command-line reference (`docs/reference/cli.md`) generated from the clap definitions: every
//! command's `--help` text, so the document a user reads is the one `myolog help` prints. A test
//! fails when the committed file is stale; `MYOLOG_WRITE_DOCS=1 cargo test -p myolog-cli` rewrites it.

use clap::CommandFactory;

use crate::command::Cli;

/// The whole reference as Markdown: `myolog --help`, then each command's (and subcommand's) help.
pub fn markdown() -> String {
    let mut root = Cli::command();
    root.build();
    let mut out = String::from(
        "# Command-line reference\n\n\
         Generated from the `myolog` binary's own `--help` text (`crates/cli/src/reference.rs`); a \
         test fails when this page and the binary disagree.\n",
    );
    section(&mut out, &mut root, "myolog");
    out
}

fn section(out: &mut String, command: &mut clap::Command, path: &str) {
    let help = command.render_long_help().to_string();
    out.push_str(&format!(
        "\n## `{path}`\n\n```text\n{}\n```\n",
        help.trim_end()
    ));
    let names: Vec<String> = command
        .get_subcommands()
        .filter(|sub| sub.get_name() != "help")
        .map(|sub| sub.get_name().to_string())
        .collect();
    for name in names {
        if let Some(sub) = command.find_subcommand_mut(&name) {
            section(out, sub, &format!("{path} {name}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn docs_reference_cli_is_the_binarys_help() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/reference/cli.md");
        let generated = super::markdown();
        if std::env::var_os("MYOLOG_WRITE_DOCS").is_some() {
            std::fs::write(&path, &generated).expect("write docs/reference/cli.md");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/reference/cli.md is stale: run `MYOLOG_WRITE_DOCS=1 cargo test -p myolog-cli \
             reference` and commit it"
        );
    }
}
