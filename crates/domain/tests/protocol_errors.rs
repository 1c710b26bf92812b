//! Broken protocol files: each edit of a valid protocol gives exactly the listed errors, each naming
//! the file, the key path and what was expected.

use myolog_domain::protocol::Protocol;

const FILE: &str = "protocols/demo.toml";

/// A small valid two-arm protocol that every case edits.
const VALID: &str = r#"[protocol]
version = 1

[study]
id = "DEMO"
title = "Demo trial"
phase = "2"
blinding = "double_blind"
randomised = true
population = "adult"
planned_subjects = 20
treatments = ["Drug"]
baseline_encounter = "BL"

[conventions]
mmt8_max = 150

[[epochs]]
id = "SCREENING"
name = "SCREENING"
type = "screening"

[[epochs]]
id = "TREATMENT"
name = "TREATMENT"
type = "treatment"

[[elements]]
code = "SCRN"
name = "Screening"

[[elements]]
code = "DRUG"
name = "Drug"

[[elements]]
code = "PBO"
name = "Placebo"

[[arms]]
code = "DRUG"
name = "Drug"
type = "experimental"
baseline = "randomisation"
cells = [{ epoch = "SCREENING", element = "SCRN" }, { epoch = "TREATMENT", element = "DRUG" }]

[[arms]]
code = "PBO"
name = "Placebo"
type = "placebo_comparator"
baseline = "randomisation"
cells = [{ epoch = "SCREENING", element = "SCRN" }, { epoch = "TREATMENT", element = "PBO" }]

[[encounters]]
id = "BL"
name = "Baseline"
visit_number = 1
epoch = "TREATMENT"
target_day = 0
window = [-7, 0]

[[encounters]]
id = "W12"
name = "Week 12"
visit_number = 2
epoch = "TREATMENT"
target_day = 84
window = [77, 91]

[[encounters]]
id = "W24"
name = "Week 24"
visit_number = 3
epoch = "TREATMENT"
target_day = 168
window = [161, 175]

[[eligibility]]
id = "IN01"
category = "inclusion"
text = "CDASI activity at least 5"
rule = { kind = "compare", measure = "cdasi_activity", op = ">=", value = 5 }

[[objectives]]
id = "OBJ1"
level = "primary"
text = "Efficacy"

[[endpoints]]
id = "EP1"
objective = "OBJ1"
level = "primary"
text = "DOI at week 12"
outcome = "doi"
encounter = "W12"
"#;

const DRUG_ARM: &str = r#"[[arms]]
code = "DRUG"
name = "Drug"
type = "experimental"
baseline = "randomisation"
cells = [{ epoch = "SCREENING", element = "SCRN" }, { epoch = "TREATMENT", element = "DRUG" }]
"#;

const PLACEBO_ARM: &str = r#"[[arms]]
code = "PBO"
name = "Placebo"
type = "placebo_comparator"
baseline = "randomisation"
cells = [{ epoch = "SCREENING", element = "SCRN" }, { epoch = "TREATMENT", element = "PBO" }]
"#;

/// (case name, (find, replace) edits, expected error messages)
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);

/// Applies each (find, replace) edit once to the valid protocol and compares every error message;
/// returns a description of the difference, if any.
fn check(case: &str, edits: &[(&str, &str)], expected: &[&str]) -> Option<String> {
    let mut text = VALID.to_string();
    for (find, replace) in edits {
        if !text.contains(find) {
            return Some(format!("case {case:?}: the valid protocol has no {find:?}"));
        }
        text = text.replacen(find, replace, 1);
    }
    let actual: Vec<String> = match Protocol::from_toml(FILE, &text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.errors.iter().map(ToString::to_string).collect(),
    };
    (actual != expected)
        .then(|| format!("case {case:?}:\n  expected {expected:#?}\n  actual {actual:#?}"))
}

#[test]
fn the_valid_protocol_is_valid() {
    assert_eq!(check("valid", &[], &[]), None);
}

#[test]
fn broken_protocols_name_the_file_the_key_path_and_what_was_expected() {
    let cases: &[Case] = &[
        (
            "unknown key",
            &[(
                "title = \"Demo trial\"",
                "title = \"Demo trial\"\ncolour = \"blue\"",
            )],
            &[
                "protocols/demo.toml: study.colour: line 7: unknown field `colour`, expected one of `id`, `registry_id`, `title`, `phase`, `blinding`, `randomised`, `population`, `planned_subjects`, `add_on`, `treatments`, `baseline_encounter`",
            ],
        ),
        (
            "misspelt endpoint key",
            &[("encounter = \"W12\"\n", "encouter = \"W12\"\n")],
            &[
                "protocols/demo.toml: endpoints[0].encouter: line 95: unknown field `encouter`, expected one of `id`, `objective`, `level`, `text`, `outcome`, `encounter`, `encounter_by_arm`, `baseline`, `analyte`, `threshold`, `glucocorticoid_window`, `min_dose_records_in_window`, `responder`, `missing_data`",
            ],
        ),
        (
            "unknown encounter",
            &[("encounter = \"W12\"\n", "encounter = \"W13\"\n")],
            &[
                "protocols/demo.toml: endpoints[0].encounter: expected one of the encounter ids BL, W12, W24, found `W13`",
            ],
        ),
        (
            "unknown outcome",
            &[("outcome = \"doi\"", "outcome = \"dio\"")],
            &[
                "protocols/demo.toml: endpoints[0].outcome: line 94: unknown variant `dio`, expected one of `doi`, `tis_score`, `tis_category`, `cdasi_activity_change`, `cdasi_mcid`, `biomarker_fold_change`, `stat1_change`, `prednisone_free_tis`",
            ],
        ),
        (
            "overlapping windows",
            &[("window = [77, 91]", "window = [77, 161]")],
            &[
                "protocols/demo.toml: encounters[2].window: expected a window not overlapping encounter `W12` [77, 161], found [161, 175]",
            ],
        ),
        (
            "window without target day",
            &[("window = [77, 91]", "window = [85, 91]")],
            &[
                "protocols/demo.toml: encounters[1].window: expected a window containing the target day 84, found [85, 91]",
            ],
        ),
        (
            "reversed window",
            &[("window = [77, 91]", "window = [91, 77]")],
            &[
                "protocols/demo.toml: encounters[1].window: expected [first day, last day] with first day <= last day, found [91, 77]",
            ],
        ),
        (
            "duplicate encounter id",
            &[("id = \"W24\"", "id = \"W12\"")],
            &[
                "protocols/demo.toml: encounters[2].id: expected a unique encounter id (encounters[1].id is already `W12`), found `W12`",
            ],
        ),
        (
            "duplicate visit number",
            &[("visit_number = 3", "visit_number = 2")],
            &[
                "protocols/demo.toml: encounters[2].visit_number: expected a unique visit number (encounters[1].visit_number is already 2), found 2",
            ],
        ),
        (
            "float threshold",
            &[("op = \">=\", value = 5", "op = \">=\", value = 5.0")],
            &[
                "protocols/demo.toml: eligibility[0].rule.value: line 82: the float 5.0 is not allowed here; expected an exact decimal: an integer (5) or a decimal in quotes (\"0.25\"), never a TOML float",
            ],
        ),
        (
            "threshold outside the measure",
            &[("op = \">=\", value = 5", "op = \">=\", value = 101")],
            &[
                "protocols/demo.toml: eligibility[0].rule.value: expected a cdasi_activity threshold from 0 to 100, found 101",
            ],
        ),
        (
            "mmt8 maximum",
            &[("mmt8_max = 150", "mmt8_max = 100")],
            &[
                "protocols/demo.toml: conventions.mmt8_max: expected 80 (unilateral) or 150 (bilateral), found 100",
            ],
        ),
        (
            "biomarker without analyte",
            &[("outcome = \"doi\"", "outcome = \"biomarker_fold_change\"")],
            &[
                "protocols/demo.toml: endpoints[0].analyte: expected the coded lab analyte of outcome biomarker_fold_change, e.g. \"CXCL9\", found none",
            ],
        ),
        (
            "analyte on doi",
            &[(
                "outcome = \"doi\"",
                "outcome = \"doi\"\nanalyte = \"CXCL9\"",
            )],
            &[
                "protocols/demo.toml: endpoints[0].analyte: expected no analyte for outcome doi, found a value",
            ],
        ),
        (
            "responder of another outcome",
            &[(
                "outcome = \"doi\"",
                "outcome = \"doi\"\nresponder = { tis_at_least = 40 }",
            )],
            &[
                "protocols/demo.toml: endpoints[0].responder: expected a responder rule for outcome doi: \"doi_met\" or none, found { tis_at_least = 40 }",
            ],
        ),
        (
            "non-responder imputation without responder",
            &[(
                "outcome = \"doi\"",
                "outcome = \"cdasi_activity_change\"\nmissing_data = \"non_responder_imputation\"",
            )],
            &[
                "protocols/demo.toml: endpoints[0].missing_data: expected \"missing\" (non-responder imputation needs a responder rule; cdasi_activity_change has none here), found \"non_responder_imputation\"",
            ],
        ),
        (
            "own first dose without a delayed arm",
            &[(
                "outcome = \"doi\"",
                "outcome = \"doi\"\nbaseline = \"own_first_dose\"",
            )],
            &[
                "protocols/demo.toml: endpoints[0].baseline: expected \"randomisation\" (no arm has a delayed first dose, so \"own_first_dose\" is the same baseline), found \"own_first_dose\"",
            ],
        ),
        (
            "endpoint at baseline",
            &[("encounter = \"W12\"\n", "encounter = \"BL\"\n")],
            &[
                "protocols/demo.toml: endpoints[0].encounter: expected an encounter after the baseline encounter (a change needs a follow-up visit), found the baseline encounter `BL`",
            ],
        ),
        (
            "cell with unknown epoch",
            &[(
                "{ epoch = \"TREATMENT\", element = \"DRUG\" }",
                "{ epoch = \"TREATMNT\", element = \"DRUG\" }",
            )],
            &[
                "protocols/demo.toml: arms[0].cells[1].epoch: expected one of the epoch ids SCREENING, TREATMENT, found `TREATMNT`",
            ],
        ),
        (
            "cells out of epoch order",
            &[(
                "cells = [{ epoch = \"SCREENING\", element = \"SCRN\" }, { epoch = \"TREATMENT\", element = \"DRUG\" }]",
                "cells = [{ epoch = \"TREATMENT\", element = \"DRUG\" }, { epoch = \"SCREENING\", element = \"SCRN\" }]",
            )],
            &[
                "protocols/demo.toml: arms[0].cells[1].epoch: expected an epoch after `TREATMENT` (cells follow the order of [[epochs]], one per epoch), found `SCREENING`",
            ],
        ),
        (
            "element code too long for SDTM",
            &[
                ("code = \"SCRN\"", "code = \"SCREENING\""),
                (
                    "element = \"SCRN\" }, { epoch = \"TREATMENT\", element = \"DRUG\"",
                    "element = \"SCREENING\" }, { epoch = \"TREATMENT\", element = \"DRUG\"",
                ),
                (
                    "element = \"SCRN\" }, { epoch = \"TREATMENT\", element = \"PBO\"",
                    "element = \"SCREENING\" }, { epoch = \"TREATMENT\", element = \"PBO\"",
                ),
            ],
            &[
                "protocols/demo.toml: elements[0].code: expected an identifier of letters, digits, `_` or `-`, at most 8 characters, found `SCREENING`",
            ],
        ),
        (
            "criterion id not an SDTM test code",
            &[("id = \"IN01\"", "id = \"1N-01\"")],
            &[
                "protocols/demo.toml: eligibility[0].id: expected an identifier of a letter, then letters, digits or `_`, at most 8 characters, found `1N-01`",
            ],
        ),
        (
            "amended version without amendment",
            &[("version = 1", "version = 2")],
            &[
                "protocols/demo.toml: protocol.amendment: expected an amendment summary for version 2, found none",
            ],
        ),
        (
            "amendment in version 1",
            &[(
                "version = 1\n",
                "version = 1\n\n[protocol.amendment]\nsummary = \"Window widened\"\n",
            )],
            &[
                "protocols/demo.toml: protocol.amendment: expected no amendment in version 1 (an amendment makes version 2 or later), found an amendment",
            ],
        ),
        (
            "toml syntax",
            &[("title = \"Demo trial\"", "title = \"Demo trial")],
            &["protocols/demo.toml: (document): line 6: invalid basic string, expected `\"`"],
        ),
        (
            "missing key",
            &[("title = \"Demo trial\"\n", "")],
            &["protocols/demo.toml: study: line 4: missing field `title`"],
        ),
        (
            "visit of one arm as an endpoint of both",
            &[("window = [77, 91]", "window = [77, 91]\narms = [\"DRUG\"]")],
            &[
                "protocols/demo.toml: endpoints[0].encounter: expected an encounter scheduled for arm `PBO` (or an entry for it in encounter_by_arm), found `W12` (arms DRUG)",
            ],
        ),
        (
            "encounter_by_arm with unknown arm",
            &[(
                "encounter = \"W12\"\n",
                "encounter = \"W12\"\nencounter_by_arm = { PLACEBO = \"W24\" }\n",
            )],
            &[
                "protocols/demo.toml: endpoints[0].encounter_by_arm.PLACEBO: expected one of the arm ids DRUG, PBO, found `PLACEBO`",
            ],
        ),
        (
            "no primary endpoint",
            &[(
                "level = \"primary\"\ntext = \"DOI",
                "level = \"secondary\"\ntext = \"DOI",
            )],
            &[
                "protocols/demo.toml: endpoints: expected at least one endpoint with level = \"primary\", found none",
            ],
        ),
        (
            "prednisone-free TIS without threshold",
            &[("outcome = \"doi\"", "outcome = \"prednisone_free_tis\"")],
            &[
                "protocols/demo.toml: endpoints[0].threshold: expected the TIS threshold of outcome prednisone_free_tis, e.g. 40 (moderate improvement), found none",
            ],
        ),
        (
            "prednisone-free TIS with bad window and no records",
            &[(
                "outcome = \"doi\"",
                "outcome = \"prednisone_free_tis\"\nthreshold = 40\nglucocorticoid_window = [168, 140]\nmin_dose_records_in_window = 0",
            )],
            &[
                "protocols/demo.toml: endpoints[0].glucocorticoid_window: expected [first day, last day] with 0 <= first day <= last day, found [168, 140]",
                "protocols/demo.toml: endpoints[0].min_dose_records_in_window: expected at least 1 (with no dose record in the window a subject is not evaluable, never met), found 0",
            ],
        ),
        (
            "glucocorticoid window on DOI",
            &[(
                "outcome = \"doi\"",
                "outcome = \"doi\"\nglucocorticoid_window = [140, 168]",
            )],
            &[
                "protocols/demo.toml: endpoints[0].glucocorticoid_window: expected no glucocorticoid_window for outcome doi, found a value",
            ],
        ),
        (
            "baseline encounter not at day 0",
            &[(
                "baseline_encounter = \"BL\"",
                "baseline_encounter = \"W12\"",
            )],
            &[
                "protocols/demo.toml: study.baseline_encounter: expected an encounter of every arm with target day 0, found `W12` (target day 84)",
                "protocols/demo.toml: endpoints[0].encounter: expected an encounter after the baseline encounter (a change needs a follow-up visit), found the baseline encounter `W12`",
            ],
        ),
        (
            "delayed arm without first dose day",
            &[(
                "baseline = \"randomisation\"\ncells = [{ epoch = \"SCREENING\", element = \"SCRN\" }, { epoch = \"TREATMENT\", element = \"PBO\" }]",
                "baseline = \"own_first_dose\"\ncells = [{ epoch = \"SCREENING\", element = \"SCRN\" }, { epoch = \"TREATMENT\", element = \"PBO\" }]",
            )],
            &[
                "protocols/demo.toml: arms[1].first_dose_day: expected the planned day of the delayed first dose, after day 0, found none",
            ],
        ),
        (
            "at least more than listed",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"at_least\", count = 3, rules = [{ kind = \"compare\", measure = \"haq_di\", op = \">\", value = \"0.25\" }, { kind = \"any_enzyme_above_uln\" }] }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.count: expected a count from 1 to the number of rules (2), found 3",
            ],
        ),
        (
            "unknown key inside a rule",
            &[(
                "op = \">=\", value = 5",
                "op = \">=\", value = 5, unit = \"points\"",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.unit: line 82: unknown field `unit`, expected one of `kind`, `measure`, `op`, `value`, `flag`, `is`, `count`, `rules`, `condition`, `then`, `weeks`, `months`, `drugs`, `responses`, `code`",
            ],
        ),
        (
            "washout with an unknown drug",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"washout\", drugs = [\"rituxan\"], months = 12 }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.drugs[0]: line 82: unknown variant `rituxan`, expected one of `glucocorticoid`, `methotrexate`, `mycophenolate`, `azathioprine`, `tacrolimus`, `rituximab`, `ivig`, `cyclophosphamide`",
            ],
        ),
        (
            "washout with both weeks and months",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"washout\", drugs = [\"ivig\"], weeks = 12, months = 3 }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.weeks: expected exactly one of `weeks` and `months` for a rule of kind washout, found both",
            ],
        ),
        (
            "washout with neither weeks nor months, and a drug twice",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"washout\", drugs = [\"ivig\", \"ivig\"] }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.drugs[1]: expected each drug once, found ivig again",
            ],
        ),
        (
            "prior response counting more drugs than listed",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"prior_response\", drugs = [\"methotrexate\"], responses = [\"failed\"], count = 2 }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.count: expected a count from 1 to the number of drugs (1), found 2",
            ],
        ),
        (
            "attested code in lower case",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"attested\", code = \"social_security\" }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.code: expected \"social_security\" is out of range; allowed: a code of 1 to 32 characters: a capital letter, then capitals, digits or _ (e.g. NEG_PREG_TEST), found `social_security`",
            ],
        ),
        (
            "duplicate arm code",
            &[("[[arms]]\ncode = \"PBO\"", "[[arms]]\ncode = \"DRUG\"")],
            &[
                "protocols/demo.toml: arms[1].code: expected a unique arm code (arms[0].code is already `DRUG`), found `DRUG`",
            ],
        ),
        (
            "randomised single-arm study",
            &[(PLACEBO_ARM, "")],
            &[
                "protocols/demo.toml: study.randomised: expected false for a study with a single arm, found true",
            ],
        ),
        (
            "HAQ-DI threshold finer than the score",
            &[(
                "op = \">=\", value = 5 }",
                "op = \">=\", value = 5 }\n[[eligibility]]\nid = \"IN02\"\ncategory = \"inclusion\"\ntext = \"HAQ\"\nrule = { kind = \"compare\", measure = \"haq_di\", op = \">\", value = \"0.2501\" }",
            )],
            &[
                "protocols/demo.toml: eligibility[1].rule.value: expected a haq_di threshold with at most 3 decimal place(s), found 0.2501",
            ],
        ),
        (
            "unknown conventions",
            &[(
                "mmt8_max = 150",
                "mmt8_max = 150\ncdasi_severity_cutoff = 15\nmmt_trace_grade = 11\nhaq_min_categories = 5\ncdasi_mcid = 3",
            )],
            &[
                "protocols/demo.toml: conventions.haq_min_categories: expected 6 (Stanford) or 7, found 5",
                "protocols/demo.toml: conventions.cdasi_mcid: expected 4 (UPenn) or 5 (Stanford), found 3",
                "protocols/demo.toml: conventions.cdasi_severity_cutoff: expected 14 (Stanford) or 19 (UPenn), found 15",
                "protocols/demo.toml: conventions.mmt_trace_grade: expected a Kendall grade from 0 to 10 for \"T\" (trace), or no value to reject trace, found 11",
            ],
        ),
        (
            "conventions scoring does not implement",
            &[(
                "mmt8_max = 150",
                "mmt8_max = 150\ndoi_percent_change = \"range_of_scale\"\ntis_percent_change = \"relative_to_baseline\"",
            )],
            &[
                "protocols/demo.toml: conventions.doi_percent_change: expected \"relative_to_baseline\" (the DOI formula scoring implements), found \"range_of_scale\"",
                "protocols/demo.toml: conventions.tis_percent_change: expected \"range_of_scale\" (the TIS formula scoring implements; the enzyme is always relative to baseline), found \"relative_to_baseline\"",
            ],
        ),
        (
            "TIS with Likert globals",
            &[
                (
                    "mmt8_max = 150",
                    "mmt8_max = 150\nglobal_scale = \"likert\"",
                ),
                ("outcome = \"doi\"", "outcome = \"tis_score\""),
            ],
            &[
                "protocols/demo.toml: endpoints[0].outcome: expected an outcome other than tis_score with conventions.global_scale = \"likert\" (the TIS has no Likert formula), found `tis_score`",
            ],
        ),
        (
            "visit in an epoch its arm never enters",
            &[
                (
                    "[[epochs]]\nid = \"TREATMENT\"",
                    "[[epochs]]\nid = \"FOLLOWUP\"\nname = \"FOLLOW-UP\"\ntype = \"follow_up\"\n\n[[epochs]]\nid = \"TREATMENT\"",
                ),
                (
                    "epoch = \"TREATMENT\"\ntarget_day = 168",
                    "epoch = \"FOLLOWUP\"\ntarget_day = 168",
                ),
            ],
            &[
                "protocols/demo.toml: encounters[2].epoch: expected an epoch of arm `DRUG` (one of SCREENING, TREATMENT), or `arms` leaving that arm out, found `FOLLOWUP`",
            ],
        ),
        (
            "empty lists",
            &[
                ("[protocol]\n", "arms = []\n\n[protocol]\n"),
                (DRUG_ARM, ""),
                (PLACEBO_ARM, ""),
            ],
            &["protocols/demo.toml: arms: expected at least one entry in [[arms]], found none"],
        ),
        (
            "rule keys by kind, nested",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"any_of\", rules = [{ kind = \"flag\", flag = \"muscle_active\" }, { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", count = 2 }] }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.rules[1].value: expected a `value` for a rule of kind compare, found none",
                "protocols/demo.toml: eligibility[0].rule.rules[1].count: expected no `count` in a rule of kind compare, found a value",
            ],
        ),
        (
            "unknown key in a nested rule",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"any_of\", rules = [{ kind = \"flag\", flag = \"muscle_active\", valeu = 1 }] }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.rules[0].valeu: line 82: unknown field `valeu`, expected one of `kind`, `measure`, `op`, `value`, `flag`, `is`, `count`, `rules`, `condition`, `then`, `weeks`, `months`, `drugs`, `responses`, `code`",
            ],
        ),
        (
            "washout with an unknown drug",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"washout\", drugs = [\"rituxan\"], months = 12 }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.drugs[0]: line 82: unknown variant `rituxan`, expected one of `glucocorticoid`, `methotrexate`, `mycophenolate`, `azathioprine`, `tacrolimus`, `rituximab`, `ivig`, `cyclophosphamide`",
            ],
        ),
        (
            "washout with both weeks and months",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"washout\", drugs = [\"ivig\"], weeks = 12, months = 3 }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.weeks: expected exactly one of `weeks` and `months` for a rule of kind washout, found both",
            ],
        ),
        (
            "washout with neither weeks nor months, and a drug twice",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"washout\", drugs = [\"ivig\", \"ivig\"] }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.drugs[1]: expected each drug once, found ivig again",
            ],
        ),
        (
            "prior response counting more drugs than listed",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"prior_response\", drugs = [\"methotrexate\"], responses = [\"failed\"], count = 2 }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.count: expected a count from 1 to the number of drugs (1), found 2",
            ],
        ),
        (
            "attested code in lower case",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"attested\", code = \"social_security\" }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.code: expected \"social_security\" is out of range; allowed: a code of 1 to 32 characters: a capital letter, then capitals, digits or _ (e.g. NEG_PREG_TEST), found `social_security`",
            ],
        ),
        (
            "unknown rule kind",
            &[(
                "kind = \"compare\", measure = \"cdasi_activity\"",
                "kind = \"compares\", measure = \"cdasi_activity\"",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.kind: line 82: unknown variant `compares`, expected one of `compare`, `flag`, `any_enzyme_above_uln`, `all_of`, `any_of`, `at_least`, `when`, `glucocorticoid_max_within`, `glucocorticoid_sustained`, `informed_consent`, `washout`, `prior_response`, `attested`",
            ],
        ),
        (
            "glucocorticoid history over more than ten years",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"glucocorticoid_max_within\", weeks = 521, op = \"<=\", value = 80 }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.weeks: expected a number of weeks from 1 to 520, found 521",
            ],
        ),
        (
            "glucocorticoid run without weeks",
            &[(
                "rule = { kind = \"compare\", measure = \"cdasi_activity\", op = \">=\", value = 5 }",
                "rule = { kind = \"glucocorticoid_sustained\", value = 20 }",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.weeks: expected a `weeks` for a rule of kind glucocorticoid_sustained, found none",
            ],
        ),
        (
            "classification probability above 100 %",
            &[(
                "measure = \"cdasi_activity\", op = \">=\", value = 5",
                "measure = \"eular_acr_probability_percent\", op = \">=\", value = 155",
            )],
            &[
                "protocols/demo.toml: eligibility[0].rule.value: expected a eular_acr_probability_percent threshold from 0 to 100 %, found 155",
            ],
        ),
        (
            "a coded trial summary value that is not a CDISC term",
            &[(
                "[conventions]",
                "[trial_summary]\nintervention_model = \"PARALLEL GROUP\"\n\n[conventions]",
            )],
            &[
                "protocols/demo.toml: trial_summary.intervention_model: expected a term of the INTMODEL codelist of CDISC CT 2025-09-26 (CROSS-OVER, FACTORIAL, PARALLEL, SEQUENTIAL, SINGLE GROUP), found `PARALLEL GROUP`",
            ],
        ),
        (
            "a registry that is not a DICTNAM term, and a country that is not alpha-3",
            &[(
                "[conventions]",
                "[trial_summary]\nother_ids = [{ registry = \"IRAS\", id = \"273307\" }]\ncountries = [\"UK\"]\n\n[conventions]",
            )],
            &[
                "protocols/demo.toml: trial_summary.other_ids[0].registry: expected a term of the DICTNAM codelist of CDISC CT 2025-09-26 (CDISC CT, ClinicalTrials.gov, COSTART, CTCAE, CTIS, D-U-N-S NUMBER, EudraCT, EUDRAVIGILANCE, GENC, ICD, ICD-O, ISO 21090, ISO 3166, jRCT, LOINC, MED-RT, MedDRA, MeSH, PubMed, SNOMED, UNII, WHO ATC CLASSIFICATION SYSTEM, WHOART, WHODD), found `IRAS`",
                "protocols/demo.toml: trial_summary.countries[0]: expected an ISO 3166-1 alpha-3 code (three capital letters, e.g. FRA), found `UK`",
            ],
        ),
        (
            "an intervention dose without its unit, on an unknown arm",
            &[(
                "[conventions]",
                "[[interventions]]\nsubstance = \"DRUG\"\nrole = \"investigational\"\ndose = 4\narms = [\"DRUGX\"]\n\n[conventions]",
            )],
            &[
                "protocols/demo.toml: interventions[0].dose_unit: expected a dose and its unit together, or neither, found a dose without a unit",
                "protocols/demo.toml: interventions[0].arms[0]: expected one of the arm ids DRUG, PBO, found `DRUGX`",
            ],
        ),
        (
            "a trial summary assumption naming a parameter the file does not set",
            &[(
                "[conventions]",
                "[trial_summary]\nassumptions = [\"SSTDTC\"]\n\n[conventions]",
            )],
            &[
                "protocols/demo.toml: trial_summary.assumptions[0]: expected a TS parameter the protocol file sets (TITLE, TPHASE, TBLIND, PLANSUB, ADDON, TRT, COMPTRT, DOSE, DOSU, DOSFRQ, ROUTE, DOSFRM, SPONSOR, REGID, FCNTRY, SEXPOP, HLTSUBJI, INTMODEL, INTTYPE, TCNTRL, TTYPE, TINDTP, INDIC, TDIGRP, PCLAS, CURTRT, RDIND, ADAPT, STOPRULE, SENDTC, AGEMIN, AGEMAX, LENGTH), found `SSTDTC`",
            ],
        ),
        (
            "unknown analyte",
            &[(
                "outcome = \"doi\"",
                "outcome = \"biomarker_fold_change\"\nanalyte = \"CXCL11\"",
            )],
            &[
                "protocols/demo.toml: endpoints[0].analyte: expected one of the lab analytes cxcl9, cxcl10, ifn_beta, ifn_gene_score, crp (any letter case), found `CXCL11`",
            ],
        ),
    ];
    let differences: Vec<String> = cases
        .iter()
        .filter_map(|(case, edits, expected)| check(case, edits, expected))
        .collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
