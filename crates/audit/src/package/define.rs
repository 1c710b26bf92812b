//! The package's Define-XML 2.1: every dataset with the file it lives in, every variable with its
//! origin (collected at enrolment, assigned, copied from the protocol, or derived by a named method),
//! value-level metadata of ADEFF.AVAL per PARAMCD naming the algorithm that computed it, the code lists
//! the flags and demographics use, and one MethodDef per derivation whose text is the rule the code
//! applies (the same words as the reviewer's guide). `myolog-cdisc` checks every reference resolves
//! before writing.

use std::collections::BTreeMap;

use myolog_cdisc::DataType;
use myolog_cdisc::Dataset;
use myolog_cdisc::define_xml::{
    CodeList, CodeListType, CollectedSource, DatasetDefinition, DefineDocument, Document, Method,
    MethodKind, Origin, Standard, Term, ValueList, ValueListItem, VariableDefinition, WhereClause,
    write_define,
};
use myolog_domain::event::{Race, Sex};

use super::{Context, PackageError, PackageFormat, dataset_file, metadata_version_oid, study_oid};
use crate::ENGINE_VERSION;

pub const DEFINE_FILE: &str = "define.xml";

/// Where the package's derivations are documented in the repository.
const DOCS: &str = "docs/analysis-package.md";

/// Algorithm id of the package's own dataset derivations (flags, dates, change from baseline).
pub const PACKAGE_ALGORITHM: &str = "myolog-package@1";

/// The rounding rule, quoted in every method that can round.
pub const ROUNDING_RULE: &str = "Values are exact decimals; a value whose decimal expansion does not \
    terminate within 6 places (e.g. HAQ-DI 8/7) is rounded half away from zero to 6 decimal places \
    (8/7 = 1.142857), once, at the end of the derivation.";

/// The package's derivations: OID suffix, name, description.
pub const METHOD_TEXTS: [(&str, &str, &str); 16] = [
    (
        "ITTFL",
        "Intent-to-treat population",
        "Y for every enrolled (randomised) subject with a planned arm; N otherwise.",
    ),
    (
        "SAFFL",
        "Safety population",
        "Y when at least one study-drug dose record with a dose above 0 mg/day is in the log; N otherwise.",
    ),
    (
        "EFFFL",
        "Efficacy population",
        "Y when ITTFL is Y, the subject has a baseline visit and at least one follow-up visit was scored; N otherwise.",
    ),
    (
        "ELIGFL",
        "Eligibility",
        "The protocol's eligibility verdict at baseline: Y eligible, N not eligible (an inclusion criterion not met or an exclusion criterion met); missing when not evaluable or without a protocol. IENOTMET lists the criteria ids that made the subject not eligible.",
    ),
    (
        "ACTARM",
        "Actual arm",
        "The planned arm when at least one study-drug dose above 0 mg/day is recorded; otherwise NOTTRT (Not Treated).",
    ),
    (
        "TRTSDT",
        "Treatment start",
        "Date of the earliest study-drug dose record with a dose above 0 mg/day.",
    ),
    (
        "TRTEDT",
        "Treatment end",
        "The day before the first 0 mg/day study-drug record after TRTSDT, when no later record restarts treatment; missing while treatment is ongoing.",
    ),
    (
        "EOSSTT",
        "End of study status",
        "DISCONTINUED when a SubjectWithdrawn event is in the log, else ONGOING.",
    ),
    (
        "AVAL",
        "Analysis value",
        "The value the scoring engine computed for the visit against the subject's baseline visit (see value-level metadata per PARAMCD).",
    ),
    (
        "BASE",
        "Baseline",
        "AVAL of the baseline visit (the study's baseline encounter) for the same PARAMCD; measures only, not DOI, TIS or PFTIS.",
    ),
    (
        "CHG",
        "Change and percent change",
        "CHG = AVAL - BASE; PCHG = CHG / BASE x 100, missing when BASE is 0.",
    ),
    (
        "ADY",
        "Relative day",
        "ADT - TRTSDT + 1 when ADT is on or after TRTSDT, ADT - TRTSDT before it (no day 0); missing without TRTSDT.",
    ),
    (
        "AVISITN",
        "Analysis visit number",
        "VISITNUM of the protocol encounter named by AVISIT (TV.VISITNUM); without a protocol 0 for the baseline visit and missing otherwise.",
    ),
    (
        "ANL01FL",
        "Analysis flag 01",
        "Y on baseline records and on follow-up records whose visit date lies inside the protocol's window for that encounter (or when the study has no protocol schedule); missing for visits outside their window, which are kept but not analysed.",
    ),
    (
        "CRIT",
        "Analysis criteria",
        "DOI: CRIT1 DOI met. TIS: CRIT1-3 TIS >= 20, 40, 60 on the exact score. CDASIACT: CRIT1 activity improved by at least the protocol's MCID. PFTIS: CRIT1 prednisone-free and TIS >= the protocol threshold. CRITyFL is Y/N, missing when not evaluable.",
    ),
    (
        "SRCSEQ",
        "Traceability",
        "SRCSEQ: the event log sequence numbers of the analysis visit's live assessment events (a correction replaces the event it supersedes), space-separated, or 'N events, sequences A to B' when longer than 200 characters. ALGOID: the algorithm id@version that derived AVAL; missing for values collected as such.",
    ),
];

fn method_oid(suffix: &str) -> String {
    format!("MT.{suffix}")
}

fn derived(suffix: &str) -> Origin {
    Origin::Derived {
        method_oid: method_oid(suffix),
    }
}

fn variable(column: &str, origin: Origin) -> VariableDefinition {
    VariableDefinition {
        column: column.into(),
        origin,
        mandatory: false,
        code_list_oid: None,
        value_list_oid: None,
    }
}

/// Origin and code list of a variable.
fn definition_of(dataset: &str, column: &str) -> VariableDefinition {
    let collected = Origin::Collected {
        source: CollectedSource::Investigator,
    };
    let with_list = |mut v: VariableDefinition, list: &str| {
        v.code_list_oid = Some(format!("CL.{list}"));
        v
    };
    let mandatory = |mut v: VariableDefinition| {
        v.mandatory = true;
        v
    };
    let flag_list = |v| with_list(v, "NY");
    match (dataset, column) {
        (_, "STUDYID") => mandatory(variable(column, Origin::Protocol)),
        (_, "DOMAIN") => mandatory(variable(column, Origin::Assigned)),
        ("ADSL" | "DM", "USUBJID") => mandatory(variable(column, derived("USUBJID"))),
        ("ADEFF", "USUBJID") => mandatory(variable(
            column,
            Origin::Predecessor {
                from: "ADSL.USUBJID".into(),
            },
        )),
        (_, "SUBJID" | "SITEID" | "AGE" | "RANDDT") => variable(column, collected),
        (_, "AGEU") => with_list(variable(column, Origin::Assigned), "AGEU"),
        (_, "SEX") => with_list(variable(column, collected), "SEX"),
        (_, "RACE") => with_list(variable(column, collected), "RACE"),
        (_, "RFICDT" | "RFICDTC") => variable(column, collected),
        (_, "ARM" | "ARMCD") => variable(column, Origin::Protocol),
        (_, "TRT01P" | "TRTP") => variable(
            column,
            Origin::Predecessor {
                from: "ADSL.ARM".into(),
            },
        ),
        (_, "ACTARM" | "ACTARMCD" | "TRT01A" | "TRTA") => variable(column, derived("ACTARM")),
        (_, "TRTSDT" | "RFSTDTC") => variable(column, derived("TRTSDT")),
        (_, "TRTEDT" | "RFENDTC") => variable(column, derived("TRTEDT")),
        (_, "ITTFL" | "SAFFL" | "EFFFL" | "ELIGFL") => {
            let suffix = column;
            mandatory(flag_list(variable(column, derived(suffix))))
        }
        (_, "IENOTMET") => variable(column, derived("ELIGFL")),
        (_, "EOSSTT") => variable(column, derived("EOSSTT")),
        (_, "COUNTRY") => variable(column, collected),
        ("ADEFF", "ASEQ") => variable(column, derived("SRCSEQ")),
        ("ADEFF", "PARAMCD") => mandatory(with_list(variable(column, Origin::Assigned), "PARAMCD")),
        ("ADEFF", "PARAM" | "PARAMN") => variable(column, Origin::Assigned),
        ("ADEFF", "AVISIT") => variable(column, collected),
        ("ADEFF", "AVISITN") => variable(column, derived("AVISITN")),
        ("ADEFF", "ADT") => variable(column, collected),
        ("ADEFF", "ADY") => variable(column, derived("ADY")),
        ("ADEFF", "AVAL") => {
            let mut v = variable(column, derived("AVAL"));
            v.value_list_oid = Some("VL.ADEFF.AVAL".into());
            v
        }
        ("ADEFF", "AVALC") => variable(column, derived("AVAL")),
        ("ADEFF", "ABLFL" | "BASE") => variable(column, derived("BASE")),
        ("ADEFF", "CHG" | "PCHG") => variable(column, derived("CHG")),
        ("ADEFF", "ANL01FL") => variable(column, derived("ANL01FL")),
        ("ADEFF", name) if name.starts_with("CRIT") && name.ends_with("FL") => {
            flag_list(variable(column, derived("CRIT")))
        }
        ("ADEFF", name) if name.starts_with("CRIT") => variable(column, derived("CRIT")),
        ("ADEFF", "SRCSEQ" | "ALGOID") => variable(column, derived("SRCSEQ")),
        // Trial design datasets: every value comes from the protocol file.
        _ => variable(column, Origin::Protocol),
    }
}

/// The Define-XML document of the package, pointing each dataset at its file in `primary` format.
pub fn document(
    context: &Context<'_>,
    datasets: &[Dataset],
    primary: PackageFormat,
) -> Result<Vec<u8>, PackageError> {
    let mut definitions = Vec::new();
    for dataset in datasets {
        let adam = matches!(dataset.name.as_str(), "ADSL" | "ADEFF");
        definitions.push(DatasetDefinition {
            dataset,
            standard_oid: Some(if adam { "STD.ADAMIG" } else { "STD.SDTMIG" }.into()),
            repeating: !matches!(dataset.name.as_str(), "ADSL" | "DM"),
            archive_file: dataset_file(&dataset.name, primary),
            variables: dataset
                .columns
                .iter()
                .map(|column| definition_of(&dataset.name, &column.name))
                .collect(),
        });
    }
    let (value_lists, mut methods, paramcd_terms) = value_level(datasets);
    // An ADEFF without rows has no parameters: no value list or PARAMCD code list to point at.
    if paramcd_terms.is_empty() {
        for definition in &mut definitions {
            for variable in &mut definition.variables {
                variable.value_list_oid = None;
                if variable.code_list_oid.as_deref() == Some("CL.PARAMCD") {
                    variable.code_list_oid = None;
                }
            }
        }
    }
    methods.extend(
        METHOD_TEXTS
            .iter()
            .map(|(suffix, name, description)| Method {
                oid: method_oid(suffix),
                name: (*name).into(),
                kind: MethodKind::Computation,
                // Only the numeric derivations can round; the flags and dates cannot.
                description: if matches!(*suffix, "AVAL" | "BASE" | "CHG") {
                    format!("{description} {ROUNDING_RULE}")
                } else {
                    (*description).to_string()
                },
                algorithm_id: PACKAGE_ALGORITHM.into(),
                docs_path: format!("{DOCS}#derivations"),
                document_leaf_id: Some("LF.ADRG".into()),
            }),
    );
    methods.push(Method {
        oid: method_oid("USUBJID"),
        name: "Unique subject identifier".into(),
        kind: MethodKind::Computation,
        description: "STUDYID, a hyphen, then SUBJID.".into(),
        algorithm_id: PACKAGE_ALGORITHM.into(),
        docs_path: format!("{DOCS}#derivations"),
        document_leaf_id: Some("LF.ADRG".into()),
    });
    let terms = |values: &[&str]| {
        values
            .iter()
            .map(|v| Term {
                coded_value: (*v).into(),
                decode: None,
            })
            .collect()
    };
    let mut code_lists = vec![
        CodeList {
            oid: "CL.NY".into(),
            name: "No Yes Response".into(),
            data_type: CodeListType::Text,
            terms: terms(&["N", "Y"]),
        },
        CodeList {
            oid: "CL.AGEU".into(),
            name: "Age Unit".into(),
            data_type: CodeListType::Text,
            terms: terms(&["YEARS"]),
        },
        CodeList {
            oid: "CL.SEX".into(),
            name: "Sex".into(),
            data_type: CodeListType::Text,
            terms: terms(&Sex::ALL.map(Sex::code)),
        },
        CodeList {
            oid: "CL.RACE".into(),
            name: "Race".into(),
            data_type: CodeListType::Text,
            terms: terms(&Race::ALL.map(Race::code)),
        },
        CodeList {
            oid: "CL.PARAMCD".into(),
            name: "ADEFF Parameter Code".into(),
            data_type: CodeListType::Text,
            terms: paramcd_terms,
        },
    ];
    code_lists.retain(|list| !list.terms.is_empty());
    let study = context.study_id;
    let document = DefineDocument {
        file_oid: format!("MYOLOG.DEFINE.{study}.SEQ{}", context.replay.last_sequence),
        created: context.as_of_time,
        originator: "Myolog".into(),
        source_system: "Myolog".into(),
        source_system_version: ENGINE_VERSION.into(),
        study_oid: study_oid(study),
        study_name: study.to_string(),
        study_description: context.study.title.clone(),
        protocol_name: context.study.protocol.as_ref().map_or_else(
            || study.to_string(),
            |h| h.current().reference().to_string(),
        ),
        metadata_version_oid: metadata_version_oid(study),
        metadata_version_name: format!("{study} analysis and tabulation package"),
        metadata_version_description: Some(format!(
            "Built by Myolog {ENGINE_VERSION} from the event log as of sequence {} (chain hash {}).",
            context.replay.last_sequence,
            context.replay.chain_hash.to_hex()
        )),
        standards: vec![
            Standard {
                oid: "STD.ADAMIG".into(),
                name: "ADaMIG".into(),
                standard_type: "IG".into(),
                publishing_set: None,
                version: "1.3".into(),
                status: "Final".into(),
            },
            Standard {
                oid: "STD.SDTMIG".into(),
                name: "SDTMIG".into(),
                standard_type: "IG".into(),
                publishing_set: None,
                version: "3.4".into(),
                status: "Final".into(),
            },
        ],
        datasets: definitions,
        value_lists,
        code_lists,
        methods,
        documents: vec![Document {
            leaf_id: "LF.ADRG".into(),
            href: super::guide::GUIDE_FILE.into(),
            title: "Analysis Data Reviewer's Guide".into(),
        }],
    };
    let mut bytes = Vec::new();
    write_define(&mut bytes, &document)?;
    Ok(bytes)
}

/// ADEFF.AVAL per PARAMCD: the value-level definitions, one method per parameter naming the algorithm
/// the rows carry in ALGOID, and the PARAMCD code list with PARAM as decode.
fn value_level(datasets: &[Dataset]) -> (Vec<ValueList>, Vec<Method>, Vec<Term>) {
    let Some(adeff) = datasets.iter().find(|d| d.name == super::adeff::NAME) else {
        return (Vec::new(), Vec::new(), Vec::new());
    };
    let index = |name: &str| adeff.columns.iter().position(|c| c.name == name);
    let (Some(code_at), Some(param_at), Some(algo_at)) =
        (index("PARAMCD"), index("PARAM"), index("ALGOID"))
    else {
        return (Vec::new(), Vec::new(), Vec::new());
    };
    let text = |value: &myolog_cdisc::Value| match value {
        myolog_cdisc::Value::Text(text) => text.clone(),
        _ => String::new(),
    };
    // PARAMCD -> (PARAMN, PARAM, ALGOID): the first row's label and the first algorithm named.
    let mut parameters: BTreeMap<String, (String, String)> = BTreeMap::new();
    for row in &adeff.rows {
        let entry = parameters
            .entry(text(&row[code_at]))
            .or_insert_with(|| (text(&row[param_at]), String::new()));
        if entry.1.is_empty() {
            entry.1 = text(&row[algo_at]);
        }
    }
    let mut items = Vec::new();
    let mut methods = Vec::new();
    let mut terms = Vec::new();
    for (code, (param, algorithm)) in &parameters {
        let collected = algorithm.is_empty();
        let method = format!("ADEFF.AVAL.{code}");
        methods.push(Method {
            oid: method_oid(&method),
            name: format!("AVAL of {code}"),
            kind: MethodKind::Computation,
            description: if collected {
                format!("{param}: the value recorded at the visit (latest live assessment event). {ROUNDING_RULE}")
            } else {
                format!("{param}: computed by the scoring engine. {ROUNDING_RULE}")
            },
            algorithm_id: if collected {
                "collected".into()
            } else {
                algorithm.clone()
            },
            docs_path: "docs/clinical.md".into(),
            document_leaf_id: None,
        });
        items.push(ValueListItem {
            item_oid: format!("IT.ADEFF.AVAL.{code}"),
            name: "AVAL".into(),
            description: param.clone(),
            data_type: DataType::Decimal,
            target_data_type: None,
            length: None,
            significant_digits: None,
            display_format: None,
            origin: derived(&method),
            mandatory: false,
            code_list_oid: None,
            where_clause: WhereClause {
                oid: format!("WC.ADEFF.PARAMCD.{code}"),
                item_oid: "IT.ADEFF.PARAMCD".into(),
                values: vec![code.clone()],
            },
        });
        terms.push(Term {
            coded_value: code.clone(),
            decode: Some(param.clone()),
        });
    }
    let lists = if items.is_empty() {
        Vec::new()
    } else {
        vec![ValueList {
            oid: "VL.ADEFF.AVAL".into(),
            items,
        }]
    };
    (lists, methods, terms)
}
