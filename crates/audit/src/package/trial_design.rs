//! The SDTM trial design datasets TA, TE, TV, TI and TS of the protocol version in force, exactly as
//! `myolog study export --tdm` derives them (`myolog_domain::protocol::tdm`), laid out as datasets for
//! the package's formats. They describe the protocol, not subjects, so they are reference data
//! (Define-XML `IsReferenceData="Yes"`). A study registered without a protocol has none.

use myolog_cdisc::{DataType, Dataset, Purpose, Value};

use super::{Context, PackageError, column};

/// The five datasets, or none without a protocol.
pub fn datasets(context: &Context<'_>) -> Result<Vec<Dataset>, PackageError> {
    let Some(history) = &context.study.protocol else {
        return Ok(Vec::new());
    };
    let tdm = history.current().trial_design();
    let study = Value::Text(tdm.study_id.clone());
    let text = |t: &str| Value::Text(t.to_string());
    let domain = |name: &str| Value::Text(name.to_string());

    let ta_rows = tdm
        .ta
        .iter()
        .map(|row| {
            vec![
                study.clone(),
                domain("TA"),
                text(&row.armcd),
                text(&row.arm),
                Value::Integer(i64::from(row.taetord)),
                text(&row.etcd),
                text(&row.element),
                text(&row.tabranch),
                text(&row.tatrans),
                text(&row.epoch),
            ]
        })
        .collect();
    let te_rows = tdm
        .te
        .iter()
        .map(|row| {
            vec![
                study.clone(),
                domain("TE"),
                text(&row.etcd),
                text(&row.element),
                text(&row.testrl),
                text(&row.teenrl),
                text(&row.tedur),
            ]
        })
        .collect();
    let tv_rows = tdm
        .tv
        .iter()
        .map(|row| {
            vec![
                study.clone(),
                domain("TV"),
                Value::Integer(i64::from(row.visitnum)),
                text(&row.visit),
                Value::Integer(i64::from(row.visitdy)),
                text(&row.armcd),
                text(&row.arm),
                text(&row.tvstrl),
                text(&row.tvenrl),
            ]
        })
        .collect();
    let ti_rows = tdm
        .ti
        .iter()
        .map(|row| {
            vec![
                study.clone(),
                domain("TI"),
                text(&row.ietestcd),
                text(&row.ietest),
                text(&row.iecat),
                text(&row.tirl),
                text(&row.tivers),
            ]
        })
        .collect();
    let ts_rows = tdm
        .ts
        .iter()
        .map(|row| {
            vec![
                study.clone(),
                domain("TS"),
                Value::Integer(i64::from(row.tsseq)),
                text(&row.tsparmcd),
                text(&row.tsparm),
                text(&row.tsval),
            ]
        })
        .collect();

    let head = |name: &str| {
        vec![
            column(name, "STUDYID", "Study Identifier", DataType::String).with_key_sequence(1),
            column(name, "DOMAIN", "Domain Abbreviation", DataType::String).with_length(2),
        ]
    };
    let with = |name: &str, rest: Vec<(&str, &str, DataType)>| {
        let mut columns = head(name);
        columns.extend(
            rest.into_iter()
                .map(|(n, label, data_type)| column(name, n, label, data_type)),
        );
        columns
    };
    let dataset = |name: &str, label: &str, columns, rows| Dataset {
        name: name.into(),
        label: label.into(),
        item_group_oid: format!("IG.{name}"),
        class: "TRIAL DESIGN".into(),
        structure: match name {
            "TA" => "One record per planned Element per Arm",
            "TE" => "One record per planned Element",
            "TV" => "One record per planned Visit per Arm",
            "TI" => "One record per I/E criterion",
            _ => "One record per trial summary parameter value",
        }
        .into(),
        purpose: Purpose::Tabulation,
        is_reference_data: true,
        columns,
        rows,
    };
    Ok(vec![
        dataset(
            "TA",
            "Trial Arms",
            with(
                "TA",
                vec![
                    ("ARMCD", "Planned Arm Code", DataType::String),
                    ("ARM", "Description of Planned Arm", DataType::String),
                    (
                        "TAETORD",
                        "Planned Order of Element within Arm",
                        DataType::Integer,
                    ),
                    ("ETCD", "Element Code", DataType::String),
                    ("ELEMENT", "Description of Element", DataType::String),
                    ("TABRANCH", "Branch", DataType::String),
                    ("TATRANS", "Transition Rule", DataType::String),
                    ("EPOCH", "Epoch", DataType::String),
                ],
            ),
            ta_rows,
        ),
        dataset(
            "TE",
            "Trial Elements",
            with(
                "TE",
                vec![
                    ("ETCD", "Element Code", DataType::String),
                    ("ELEMENT", "Description of Element", DataType::String),
                    ("TESTRL", "Rule for Start of Element", DataType::String),
                    ("TEENRL", "Rule for End of Element", DataType::String),
                    ("TEDUR", "Planned Duration of Element", DataType::String),
                ],
            ),
            te_rows,
        ),
        dataset(
            "TV",
            "Trial Visits",
            with(
                "TV",
                vec![
                    ("VISITNUM", "Visit Number", DataType::Integer),
                    ("VISIT", "Visit Name", DataType::String),
                    ("VISITDY", "Planned Study Day of Visit", DataType::Integer),
                    ("ARMCD", "Planned Arm Code", DataType::String),
                    ("ARM", "Description of Planned Arm", DataType::String),
                    ("TVSTRL", "Visit Start Rule", DataType::String),
                    ("TVENRL", "Visit End Rule", DataType::String),
                ],
            ),
            tv_rows,
        ),
        dataset(
            "TI",
            "Trial Inclusion/Exclusion Criteria",
            with(
                "TI",
                vec![
                    (
                        "IETESTCD",
                        "Incl/Excl Criterion Short Name",
                        DataType::String,
                    ),
                    ("IETEST", "Inclusion/Exclusion Criterion", DataType::String),
                    ("IECAT", "Inclusion/Exclusion Category", DataType::String),
                    (
                        "TIRL",
                        "Inclusion/Exclusion Criterion Rule",
                        DataType::String,
                    ),
                    ("TIVERS", "Protocol Criteria Versions", DataType::String),
                ],
            ),
            ti_rows,
        ),
        dataset(
            "TS",
            "Trial Summary",
            with(
                "TS",
                vec![
                    ("TSSEQ", "Sequence Number", DataType::Integer),
                    (
                        "TSPARMCD",
                        "Trial Summary Parameter Short Name",
                        DataType::String,
                    ),
                    ("TSPARM", "Trial Summary Parameter", DataType::String),
                    ("TSVAL", "Parameter Value", DataType::String),
                ],
            ),
            ts_rows,
        ),
    ])
}
