//! adam (in progress).
use super::AuditError;
use super::replay::{Format, Replay};
/// Row.
#[derive(Debug)]
pub struct AdamRow;
/// Rows.
pub fn rows(_r: &Replay) -> Vec<AdamRow> {
    Vec::new()
}
/// Write.
pub fn write_dataset(
    _rows: &[AdamRow],
    _f: Format,
    _out: &mut impl std::io::Write,
) -> Result<(), AuditError> {
    Ok(())
}
