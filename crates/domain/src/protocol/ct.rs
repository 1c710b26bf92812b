//! CDISC Controlled Terminology as far as the trial design export needs it: the committed extracts
//! `data/cdisc-ct/ct-extract-2025-09-26.csv` (Protocol, SEND and Define-XML CT) and
//! `data/cdisc-ct/sdtm-ct-extract-2025-03-25.csv` (SDTM CT: TSPARMCD, TSPARM, TCNTRL), whose README
//! names the sources, versions and licence, compiled in, so a coded TS value (TSVALCD) and a TS
//! parameter's C-code are always looked up, never typed. Pure: the text is part of the binary.

use std::sync::OnceLock;

/// The CT release the Protocol, SEND and Define-XML extract was cut from.
pub const CT_VERSION: &str = "2025-09-26";

/// The SDTM CT release the TSPARMCD, TSPARM and TCNTRL rows were cut from.
pub const SDTM_CT_VERSION: &str = "2025-03-25";

/// TSVCDREF of a value coded with CDISC CT.
pub const CT_REFERENCE: &str = "CDISC CT";

/// Both extracts: the same nine columns, the last (`Standard and Date`) naming each row's package.
const EXTRACTS: [&str; 2] = [
    include_str!("../../data/cdisc-ct/ct-extract-2025-09-26.csv"),
    include_str!("../../data/cdisc-ct/sdtm-ct-extract-2025-03-25.csv"),
];

/// One term of a codelist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The term's NCI C-code (TSVALCD).
    pub code: String,
    /// The codelist's short name, e.g. `TPHASE`.
    pub codelist: String,
    /// The CDISC submission value (TSVAL).
    pub value: String,
    /// The release date of the package the row was read from (TSVCDVER), e.g. `2025-09-26`.
    pub version: String,
}

/// Every term of the extract, parsed once.
fn terms() -> &'static [Term] {
    static TERMS: OnceLock<Vec<Term>> = OnceLock::new();
    TERMS.get_or_init(|| {
        let rows: Vec<Vec<String>> = EXTRACTS
            .iter()
            .flat_map(|extract| extract.lines().skip(1))
            .map(csv_fields)
            .collect();
        // Codelist rows have no parent code; their submission value is the codelist's short name.
        let short_name = |codelist_code: &str| {
            rows.iter()
                .find(|row| row.first().map(String::as_str) == Some(codelist_code))
                .filter(|row| row.get(1).is_some_and(String::is_empty))
                .and_then(|row| row.get(4).cloned())
        };
        rows.iter()
            .filter(|row| row.get(1).is_some_and(|parent| !parent.is_empty()))
            .filter_map(|row| {
                Some(Term {
                    code: row.first()?.clone(),
                    codelist: short_name(row.get(1)?)?,
                    value: row.get(4)?.clone(),
                    // `Protocol CT 2025-09-26`: the date is the last word.
                    version: row.get(8)?.rsplit(' ').next()?.to_string(),
                })
            })
            .collect()
    })
}

/// The term `value` of codelist `codelist` (short name), if the extract has it.
pub fn lookup(codelist: &str, value: &str) -> Option<&'static Term> {
    terms()
        .iter()
        .find(|term| term.codelist == codelist && term.value == value)
}

/// The term of `codelist` with C-code `code`: a TSPARMCD and its TSPARM share one C-code.
pub fn by_code(codelist: &str, code: &str) -> Option<&'static Term> {
    terms()
        .iter()
        .find(|term| term.codelist == codelist && term.code == code)
}

/// Every term with C-code `code`, whatever its codelist (one concept may be a term of several).
pub fn terms_with_code(code: &str) -> Vec<&'static Term> {
    terms().iter().filter(|term| term.code == code).collect()
}

/// The submission values the extract holds for `codelist`, in file order.
pub fn values(codelist: &str) -> Vec<&'static str> {
    terms()
        .iter()
        .filter(|term| term.codelist == codelist)
        .map(|term| term.value.as_str())
        .collect()
}

/// The fields of one CSV line whose fields are all quoted (as in the extract), quotes doubled inside.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (other, _) => field.push(other),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes read from the extract, checked against rows quoted from it, so a parser that shifts a
    /// column or loses a codelist fails here.
    #[test]
    fn the_extract_gives_each_term_its_code() {
        let cases = [
            ("TPHASE", "PHASE IIA TRIAL", "C49686"),
            ("TPHASE", "PHASE III TRIAL", "C15602"),
            ("TBLIND", "OPEN LABEL", "C49659"),
            ("SEXPOP", "BOTH", "C49636"),
            ("ROUTE", "ORAL", "C38288"),
            ("FREQ", "QD", "C25473"),
            ("UNIT", "mg", "C28253"),
            // From the SDTM CT extract, rows quoted from `SDTM Terminology.txt`.
            ("TCNTRL", "PLACEBO", "C49648"),
            ("TCNTRL", "NONE", "C41132"),
            ("TSPARMCD", "TCNTRL", "C49647"),
            ("TSPARMCD", "REGID", "C98714"),
            ("TSPARM", "Registry Identifier", "C98714"),
        ];
        for (codelist, value, code) in cases {
            let term = lookup(codelist, value).unwrap_or_else(|| panic!("{codelist} {value}"));
            assert_eq!(term.code, code, "{codelist} {value}");
        }
        assert_eq!(values("NY"), ["N", "NA", "U", "Y"]);
        assert_eq!(
            lookup("TPHASE", "PHASE III TRIAL").map(|t| t.version.as_str()),
            Some("2025-09-26")
        );
        assert!(lookup("TPHASE", "PHASE 2").is_none());
        assert!(values("DICTNAM").contains(&"ClinicalTrials.gov"));
    }

    #[test]
    fn quoted_fields_keep_their_commas_and_quotes() {
        assert_eq!(
            csv_fields("\"a, b\",\"\",\"say \"\"x\"\"\""),
            ["a, b", "", "say \"x\""]
        );
    }
}
