//! report (in progress).
use super::replay::Replay;
/// Renders the report.
pub fn render(_replay: &Replay) -> String {
    String::new()
}
