//! The ODM reader on fixture files: every documented export shape as rows, encodings, malformed
//! input as error values with positions, no DTD or external entity ever resolved, arbitrary bytes
//! never panicking, and a long stream read without accumulating.

mod common;

use common::{check, fixture, render_rows};
use myolog_edc::odm::{FileType, ItemValue, OdmErrorKind, OdmReader, read_slice};
use proptest::prelude::*;
use std::io::{BufRead, Read};

/// Reads a fixture and compares its rows with `expected/<fixture>.rows.txt`.
fn check_rows(name: &str) {
    let bytes = fixture(name);
    check(
        &render_rows(read_slice(&bytes)),
        &format!("{name}.rows.txt"),
    );
}

#[test]
fn redcap_longitudinal_project_with_repeat_key_1_on_every_event() {
    check_rows("redcap_longitudinal_stir.xml");
}

#[test]
fn redcap_classic_project_without_an_event_level() {
    check_rows("redcap_classic_repeating.xml");
}

#[test]
fn openclinica_3_export_reads_its_item_audit_log_and_form_status_and_skips_other_extensions() {
    check_rows("openclinica3_audit_logs.xml");
}

#[test]
fn rave_clinical_audit_records_with_upsert_string_repeat_keys_and_uuid_subjects() {
    check_rows("rave_clinical_audit_records.xml");
}

#[test]
fn transactional_file_inherits_transaction_types_and_audit_records() {
    check_rows("transactional_changes.xml");
}

#[test]
fn entities_cdata_nulls_empty_values_and_vendor_elements() {
    check_rows("entities_and_quirks.xml");
}

#[test]
fn single_byte_encodings_and_a_utf8_bom_decode_to_the_same_text() {
    // (fixture, the reason for change it must decode to)
    let cases = [
        ("windows1252.xml", "Donnée corrigée – coût 5 €"),
        ("iso8859-1.xml", "Donnée corrigée à la source"),
        ("utf8_bom.xml", "Donnée corrigée – coût 5 €"),
    ];
    for (name, reason) in cases {
        let bytes = fixture(name);
        let rows: Vec<_> = read_slice(&bytes)
            .collect::<Result<_, _>>()
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(rows.len(), 3, "{name}");
        let audit = rows[0].audit.as_ref().expect("audit record");
        assert_eq!(audit.reason_for_change.as_deref(), Some(reason), "{name}");
        assert_eq!(audit.user_oid.as_deref(), Some("U.Cécile"), "{name}");
        assert_eq!(
            rows[0].site.as_deref(),
            Some("Hôpital-Édouard-Herriot"),
            "{name}"
        );
        assert_eq!(
            rows[2].value,
            ItemValue::Value("Érythème péri-unguéal ±".to_string()),
            "{name}"
        );
    }
}

#[test]
fn malformed_files_are_error_values_with_a_position_and_the_open_key_path() {
    // (fixture, rows before the error, text the error must contain)
    let cases: [(&str, usize, &str); 3] = [
        (
            "malformed_truncated.xml",
            1,
            "SubjectData[SubjectKey=STIR-01]/StudyEventData[StudyEventOID=SE.BL]/FormData[FormOID=F.GLOBALS]/ItemGroupData[ItemGroupOID=IG.GLOBALS]",
        ),
        (
            "malformed_mismatched.xml",
            1,
            "SubjectData[SubjectKey=STIR-01]/StudyEventData[StudyEventOID=SE.BL]/FormData[FormOID=F.GLOBALS] (byte ",
        ),
        ("not_xml.json", 0, "ODM (byte "),
    ];
    for (name, rows_before, expected) in cases {
        let bytes = fixture(name);
        let results: Vec<_> = read_slice(&bytes).collect();
        assert_eq!(results.len(), rows_before + 1, "{name}: {results:?}");
        assert!(results[..rows_before].iter().all(Result::is_ok), "{name}");
        let Some(Err(error)) = results.last() else {
            panic!("{name}: no error");
        };
        assert!(
            error.to_string().contains(expected),
            "{name}: {error} lacks {expected}"
        );
        assert!(error.position > 0 || name == "not_xml.json", "{name}");
    }
}

#[test]
fn a_doctype_external_entity_is_never_resolved() {
    let bytes = fixture("doctype_external_entity.xml");
    let results: Vec<_> = read_slice(&bytes).collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].is_ok());
    let Err(error) = &results[1] else {
        panic!("the entity reference must be refused");
    };
    assert_eq!(
        error.kind,
        OdmErrorKind::UnresolvedEntity("secret".to_string())
    );
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    assert!(host.trim().is_empty() || !error.to_string().contains(host.trim()));
    // The same entity in an attribute value is refused too.
    let in_attribute = String::from_utf8(bytes)
        .expect("utf-8")
        .replace("Value=\"6.5\"", "Value=\"&secret;\"");
    let first = read_slice(in_attribute.as_bytes()).next();
    assert!(
        matches!(&first, Some(Err(error)) if error.kind == OdmErrorKind::UnresolvedEntity("secret".to_string())),
        "{first:?}"
    );
}

#[test]
fn the_header_is_read_and_unknown_file_types_and_transactions_are_refused() {
    let bytes = fixture("transactional_changes.xml");
    let mut reader = read_slice(&bytes);
    assert!(reader.next().is_some_and(|row| row.is_ok()));
    let header = reader.header().expect("header").clone();
    assert_eq!(header.file_type, FileType::Transactional);
    assert_eq!(header.file_oid.as_deref(), Some("STIR-TX-0001"));
    // (document, text the error must contain)
    let cases = [
        (
            r#"<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" FileType="Delta"/>"#,
            "ODM/@FileType is \"Delta\"",
        ),
        (
            r#"<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"/>"#,
            "ODM has no FileType attribute",
        ),
        (
            r#"<ODM xmlns="http://www.cdisc.org/ns/odm/v1.2" FileType="Snapshot"/>"#,
            "not a CDISC ODM 1.3 document",
        ),
        (
            r#"<ODM FileType="Snapshot"><ClinicalData StudyOID="S"><SubjectData SubjectKey="A" TransactionType="Delete"/></ClinicalData></ODM>"#,
            "SubjectData[SubjectKey=A] (byte",
        ),
        (
            r#"<ODM FileType="Snapshot"><ClinicalData><SubjectData SubjectKey="A"/></ClinicalData></ODM>"#,
            "ClinicalData has no StudyOID attribute",
        ),
        ("", "no ODM element found"),
    ];
    for (document, expected) in cases {
        let error = read_slice(document.as_bytes())
            .find_map(Result::err)
            .unwrap_or_else(|| panic!("{document}: no error"));
        assert!(error.to_string().contains(expected), "{document}: {error}");
    }
}

/// A synthetic Snapshot of `subjects` subjects with one item each, produced on demand: the input is
/// never in memory as a whole, so the reader's own use is all that is measured.
struct SyntheticExport {
    subjects: usize,
    next: usize,
    pending: Vec<u8>,
    offset: usize,
}

impl SyntheticExport {
    fn new(subjects: usize) -> Self {
        Self {
            subjects,
            next: 0,
            pending: br#"<?xml version="1.0"?><ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" FileType="Snapshot"><ClinicalData StudyOID="S">"#.to_vec(),
            offset: 0,
        }
    }
}

impl Read for SyntheticExport {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for SyntheticExport {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.offset == self.pending.len() {
            self.pending.clear();
            self.offset = 0;
            if self.next < self.subjects {
                self.pending = format!(
                    r#"<SubjectData SubjectKey="S{0}"><StudyEventData StudyEventOID="E"><FormData FormOID="F"><ItemGroupData ItemGroupOID="G"><ItemData ItemOID="I" Value="{0}"/></ItemGroupData></FormData></StudyEventData></SubjectData>"#,
                    self.next
                )
                .into_bytes();
                self.next += 1;
            } else if self.next == self.subjects {
                self.pending = b"</ClinicalData></ODM>".to_vec();
                self.next += 1;
            }
        }
        Ok(&self.pending[self.offset..])
    }

    fn consume(&mut self, amount: usize) {
        self.offset += amount;
    }
}

#[test]
fn a_long_stream_is_read_row_by_row() {
    let subjects = 50_000;
    let mut reader = OdmReader::new(SyntheticExport::new(subjects));
    let mut count = 0usize;
    for row in &mut reader {
        let row = row.expect("row");
        assert_eq!(row.value, ItemValue::Value(count.to_string()));
        assert_eq!(row.subject_block, u64::try_from(count + 1).expect("fits"));
        count += 1;
    }
    assert_eq!(count, subjects);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut reader = read_slice(&bytes);
        // The reader stops after an error; the loop ends either way.
        let mut seen = 0usize;
        for row in &mut reader {
            seen += 1;
            if row.is_err() {
                break;
            }
        }
        prop_assert!(seen <= bytes.len() + 1);
    }

    #[test]
    fn mutated_real_files_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..12),
    ) {
        let names = [
            "redcap_longitudinal_stir.xml",
            "transactional_changes.xml",
            "rave_clinical_audit_records.xml",
            "windows1252.xml",
        ];
        let mut bytes = fixture(names[which]);
        for (index, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = index.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => { bytes.remove(at); }
                _ => bytes.truncate(at),
            }
        }
        let results: Vec<_> = read_slice(&bytes).collect();
        // At most one error, and only as the last item.
        let errors = results.iter().filter(|result| result.is_err()).count();
        prop_assert!(errors <= 1);
        if errors == 1 {
            prop_assert!(results.last().is_some_and(Result::is_err));
        }
    }
}
