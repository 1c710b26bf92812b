//! A conformance check of SDTM trial design datasets before they go into a submission: the TS
//! parameters a submission needs are there, coded values are terms of the CT extract with their codes,
//! references between TA, TE and TV resolve, and TI codes and texts fit SDTM's lengths. Each finding
//! names the rule it broke, so a reader can look the rule up rather than guess.

use super::ct;
use super::tdm::TdmDatasets;
use std::fmt;

/// TS parameters this export must deliver. SSTDTC first: a TS without a study start date is refused
/// by FDA's technical rejection criteria; the rest are the design parameters SDTMIG 3.4's TS
/// examples carry for every interventional trial.
pub const REQUIRED_TS_PARAMETERS: &[&str] = &[
    "SSTDTC", "SDTIGVER", "SDTMVER", "TITLE", "REGID", "TPHASE", "STYPE", "TBLIND", "RANDOM",
    "NARMS", "PLANSUB", "TRT", "AGEMIN", "AGEMAX", "SEXPOP",
];

/// TS parameters whose value is a CDISC controlled term, with the codelist it comes from.
const CODED_TS_PARAMETERS: &[(&str, &str)] = &[
    ("TPHASE", "TPHASE"),
    ("STYPE", "STYPE"),
    ("TBLIND", "TBLIND"),
    ("RANDOM", "NY"),
    ("ADDON", "NY"),
    ("HLTSUBJI", "NY"),
    ("RDIND", "NY"),
    ("ADAPT", "NY"),
    ("SEXPOP", "SEXPOP"),
    ("INTMODEL", "INTMODEL"),
    ("INTTYPE", "INTTYPE"),
    ("TTYPE", "TTYPE"),
    ("TINDTP", "TINDTP"),
    ("DOSU", "UNIT"),
    ("DOSFRQ", "FREQ"),
    ("ROUTE", "ROUTE"),
    ("DOSFRM", "FRM"),
    ("TCNTRL", "TCNTRL"),
];

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdtmFinding {
    pub dataset: &'static str,
    /// The rule, in words.
    pub rule: String,
    /// What broke it.
    pub detail: String,
}

impl fmt::Display for SdtmFinding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}: {}: {}",
            self.dataset, self.rule, self.detail
        )
    }
}

/// Every rule the datasets break; empty when they conform.
pub fn check_trial_design(datasets: &TdmDatasets) -> Vec<SdtmFinding> {
    let mut findings = Vec::new();
    let mut find = |dataset, rule: &str, detail: String| {
        findings.push(SdtmFinding {
            dataset,
            rule: rule.to_string(),
            detail,
        });
    };

    for required in REQUIRED_TS_PARAMETERS {
        if !datasets.ts.iter().any(|row| row.tsparmcd == *required) {
            let detail = if *required == "SSTDTC" {
                "no SSTDTC row (the earliest informed-consent date; export with --data LOG)".into()
            } else {
                format!("no {required} row")
            };
            find("TS", "required TS parameter present", detail);
        }
    }
    for row in &datasets.ts {
        match ct::lookup("TSPARMCD", &row.tsparmcd) {
            None => find(
                "TS",
                "TSPARMCD is a term of the TSPARMCD codelist (C66738)",
                format!(
                    "`{}` is not in SDTM CT {}",
                    row.tsparmcd,
                    ct::SDTM_CT_VERSION
                ),
            ),
            Some(parameter) => {
                let name = ct::by_code("TSPARM", &parameter.code);
                if name.is_none_or(|name| name.value != row.tsparm) {
                    find(
                        "TS",
                        "TSPARM is the TSPARM term (C67152) of the TSPARMCD's C-code",
                        format!(
                            "{} ({}) has TSPARM `{}`, expected `{}`",
                            row.tsparmcd,
                            parameter.code,
                            row.tsparm,
                            name.map_or("no TSPARM term", |name| name.value.as_str())
                        ),
                    );
                }
            }
        }
        if row.tsval.is_empty() && row.tsvalnf.is_empty() {
            find(
                "TS",
                "TSVAL or TSVALNF populated",
                format!("{} {} has neither", row.tsparmcd, row.tsseq),
            );
        }
        if let Some((_, codelist)) = CODED_TS_PARAMETERS
            .iter()
            .find(|(code, _)| *code == row.tsparmcd)
        {
            match ct::lookup(codelist, &row.tsval) {
                None => find(
                    "TS",
                    "controlled term used where coded",
                    format!(
                        "{} value `{}` is not a {codelist} term of the CDISC CT extracts",
                        row.tsparmcd, row.tsval,
                    ),
                ),
                Some(term)
                    if row.tsvalcd != term.code
                        || row.tsvcdref != ct::CT_REFERENCE
                        || row.tsvcdver != term.version =>
                {
                    find(
                        "TS",
                        "TSVALCD, TSVCDREF and TSVCDVER give the term's code",
                        format!(
                            "{} `{}` has TSVALCD `{}` ({} {}), expected `{}` ({} {})",
                            row.tsparmcd,
                            row.tsval,
                            row.tsvalcd,
                            row.tsvcdref,
                            row.tsvcdver,
                            term.code,
                            ct::CT_REFERENCE,
                            term.version
                        ),
                    )
                }
                Some(_) => {}
            }
        }
        if matches!(row.tsparmcd.as_str(), "REGID" | "FCNTRY")
            && ct::lookup("DICTNAM", &row.tsvcdref).is_none()
        {
            find(
                "TS",
                "TSVCDREF is a DICTNAM term",
                format!("{} `{}` names `{}`", row.tsparmcd, row.tsval, row.tsvcdref),
            );
        }
    }

    for row in &datasets.ta {
        if !datasets.te.iter().any(|element| element.etcd == row.etcd) {
            find(
                "TA",
                "ETCD references resolve to TE",
                format!("arm {} element {} is not in TE", row.armcd, row.etcd),
            );
        }
    }
    for row in &datasets.tv {
        if !row.armcd.is_empty() && !datasets.ta.iter().any(|arm| arm.armcd == row.armcd) {
            find(
                "TV",
                "ARMCD references resolve to TA",
                format!("visit {} names arm {}", row.visitnum, row.armcd),
            );
        }
    }
    for row in &datasets.ti {
        let valid_code = row.ietestcd.len() <= 8
            && row
                .ietestcd
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && row
                .ietestcd
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_code {
            find(
                "TI",
                "IETESTCD is at most 8 characters: a letter, then letters, digits or _",
                format!("`{}`", row.ietestcd),
            );
        }
        if row.ietest.chars().count() > 200 {
            find(
                "TI",
                "IETEST is at most 200 characters",
                format!("{} has {}", row.ietestcd, row.ietest.chars().count()),
            );
        }
        // TIRL has no continuation variable (unlike TSVAL), and SAS V5 holds 200 bytes.
        if row.tirl.len() > 200 {
            find(
                "TI",
                "TIRL is at most 200 bytes",
                format!("{} has {}", row.ietestcd, row.tirl.len()),
            );
        }
    }
    findings
}
