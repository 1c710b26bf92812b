//! The discrepancy CSV of a dry run: one line per record that would not be imported (key path,
//! value, problem), RFC 4180 quoting, for a data manager to open in a spreadsheet.

use crate::plan::Discrepancy;
use std::io::{self, Write};

/// The header line's columns.
pub const COLUMNS: [&str; 3] = ["key_path", "value", "problem"];

fn field(out: &mut impl Write, text: &str) -> io::Result<()> {
    if text.contains([',', '"', '\n', '\r']) {
        out.write_all(b"\"")?;
        out.write_all(text.replace('"', "\"\"").as_bytes())?;
        out.write_all(b"\"")
    } else {
        out.write_all(text.as_bytes())
    }
}

/// Writes the header and one line per discrepancy (CRLF line ends, as RFC 4180 asks).
pub fn write_csv<'a>(
    out: &mut impl Write,
    discrepancies: impl IntoIterator<Item = &'a Discrepancy>,
) -> io::Result<()> {
    out.write_all(COLUMNS.join(",").as_bytes())?;
    out.write_all(b"\r\n")?;
    for discrepancy in discrepancies {
        field(out, &discrepancy.path.to_string())?;
        out.write_all(b",")?;
        field(out, discrepancy.value.as_deref().unwrap_or_default())?;
        out.write_all(b",")?;
        field(out, &discrepancy.problem)?;
        out.write_all(b"\r\n")?;
    }
    Ok(())
}
