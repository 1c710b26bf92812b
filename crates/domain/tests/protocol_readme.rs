//! The README's "Protocols" section shows `protocols/stir.toml` exactly, so the explained file is the
//! file that ships.

const README: &str = include_str!("../../../README.md");
const STIR: &str = include_str!("../../../protocols/stir.toml");

#[test]
fn the_readme_shows_the_stir_protocol_file_exactly() {
    let section = README
        .split("\n## Protocols\n")
        .nth(1)
        .expect("README has a Protocols section");
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next());
    assert_eq!(
        block,
        Some(STIR),
        "README's STIR block differs from protocols/stir.toml"
    );
}
