//! Define-XML 2.1 output parsed back (roxmltree) with every reference resolved independently of the
//! writer's own checks, and validated against the CDISC Define-XML 2.1.0 XML Schema with xmllint
//! (Debian package libxml2-utils; CI must `apt-get install libxml2-utils`, and the test fails with that
//! message when xmllint is missing).
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use myolog_cdisc::define_xml::{
    CodeList, CodeListType, CollectedSource, DatasetDefinition, DefineDocument, Document, Method,
    MethodKind, Origin, Standard, Term, ValueList, ValueListItem, VariableDefinition, WhereClause,
    write_define,
};
use myolog_cdisc::{DataType, Dataset};

const DEF: &str = "http://www.cdisc.org/ns/def/v2.1";
const ODM: &str = "http://www.cdisc.org/ns/odm/v1.3";
const XLINK: &str = "http://www.w3.org/1999/xlink";

fn variable(column: &str, origin: Origin) -> VariableDefinition {
    VariableDefinition {
        column: column.into(),
        origin,
        mandatory: false,
        code_list_oid: None,
        value_list_oid: None,
    }
}

fn derived(method: &str) -> Origin {
    Origin::Derived {
        method_oid: method.into(),
    }
}

fn adsl_variables() -> Vec<VariableDefinition> {
    let mut variables = vec![
        VariableDefinition {
            mandatory: true,
            ..variable("STUDYID", Origin::Protocol)
        },
        VariableDefinition {
            mandatory: true,
            ..variable(
                "USUBJID",
                Origin::Predecessor {
                    from: "DM.USUBJID".into(),
                },
            )
        },
        variable("AGE", derived("MT.ADSL.AGE")),
        VariableDefinition {
            code_list_oid: Some("CL.SEX".into()),
            ..variable(
                "SEX",
                Origin::Collected {
                    source: CollectedSource::Investigator,
                },
            )
        },
        variable(
            "HEIGHTBL",
            Origin::Collected {
                source: CollectedSource::Investigator,
            },
        ),
        variable(
            "WEIGHTBL",
            Origin::Collected {
                source: CollectedSource::Vendor,
            },
        ),
        variable("TRTSDT", derived("MT.ADSL.TRTSDT")),
        variable(
            "BRTHDT",
            Origin::Collected {
                source: CollectedSource::Subject,
            },
        ),
        variable("RANDDTM", Origin::Assigned),
        variable(
            "RFSTDTC",
            Origin::Predecessor {
                from: "DM.RFSTDTC".into(),
            },
        ),
        variable(
            "DCSREAS",
            Origin::Collected {
                source: CollectedSource::Investigator,
            },
        ),
    ];
    for flag in ["SAFFL", "ITTFL"] {
        variables.push(VariableDefinition {
            code_list_oid: Some(format!("CL.{flag}")),
            ..variable(flag, derived("MT.ADSL.POPFL"))
        });
    }
    variables
}

fn adeff_variables() -> Vec<VariableDefinition> {
    vec![
        VariableDefinition {
            mandatory: true,
            ..variable("STUDYID", Origin::Protocol)
        },
        VariableDefinition {
            mandatory: true,
            ..variable(
                "USUBJID",
                Origin::Predecessor {
                    from: "ADSL.USUBJID".into(),
                },
            )
        },
        VariableDefinition {
            code_list_oid: Some("CL.PARAMCD".into()),
            ..variable("PARAMCD", Origin::Assigned)
        },
        variable("PARAM", Origin::Assigned),
        variable("AVISIT", derived("MT.ADEFF.AVISIT")),
        VariableDefinition {
            value_list_oid: Some("VL.ADEFF.AVAL".into()),
            ..variable("AVAL", derived("MT.ADEFF.AVAL"))
        },
        variable("ADT", derived("MT.ADEFF.ADT")),
        variable("ASEQ", derived("MT.ADEFF.ASEQ")),
    ]
}

fn value_list() -> ValueList {
    let item =
        |code: &str, data_type: DataType, digits: Option<u32>, origin: Origin| ValueListItem {
            item_oid: format!("IT.ADEFF.AVAL.{code}"),
            name: "AVAL".into(),
            description: format!("Analysis Value ({code})"),
            data_type,
            target_data_type: None,
            length: Some(8),
            significant_digits: digits,
            display_format: None,
            origin,
            mandatory: false,
            code_list_oid: None,
            where_clause: WhereClause {
                oid: format!("WC.ADEFF.PARAMCD.{code}"),
                item_oid: "IT.ADEFF.PARAMCD".into(),
                values: vec![code.into()],
            },
        };
    ValueList {
        oid: "VL.ADEFF.AVAL".into(),
        items: vec![
            item(
                "MMT8",
                DataType::Integer,
                None,
                Origin::Collected {
                    source: CollectedSource::Investigator,
                },
            ),
            item(
                "PGA",
                DataType::Float,
                Some(2),
                Origin::Collected {
                    source: CollectedSource::Investigator,
                },
            ),
            item("TIS", DataType::Float, Some(1), derived("MT.ADEFF.TIS")),
        ],
    }
}

fn code_list(oid: &str, name: &str, terms: &[(&str, Option<&str>)]) -> CodeList {
    CodeList {
        oid: oid.into(),
        name: name.into(),
        data_type: CodeListType::Text,
        terms: terms
            .iter()
            .map(|(code, decode)| Term {
                coded_value: (*code).into(),
                decode: decode.map(Into::into),
            })
            .collect(),
    }
}

fn method(oid: &str, name: &str, description: &str, algorithm: &str) -> Method {
    Method {
        oid: oid.into(),
        name: name.into(),
        kind: MethodKind::Computation,
        description: description.into(),
        algorithm_id: algorithm.into(),
        docs_path: format!("docs/algorithms.md#{algorithm}"),
        document_leaf_id: Some("LF.ALGORITHMS".into()),
    }
}

fn document<'a>(adsl: &'a Dataset, adeff: &'a Dataset) -> DefineDocument<'a> {
    let flags = [("Y", Some("Yes")), ("N", Some("No"))];
    let parameters: Vec<(&str, Option<&str>)> = common::PARAMETERS
        .iter()
        .map(|(code, label)| (*code, Some(*label)))
        .collect();
    DefineDocument {
        file_oid: "DEFINE.DM01.ADAM".into(),
        created: common::created(),
        originator: "Myolog test suite".into(),
        source_system: "Myolog".into(),
        source_system_version: "0.1.0".into(),
        study_oid: "STUDY.DM01".into(),
        study_name: "DM01".into(),
        study_description: "Dermatomyositis trial: efficacy & safety <test fixture>".into(),
        protocol_name: "DM01".into(),
        metadata_version_oid: "MDV.DM01.ADAM".into(),
        metadata_version_name: "DM01 ADaM".into(),
        metadata_version_description: Some("Analysis datasets".into()),
        standards: vec![
            Standard {
                oid: "STD.ADAMIG.1.3".into(),
                name: "ADaMIG".into(),
                standard_type: "IG".into(),
                publishing_set: None,
                version: "1.3".into(),
                status: "Final".into(),
            },
            Standard {
                oid: "STD.CT.ADAM".into(),
                name: "CDISC/NCI".into(),
                standard_type: "CT".into(),
                publishing_set: Some("ADaM".into()),
                version: "2024-03-29".into(),
                status: "Final".into(),
            },
        ],
        datasets: vec![
            DatasetDefinition {
                dataset: adsl,
                standard_oid: Some("STD.ADAMIG.1.3".into()),
                repeating: false,
                archive_file: "adsl.xpt".into(),
                variables: adsl_variables(),
            },
            DatasetDefinition {
                dataset: adeff,
                standard_oid: Some("STD.ADAMIG.1.3".into()),
                repeating: true,
                archive_file: "adeff.xpt".into(),
                variables: adeff_variables(),
            },
        ],
        value_lists: vec![value_list()],
        code_lists: vec![
            code_list("CL.SEX", "Sex", &[("F", None), ("M", None)]),
            code_list("CL.SAFFL", "Safety Flag", &flags),
            CodeList {
                data_type: CodeListType::Integer,
                ..code_list(
                    "CL.ITTFL",
                    "ITT Flag (N)",
                    &[("1", Some("Yes")), ("0", Some("No"))],
                )
            },
            code_list("CL.PARAMCD", "Parameter Code", &parameters),
        ],
        methods: vec![
            method(
                "MT.ADSL.AGE",
                "Age at consent",
                "Whole years from BRTHDT to informed consent.",
                "age-years",
            ),
            method(
                "MT.ADSL.TRTSDT",
                "First dose date",
                "Date of the first dosing event.",
                "first-dose",
            ),
            method(
                "MT.ADSL.POPFL",
                "Population flags",
                "Y when the subject meets the population's definition.",
                "population-flags",
            ),
            method(
                "MT.ADEFF.AVISIT",
                "Visit windows",
                "Analysis visit from the protocol's windows.",
                "visit-windows",
            ),
            method(
                "MT.ADEFF.AVAL",
                "Analysis value",
                "Per PARAMCD; see value-level metadata.",
                "aval",
            ),
            method(
                "MT.ADEFF.TIS",
                "Total Improvement Score",
                "ACR/EULAR 2016 myositis response criteria, score 0-100 (weights > 0 & < 40).",
                "tis-acr-eular-2016",
            ),
            method(
                "MT.ADEFF.ADT",
                "Analysis date",
                "Date of the assessment event.",
                "assessment-date",
            ),
            method(
                "MT.ADEFF.ASEQ",
                "Sequence",
                "Row number within subject.",
                "sequence",
            ),
        ],
        documents: vec![Document {
            leaf_id: "LF.ALGORITHMS".into(),
            href: "algorithms.pdf".into(),
            title: "Myolog algorithm descriptions".into(),
        }],
    }
}

fn written() -> String {
    let (adsl, adeff) = (common::adsl(), common::adeff());
    let mut out = Vec::new();
    write_define(&mut out, &document(&adsl, &adeff)).unwrap();
    String::from_utf8(out).unwrap()
}

/// Every reference in a Define-XML document that does not resolve, found without the writer's help.
fn dangling_references(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let ids = |element: (&str, &str), attribute: &str| -> BTreeSet<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name(element))
            .filter_map(|n| n.attribute(attribute).map(str::to_owned))
            .collect()
    };
    let item_defs = ids((ODM, "ItemDef"), "OID");
    let code_lists = ids((ODM, "CodeList"), "OID");
    let methods = ids((ODM, "MethodDef"), "OID");
    let value_lists = ids((DEF, "ValueListDef"), "OID");
    let where_clauses = ids((DEF, "WhereClauseDef"), "OID");
    let leaves = ids((DEF, "leaf"), "ID");
    let standards = ids((DEF, "Standard"), "OID");
    let mut problems = Vec::new();
    let mut resolve =
        |element: (&str, &str), attribute: (Option<&str>, &str), targets: &BTreeSet<String>| {
            for node in doc.descendants().filter(|n| n.has_tag_name(element)) {
                let value = match attribute.0 {
                    Some(ns) => node.attribute((ns, attribute.1)),
                    None => node.attribute(attribute.1),
                };
                if let Some(value) = value
                    && !targets.contains(value)
                {
                    problems.push(format!(
                        "{}/@{} = {value} does not resolve",
                        element.1, attribute.1
                    ));
                }
            }
        };
    resolve((ODM, "ItemRef"), (None, "ItemOID"), &item_defs);
    resolve((ODM, "ItemRef"), (None, "MethodOID"), &methods);
    resolve((ODM, "CodeListRef"), (None, "CodeListOID"), &code_lists);
    resolve((DEF, "ValueListRef"), (None, "ValueListOID"), &value_lists);
    resolve(
        (DEF, "WhereClauseRef"),
        (None, "WhereClauseOID"),
        &where_clauses,
    );
    resolve((ODM, "RangeCheck"), (Some(DEF), "ItemOID"), &item_defs);
    resolve((DEF, "DocumentRef"), (None, "leafID"), &leaves);
    resolve(
        (ODM, "ItemGroupDef"),
        (Some(DEF), "StandardOID"),
        &standards,
    );
    for group in doc
        .descendants()
        .filter(|n| n.has_tag_name((ODM, "ItemGroupDef")))
    {
        let own_leaf = group
            .children()
            .find(|n| n.has_tag_name((DEF, "leaf")))
            .and_then(|n| n.attribute("ID"));
        if group.attribute((DEF, "ArchiveLocationID")) != own_leaf || own_leaf.is_none() {
            problems.push(format!(
                "ItemGroupDef {:?}: def:ArchiveLocationID is not its def:leaf",
                group.attribute("OID")
            ));
        }
    }
    // Every ItemDef is used by a dataset or a value list, and every derived variable names its method.
    let referenced = ids((ODM, "ItemRef"), "ItemOID");
    for orphan in item_defs.difference(&referenced) {
        problems.push(format!("ItemDef {orphan} is not referenced"));
    }
    for item_def in doc
        .descendants()
        .filter(|n| n.has_tag_name((ODM, "ItemDef")))
    {
        let derived = item_def
            .children()
            .any(|n| n.has_tag_name((DEF, "Origin")) && n.attribute("Type") == Some("Derived"));
        let oid = item_def.attribute("OID").unwrap_or_default();
        let refs_without_method = doc
            .descendants()
            .filter(|n| n.has_tag_name((ODM, "ItemRef")) && n.attribute("ItemOID") == Some(oid))
            .any(|n| n.attribute("MethodOID").is_none());
        if derived && refs_without_method {
            problems.push(format!(
                "derived ItemDef {oid} has an ItemRef without MethodOID"
            ));
        }
    }
    problems
}

#[test]
fn every_reference_resolves() {
    let xml = written();
    assert_eq!(xml, written(), "two writes differ");
    assert_eq!(dangling_references(&xml), Vec::<String>::new());
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert!(root.has_tag_name((ODM, "ODM")));
    assert_eq!(root.attribute("ODMVersion"), Some("1.3.2"));
    assert_eq!(
        root.attribute("CreationDateTime"),
        Some("2026-12-07T03:30:15Z")
    );
    let mdv = doc
        .descendants()
        .find(|n| n.has_tag_name((ODM, "MetaDataVersion")))
        .unwrap();
    assert!(
        mdv.attribute((DEF, "DefineVersion"))
            .unwrap()
            .starts_with("2.1.")
    );
    let leaf = doc
        .descendants()
        .find(|n| n.has_tag_name((DEF, "leaf")) && n.attribute("ID") == Some("LF.ADEFF"))
        .unwrap();
    assert_eq!(leaf.attribute((XLINK, "href")), Some("adeff.xpt"));
    let groups: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name((ODM, "ItemGroupDef")))
        .collect();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].attribute("Purpose"), Some("Analysis"));
    let class = groups[1]
        .children()
        .find(|n| n.has_tag_name((DEF, "Class")))
        .unwrap();
    assert_eq!(class.attribute("Name"), Some("BASIC DATA STRUCTURE"));
    // Text with markup characters survives escaping.
    let description = doc
        .descendants()
        .find(|n| n.has_tag_name((ODM, "StudyDescription")))
        .unwrap();
    assert_eq!(
        description.text(),
        Some("Dermatomyositis trial: efficacy & safety <test fixture>")
    );
    let tis = doc
        .descendants()
        .find(|n| n.has_tag_name((ODM, "MethodDef")) && n.attribute("OID") == Some("MT.ADEFF.TIS"))
        .unwrap();
    let text: String = tis
        .descendants()
        .filter(|n| n.is_text())
        .map(|n| n.text().unwrap_or_default())
        .collect();
    assert!(text.contains("(weights > 0 & < 40). Algorithm tis-acr-eular-2016; documented in docs/algorithms.md#tis-acr-eular-2016."), "{text}");
    // Value-level metadata: AVAL for TIS is a float with one significant digit, where PARAMCD EQ TIS.
    let clause = doc
        .descendants()
        .find(|n| {
            n.has_tag_name((DEF, "WhereClauseDef"))
                && n.attribute("OID") == Some("WC.ADEFF.PARAMCD.TIS")
        })
        .unwrap();
    let check = clause
        .descendants()
        .find(|n| n.has_tag_name((ODM, "RangeCheck")))
        .unwrap();
    assert_eq!(check.attribute("Comparator"), Some("EQ"));
    assert_eq!(check.attribute((DEF, "ItemOID")), Some("IT.ADEFF.PARAMCD"));
}

#[test]
fn the_reference_check_finds_broken_documents() {
    let xml = written();
    let no_code_list = xml.replace("CodeListOID=\"CL.SEX\"", "CodeListOID=\"CL.GENDER\"");
    assert_eq!(
        dangling_references(&no_code_list),
        vec!["CodeListRef/@CodeListOID = CL.GENDER does not resolve".to_owned()]
    );
    let wrong_leaf = xml.replace(
        "def:ArchiveLocationID=\"LF.ADSL\"",
        "def:ArchiveLocationID=\"LF.ADEFF\"",
    );
    assert_eq!(dangling_references(&wrong_leaf).len(), 1);
    let no_method = xml.replace(" MethodOID=\"MT.ADSL.AGE\"", "");
    assert_eq!(
        dangling_references(&no_method),
        vec!["derived ItemDef IT.ADSL.AGE has an ItemRef without MethodOID".to_owned()]
    );
}

#[test]
fn the_writer_refuses_dangling_references() {
    let (adsl, adeff) = (common::adsl(), common::adeff());
    let refuse = |change: &dyn Fn(&mut DefineDocument<'_>), expected: &str| {
        let mut doc = document(&adsl, &adeff);
        change(&mut doc);
        let error = write_define(&mut Vec::new(), &doc).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
    };
    refuse(
        &|d| {
            d.methods.retain(|m| m.oid != "MT.ADEFF.TIS");
        },
        "value-level item IT.ADEFF.AVAL.TIS refers to MethodDef MT.ADEFF.TIS",
    );
    refuse(
        &|d| {
            d.code_lists.pop();
        },
        "variable ADEFF.PARAMCD refers to CodeList CL.PARAMCD",
    );
    refuse(
        &|d| {
            d.value_lists.clear();
        },
        "refers to def:ValueListDef VL.ADEFF.AVAL",
    );
    refuse(
        &|d| {
            d.documents.clear();
        },
        "refers to def:leaf LF.ALGORITHMS",
    );
    refuse(
        &|d| {
            d.standards.remove(0);
        },
        "refers to def:Standard STD.ADAMIG.1.3",
    );
    refuse(
        &|d| {
            d.datasets[0].variables.pop();
        },
        "dataset ADSL, column ITTFL: has no Define-XML variable definition",
    );
    refuse(
        &|d| {
            d.value_lists[0].items[0].where_clause.item_oid = "IT.ADEFF.PARAM_CD".into();
        },
        "WhereClauseDef WC.ADEFF.PARAMCD.MMT8 refers to ItemDef IT.ADEFF.PARAM_CD",
    );
    refuse(
        &|d| {
            d.value_lists[0].items[1].item_oid = "IT.ADEFF.AVAL".into();
        },
        "ItemDef OID IT.ADEFF.AVAL is defined twice",
    );
}

#[test]
fn valid_against_the_define_xml_2_1_schema() {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schemas/define-xml-2.1/define/2.1/define2-1-0.xsd");
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("define.xml");
    std::fs::write(&path, written()).unwrap();
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(&schema)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run xmllint ({e}): install it with `apt-get install libxml2-utils`")
        });
    assert!(
        output.status.success(),
        "xmllint rejects the Define-XML: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The schema is strict enough to notice a misplaced element.
    let broken = written().replacen("<def:Class ", "<def:Klass ", 1);
    std::fs::write(&path, broken).unwrap();
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(&schema)
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
}
