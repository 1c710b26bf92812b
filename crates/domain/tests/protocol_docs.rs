//! docs/protocols.md explains the protocol files table by table and links them, so every table a
//! shipped file uses is described there and every shipped file is linked.

const DOCS: &str = include_str!("../../../docs/protocols.md");
const FILES: [(&str, &str); 3] = [
    ("stir.toml", include_str!("../../../protocols/stir.toml")),
    (
        "myojak.toml",
        include_str!("../../../protocols/myojak.toml"),
    ),
    ("bird.toml", include_str!("../../../protocols/bird.toml")),
];

#[test]
fn the_protocols_page_links_every_file_and_describes_every_table() {
    for (name, text) in FILES {
        assert!(
            DOCS.contains(&format!("(../protocols/{name})")),
            "docs/protocols.md does not link protocols/{name}"
        );
        for line in text.lines() {
            let header = line.split('#').next().unwrap_or_default().trim();
            if !header.starts_with('[') {
                continue;
            }
            assert!(
                DOCS.contains(&format!("`{header}`")),
                "protocols/{name} has the table {header}, which docs/protocols.md does not describe"
            );
        }
    }
}
