//! Define-XML 2.1 writer: the ODM 1.3.2 document (namespace `def` = `http://www.cdisc.org/ns/def/v2.1`)
//! that describes the datasets of a submission: standards, datasets (ItemGroupDef with def:Class and a
//! def:leaf pointing at the dataset file), variables (ItemDef with def:Origin), value-level metadata
//! (def:ValueListDef and def:WhereClauseDef, e.g. AVAL per PARAMCD), code lists, derivation methods
//! (MethodDef citing the algorithm id and its documentation path) and supplemental documents.
//!
//! Before writing, every reference is resolved (ItemRef to ItemDef, CodeListOID, MethodOID,
//! ValueListOID, WhereClauseOID, def:ItemOID of where clauses, def:StandardOID, leaf ids) and a dangling
//! one is refused, so a written document is internally consistent. Element order follows the Define-XML
//! 2.1.0 XML Schema (committed under `crates/cdisc/tests/schemas/define-xml-2.1/`, which the tests
//! validate against with xmllint). Written with quick-xml, which escapes text and attribute values.

use std::collections::BTreeSet;
use std::io::Write;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::dates::DateTime;
use crate::error::CdiscError;
use crate::model::{Column, DataType, Dataset, TargetDataType, Value};

const ODM_NS: &str = "http://www.cdisc.org/ns/odm/v1.3";
const DEF_NS: &str = "http://www.cdisc.org/ns/def/v2.1";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";
/// `def:DefineVersion` written.
pub const DEFINE_VERSION: &str = "2.1.0";

/// The whole Define-XML document.
#[derive(Debug, Clone)]
pub struct DefineDocument<'a> {
    pub file_oid: String,
    /// ODM `CreationDateTime`, written as UTC with a `Z`.
    pub created: DateTime,
    pub originator: String,
    pub source_system: String,
    pub source_system_version: String,
    pub study_oid: String,
    pub study_name: String,
    pub study_description: String,
    pub protocol_name: String,
    pub metadata_version_oid: String,
    pub metadata_version_name: String,
    pub metadata_version_description: Option<String>,
    pub standards: Vec<Standard>,
    pub datasets: Vec<DatasetDefinition<'a>>,
    pub value_lists: Vec<ValueList>,
    pub code_lists: Vec<CodeList>,
    pub methods: Vec<Method>,
    /// Supplemental documents (reviewer's guide, algorithm descriptions) that methods may cite.
    pub documents: Vec<Document>,
}

/// A `def:Standard`, e.g. ADaMIG 1.3 or the CDISC/NCI controlled terminology version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standard {
    pub oid: String,
    /// `ADaMIG`, `SDTMIG`, `CDISC/NCI`, ...
    pub name: String,
    /// `IG` or `CT`.
    pub standard_type: String,
    /// For CT: `ADaM`, `SDTM`, ...
    pub publishing_set: Option<String>,
    pub version: String,
    /// `Final`, `Draft`, ...
    pub status: String,
}

/// A dataset as Define-XML describes it: the data model plus where its file is and where each variable
/// comes from.
#[derive(Debug, Clone)]
pub struct DatasetDefinition<'a> {
    pub dataset: &'a Dataset,
    pub standard_oid: Option<String>,
    /// `Repeating`: more than one record per subject.
    pub repeating: bool,
    /// The dataset file relative to define.xml, e.g. `adsl.xpt`; the def:leaf's xlink:href.
    pub archive_file: String,
    /// One per column, matched by column name.
    pub variables: Vec<VariableDefinition>,
}

/// Define-XML facts about one column that the dataset model does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableDefinition {
    pub column: String,
    pub origin: Origin,
    pub mandatory: bool,
    pub code_list_oid: Option<String>,
    /// For columns whose metadata depends on another column (AVAL per PARAMCD).
    pub value_list_oid: Option<String>,
}

/// `def:Origin`. Derived values name the MethodDef that computes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Collected {
        source: CollectedSource,
    },
    Derived {
        method_oid: String,
    },
    Assigned,
    Protocol,
    /// Copied from another dataset's variable, e.g. `ADSL.AGE`.
    Predecessor {
        from: String,
    },
}

/// `def:Origin/@Source` of collected data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectedSource {
    Investigator,
    Subject,
    Vendor,
}

impl Origin {
    fn type_name(&self) -> &'static str {
        match self {
            Self::Collected { .. } => "Collected",
            Self::Derived { .. } => "Derived",
            Self::Assigned => "Assigned",
            Self::Protocol => "Protocol",
            Self::Predecessor { .. } => "Predecessor",
        }
    }

    fn source(&self) -> Option<&'static str> {
        match self {
            Self::Collected { source } => Some(match source {
                CollectedSource::Investigator => "Investigator",
                CollectedSource::Subject => "Subject",
                CollectedSource::Vendor => "Vendor",
            }),
            Self::Derived { .. } | Self::Assigned | Self::Protocol => Some("Sponsor"),
            Self::Predecessor { .. } => None,
        }
    }

    fn method_oid(&self) -> Option<&str> {
        match self {
            Self::Derived { method_oid } => Some(method_oid),
            _ => None,
        }
    }
}

/// `def:ValueListDef`: metadata of one variable that differs by the value of another (e.g. AVAL's type,
/// length and method per PARAMCD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueList {
    pub oid: String,
    pub items: Vec<ValueListItem>,
}

/// One where-clause-dependent definition of a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueListItem {
    /// OID of the value-level ItemDef written for it, e.g. `IT.ADEFF.AVAL.MMT8`.
    pub item_oid: String,
    /// The variable's name, e.g. `AVAL`.
    pub name: String,
    pub description: String,
    pub data_type: DataType,
    pub target_data_type: Option<TargetDataType>,
    pub length: Option<u32>,
    pub significant_digits: Option<u32>,
    pub display_format: Option<String>,
    pub origin: Origin,
    pub mandatory: bool,
    pub code_list_oid: Option<String>,
    pub where_clause: WhereClause,
}

/// `def:WhereClauseDef` with one `RangeCheck`: `<item> EQ <value>` or `<item> IN (<values>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhereClause {
    pub oid: String,
    /// The ItemDef OID tested, e.g. `IT.ADEFF.PARAMCD`.
    pub item_oid: String,
    pub values: Vec<String>,
}

/// `CodeList` with `CodeListItem`s (when any term has a decode) or `EnumeratedItem`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeList {
    pub oid: String,
    pub name: String,
    /// `text`, `integer` or `float` (Define-XML code list data types).
    pub data_type: CodeListType,
    pub terms: Vec<Term>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeListType {
    Text,
    Integer,
    Float,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub coded_value: String,
    pub decode: Option<String>,
}

/// `MethodDef`: how a derived variable is computed. The description cites the algorithm id and the
/// repository path that documents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    pub oid: String,
    pub name: String,
    pub kind: MethodKind,
    pub description: String,
    /// The algorithm's identifier in Myolog (as recorded with each derived result).
    pub algorithm_id: String,
    /// Where it is documented, e.g. `docs/algorithms.md#mmt8`.
    pub docs_path: String,
    /// A supplemental document (by leaf id) to link, if any.
    pub document_leaf_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    Computation,
    Imputation,
}

/// A supplemental document: a `def:leaf` under MetaDataVersion, listed in `def:SupplementalDoc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub leaf_id: String,
    pub href: String,
    pub title: String,
}

/// Writes `document` as Define-XML 2.1, after checking that every reference in it resolves.
pub fn write_define<W: Write>(
    out: &mut W,
    document: &DefineDocument<'_>,
) -> Result<(), CdiscError> {
    check_references(document)?;
    let mut xml = Xml::new();
    xml.write(document)?;
    out.write_all(&xml.finish())?;
    Ok(())
}

fn check_references(doc: &DefineDocument<'_>) -> Result<(), CdiscError> {
    let missing = |what: &str, oid: &str, at: &str| {
        CdiscError::Metadata(format!(
            "{at} refers to {what} {oid}, which the document does not define"
        ))
    };
    let mut item_oids = BTreeSet::new();
    let unique = |kind: &str, oid: &str, set: &mut BTreeSet<String>| {
        if oid.is_empty() {
            return Err(CdiscError::Metadata(format!("a {kind} has an empty OID")));
        }
        if !set.insert(oid.to_owned()) {
            return Err(CdiscError::Metadata(format!(
                "{kind} OID {oid} is defined twice"
            )));
        }
        Ok(())
    };
    let mut standards = BTreeSet::new();
    for standard in &doc.standards {
        unique("def:Standard", &standard.oid, &mut standards)?;
    }
    let mut code_lists = BTreeSet::new();
    for list in &doc.code_lists {
        unique("CodeList", &list.oid, &mut code_lists)?;
        let decoded = list.terms.iter().filter(|t| t.decode.is_some()).count();
        if decoded != 0 && decoded != list.terms.len() {
            return Err(CdiscError::Metadata(format!(
                "CodeList {} mixes decoded and undecoded terms",
                list.oid
            )));
        }
    }
    let mut leaves = BTreeSet::new();
    for document in &doc.documents {
        unique("def:leaf", &document.leaf_id, &mut leaves)?;
    }
    let mut methods = BTreeSet::new();
    for method in &doc.methods {
        unique("MethodDef", &method.oid, &mut methods)?;
        if let Some(leaf) = &method.document_leaf_id
            && !leaves.contains(leaf)
        {
            return Err(missing(
                "def:leaf",
                leaf,
                &format!("MethodDef {}", method.oid),
            ));
        }
    }
    let mut value_lists = BTreeSet::new();
    let mut where_clauses = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for definition in &doc.datasets {
        let dataset = definition.dataset;
        dataset.validate()?;
        unique("ItemGroupDef", &dataset.item_group_oid, &mut groups)?;
        unique("def:leaf", &leaf_id(dataset), &mut leaves)?;
        if let Some(standard) = &definition.standard_oid
            && !standards.contains(standard)
        {
            return Err(missing(
                "def:Standard",
                standard,
                &format!("ItemGroupDef {}", dataset.item_group_oid),
            ));
        }
        for column in &dataset.columns {
            unique("ItemDef", &column.item_oid, &mut item_oids)?;
        }
        for variable in &definition.variables {
            if !dataset.columns.iter().any(|c| c.name == variable.column) {
                return Err(CdiscError::column(
                    &dataset.name,
                    &variable.column,
                    "has a Define-XML definition but no column",
                ));
            }
        }
        for column in &dataset.columns {
            variable_of(definition, column)?;
        }
    }
    for list in &doc.value_lists {
        unique("def:ValueListDef", &list.oid, &mut value_lists)?;
        for item in &list.items {
            unique("ItemDef", &item.item_oid, &mut item_oids)?;
            unique(
                "def:WhereClauseDef",
                &item.where_clause.oid,
                &mut where_clauses,
            )?;
        }
    }
    let check_origin = |origin: &Origin, at: &str| match origin.method_oid() {
        Some(oid) if !methods.contains(oid) => Err(missing("MethodDef", oid, at)),
        _ => Ok(()),
    };
    let check_code_list = |oid: &Option<String>, at: &str| match oid {
        Some(oid) if !code_lists.contains(oid) => Err(missing("CodeList", oid, at)),
        _ => Ok(()),
    };
    for definition in &doc.datasets {
        for variable in &definition.variables {
            let at = format!("variable {}.{}", definition.dataset.name, variable.column);
            check_origin(&variable.origin, &at)?;
            check_code_list(&variable.code_list_oid, &at)?;
            if let Some(oid) = &variable.value_list_oid
                && !value_lists.contains(oid)
            {
                return Err(missing("def:ValueListDef", oid, &at));
            }
        }
    }
    for list in &doc.value_lists {
        for item in &list.items {
            let at = format!("value-level item {}", item.item_oid);
            check_origin(&item.origin, &at)?;
            check_code_list(&item.code_list_oid, &at)?;
            if !item_oids.contains(&item.where_clause.item_oid) {
                return Err(missing(
                    "ItemDef",
                    &item.where_clause.item_oid,
                    &format!("WhereClauseDef {}", item.where_clause.oid),
                ));
            }
            if item.where_clause.values.is_empty() {
                return Err(CdiscError::Metadata(format!(
                    "WhereClauseDef {} has no values",
                    item.where_clause.oid
                )));
            }
        }
    }
    Ok(())
}

fn variable_of<'d>(
    definition: &'d DatasetDefinition<'_>,
    column: &Column,
) -> Result<&'d VariableDefinition, CdiscError> {
    let mut matches = definition
        .variables
        .iter()
        .filter(|v| v.column == column.name);
    let first = matches.next().ok_or_else(|| {
        CdiscError::column(
            &definition.dataset.name,
            &column.name,
            "has no Define-XML variable definition",
        )
    })?;
    if matches.next().is_some() {
        return Err(CdiscError::column(
            &definition.dataset.name,
            &column.name,
            "has two Define-XML variable definitions",
        ));
    }
    Ok(first)
}

fn leaf_id(dataset: &Dataset) -> String {
    format!("LF.{}", dataset.name)
}

/// The Define-XML `DataType` of a column: ADaM numeric dates are integers (shown through their format).
fn define_data_type(data_type: DataType, target: Option<TargetDataType>) -> &'static str {
    match (data_type, target) {
        (DataType::Date | DataType::DateTime | DataType::Time, Some(TargetDataType::Integer)) => {
            "integer"
        }
        (DataType::String, _) => "text",
        (DataType::Integer, _) => "integer",
        (DataType::Decimal | DataType::Float, _) => "float",
        (DataType::Date, _) => "date",
        (DataType::DateTime, _) => "datetime",
        (DataType::Time, _) => "time",
        (DataType::Boolean, _) => "boolean",
    }
}

/// Facts of one ItemDef, whether variable-level or value-level.
struct ItemFacts<'a> {
    oid: &'a str,
    name: &'a str,
    description: &'a str,
    data_type: &'static str,
    length: Option<usize>,
    significant_digits: Option<u32>,
    display_format: Option<&'a str>,
    code_list_oid: Option<&'a str>,
    origin: &'a Origin,
    value_list_oid: Option<&'a str>,
}

struct Xml {
    writer: Writer<Vec<u8>>,
}

impl Xml {
    fn new() -> Self {
        Self {
            writer: Writer::new_with_indent(Vec::new(), b' ', 2),
        }
    }

    fn finish(self) -> Vec<u8> {
        let mut bytes = self.writer.into_inner();
        bytes.push(b'\n');
        bytes
    }

    fn start(&mut self, name: &str, attributes: &[(&str, &str)]) -> Result<(), CdiscError> {
        let element = BytesStart::new(name).with_attributes(attributes.iter().copied());
        self.writer.write_event(Event::Start(element))?;
        Ok(())
    }

    fn empty(&mut self, name: &str, attributes: &[(&str, &str)]) -> Result<(), CdiscError> {
        let element = BytesStart::new(name).with_attributes(attributes.iter().copied());
        self.writer.write_event(Event::Empty(element))?;
        Ok(())
    }

    fn end(&mut self, name: &str) -> Result<(), CdiscError> {
        self.writer.write_event(Event::End(BytesEnd::new(name)))?;
        Ok(())
    }

    /// `<name attrs>text</name>` on one line.
    fn text_element(
        &mut self,
        name: &str,
        attributes: &[(&str, &str)],
        text: &str,
    ) -> Result<(), CdiscError> {
        self.start(name, attributes)?;
        self.writer.write_event(Event::Text(BytesText::new(text)))?;
        self.end(name)
    }

    /// `<Description><TranslatedText xml:lang="en">text</TranslatedText></Description>`
    fn description(&mut self, text: &str) -> Result<(), CdiscError> {
        self.start("Description", &[])?;
        self.text_element("TranslatedText", &[("xml:lang", "en")], text)?;
        self.end("Description")
    }

    fn leaf(&mut self, id: &str, href: &str, title: &str) -> Result<(), CdiscError> {
        self.start("def:leaf", &[("ID", id), ("xlink:href", href)])?;
        self.text_element("def:title", &[], title)?;
        self.end("def:leaf")
    }

    fn write(&mut self, doc: &DefineDocument<'_>) -> Result<(), CdiscError> {
        self.writer
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let created = doc.created.iso_utc();
        self.start(
            "ODM",
            &[
                ("xmlns", ODM_NS),
                ("xmlns:xlink", XLINK_NS),
                ("xmlns:def", DEF_NS),
                ("ODMVersion", "1.3.2"),
                ("FileType", "Snapshot"),
                ("FileOID", &doc.file_oid),
                ("CreationDateTime", &created),
                ("Originator", &doc.originator),
                ("SourceSystem", &doc.source_system),
                ("SourceSystemVersion", &doc.source_system_version),
                ("def:Context", "Submission"),
            ],
        )?;
        self.start("Study", &[("OID", &doc.study_oid)])?;
        self.start("GlobalVariables", &[])?;
        self.text_element("StudyName", &[], &doc.study_name)?;
        self.text_element("StudyDescription", &[], &doc.study_description)?;
        self.text_element("ProtocolName", &[], &doc.protocol_name)?;
        self.end("GlobalVariables")?;
        let mut mdv = vec![
            ("OID", doc.metadata_version_oid.as_str()),
            ("Name", doc.metadata_version_name.as_str()),
        ];
        if let Some(description) = &doc.metadata_version_description {
            mdv.push(("Description", description));
        }
        mdv.push(("def:DefineVersion", DEFINE_VERSION));
        self.start("MetaDataVersion", &mdv)?;

        self.standards(doc)?;
        if !doc.documents.is_empty() {
            self.start("def:SupplementalDoc", &[])?;
            for document in &doc.documents {
                self.empty("def:DocumentRef", &[("leafID", &document.leaf_id)])?;
            }
            self.end("def:SupplementalDoc")?;
        }
        self.value_lists(doc)?;
        self.where_clauses(doc)?;
        for definition in &doc.datasets {
            self.item_group(definition)?;
        }
        for definition in &doc.datasets {
            for (index, column) in definition.dataset.columns.iter().enumerate() {
                self.variable_item_def(definition, index, column)?;
            }
        }
        for list in &doc.value_lists {
            for item in &list.items {
                self.item_def(&ItemFacts {
                    oid: &item.item_oid,
                    name: &item.name,
                    description: &item.description,
                    data_type: define_data_type(item.data_type, item.target_data_type),
                    length: item.length.map(|l| l as usize),
                    significant_digits: item.significant_digits,
                    display_format: item.display_format.as_deref(),
                    code_list_oid: item.code_list_oid.as_deref(),
                    origin: &item.origin,
                    value_list_oid: None,
                })?;
            }
        }
        for list in &doc.code_lists {
            self.code_list(list)?;
        }
        for method in &doc.methods {
            self.method(method)?;
        }
        for document in &doc.documents {
            self.leaf(&document.leaf_id, &document.href, &document.title)?;
        }
        self.end("MetaDataVersion")?;
        self.end("Study")?;
        self.end("ODM")
    }

    fn standards(&mut self, doc: &DefineDocument<'_>) -> Result<(), CdiscError> {
        if doc.standards.is_empty() {
            return Ok(());
        }
        self.start("def:Standards", &[])?;
        for standard in &doc.standards {
            let mut attributes = vec![
                ("OID", standard.oid.as_str()),
                ("Name", standard.name.as_str()),
                ("Type", standard.standard_type.as_str()),
            ];
            if let Some(set) = &standard.publishing_set {
                attributes.push(("PublishingSet", set));
            }
            attributes.push(("Version", &standard.version));
            attributes.push(("Status", &standard.status));
            self.empty("def:Standard", &attributes)?;
        }
        self.end("def:Standards")
    }

    fn value_lists(&mut self, doc: &DefineDocument<'_>) -> Result<(), CdiscError> {
        for list in &doc.value_lists {
            self.start("def:ValueListDef", &[("OID", &list.oid)])?;
            for (index, item) in list.items.iter().enumerate() {
                let order = (index + 1).to_string();
                let mut attributes = vec![
                    ("ItemOID", item.item_oid.as_str()),
                    ("OrderNumber", order.as_str()),
                    ("Mandatory", yes_no(item.mandatory)),
                ];
                if let Some(method) = item.origin.method_oid() {
                    attributes.push(("MethodOID", method));
                }
                self.start("ItemRef", &attributes)?;
                self.empty(
                    "def:WhereClauseRef",
                    &[("WhereClauseOID", &item.where_clause.oid)],
                )?;
                self.end("ItemRef")?;
            }
            self.end("def:ValueListDef")?;
        }
        Ok(())
    }

    fn where_clauses(&mut self, doc: &DefineDocument<'_>) -> Result<(), CdiscError> {
        for item in doc.value_lists.iter().flat_map(|list| &list.items) {
            let clause = &item.where_clause;
            self.start("def:WhereClauseDef", &[("OID", &clause.oid)])?;
            let comparator = if clause.values.len() == 1 { "EQ" } else { "IN" };
            self.start(
                "RangeCheck",
                &[
                    ("Comparator", comparator),
                    ("SoftHard", "Soft"),
                    ("def:ItemOID", &clause.item_oid),
                ],
            )?;
            for value in &clause.values {
                self.text_element("CheckValue", &[], value)?;
            }
            self.end("RangeCheck")?;
            self.end("def:WhereClauseDef")?;
        }
        Ok(())
    }

    fn item_group(&mut self, definition: &DatasetDefinition<'_>) -> Result<(), CdiscError> {
        let dataset = definition.dataset;
        let leaf = leaf_id(dataset);
        let mut attributes = vec![
            ("OID", dataset.item_group_oid.as_str()),
            ("Name", dataset.name.as_str()),
            ("SASDatasetName", dataset.name.as_str()),
            ("Repeating", yes_no(definition.repeating)),
            ("IsReferenceData", yes_no(dataset.is_reference_data)),
            ("Purpose", dataset.purpose.as_str()),
            ("def:Structure", dataset.structure.as_str()),
        ];
        if let Some(standard) = &definition.standard_oid {
            attributes.push(("def:StandardOID", standard));
        }
        attributes.push(("def:ArchiveLocationID", &leaf));
        self.start("ItemGroupDef", &attributes)?;
        self.description(&dataset.label)?;
        for (index, column) in dataset.columns.iter().enumerate() {
            let variable = variable_of(definition, column)?;
            let order = (index + 1).to_string();
            let key = column.key_sequence.map(|k| k.to_string());
            let mut attributes = vec![
                ("ItemOID", column.item_oid.as_str()),
                ("OrderNumber", order.as_str()),
                ("Mandatory", yes_no(variable.mandatory)),
            ];
            if let Some(key) = &key {
                attributes.push(("KeySequence", key));
            }
            if let Some(method) = variable.origin.method_oid() {
                attributes.push(("MethodOID", method));
            }
            self.empty("ItemRef", &attributes)?;
        }
        self.empty("def:Class", &[("Name", &dataset.class)])?;
        self.leaf(&leaf, &definition.archive_file, &definition.archive_file)?;
        self.end("ItemGroupDef")
    }

    fn variable_item_def(
        &mut self,
        definition: &DatasetDefinition<'_>,
        index: usize,
        column: &Column,
    ) -> Result<(), CdiscError> {
        let dataset = definition.dataset;
        let variable = variable_of(definition, column)?;
        let data_type = define_data_type(column.data_type, column.target_data_type);
        let length = match data_type {
            "text" => Some(dataset.character_length(index)),
            "integer" | "float" => Some(column.length.map_or(8, |l| l as usize)),
            _ => column.length.map(|l| l as usize),
        };
        let significant_digits = (data_type == "float").then(|| max_scale(dataset, index));
        self.item_def(&ItemFacts {
            oid: &column.item_oid,
            name: &column.name,
            description: &column.label,
            data_type,
            length,
            significant_digits,
            display_format: column.display_format.as_deref(),
            code_list_oid: variable.code_list_oid.as_deref(),
            origin: &variable.origin,
            value_list_oid: variable.value_list_oid.as_deref(),
        })
    }

    fn item_def(&mut self, item: &ItemFacts<'_>) -> Result<(), CdiscError> {
        let length = item.length.map(|l| l.to_string());
        let digits = item.significant_digits.map(|d| d.to_string());
        let mut attributes = vec![
            ("OID", item.oid),
            ("Name", item.name),
            ("DataType", item.data_type),
        ];
        if let Some(length) = &length {
            attributes.push(("Length", length));
        }
        if let Some(digits) = &digits {
            attributes.push(("SignificantDigits", digits));
        }
        attributes.push(("SASFieldName", item.name));
        if let Some(format) = item.display_format {
            attributes.push(("def:DisplayFormat", format));
        }
        self.start("ItemDef", &attributes)?;
        self.description(item.description)?;
        if let Some(code_list) = item.code_list_oid {
            self.empty("CodeListRef", &[("CodeListOID", code_list)])?;
        }
        let origin_type = item.origin.type_name();
        let mut origin = vec![("Type", origin_type)];
        if let Some(source) = item.origin.source() {
            origin.push(("Source", source));
        }
        match &item.origin {
            Origin::Predecessor { from } => {
                self.start("def:Origin", &origin)?;
                self.description(from)?;
                self.end("def:Origin")?;
            }
            _ => self.empty("def:Origin", &origin)?,
        }
        if let Some(list) = item.value_list_oid {
            self.empty("def:ValueListRef", &[("ValueListOID", list)])?;
        }
        self.end("ItemDef")
    }

    fn code_list(&mut self, list: &CodeList) -> Result<(), CdiscError> {
        let data_type = match list.data_type {
            CodeListType::Text => "text",
            CodeListType::Integer => "integer",
            CodeListType::Float => "float",
        };
        self.start(
            "CodeList",
            &[
                ("OID", &list.oid),
                ("Name", &list.name),
                ("DataType", data_type),
            ],
        )?;
        for (index, term) in list.terms.iter().enumerate() {
            let order = (index + 1).to_string();
            let attributes = [
                ("CodedValue", term.coded_value.as_str()),
                ("OrderNumber", order.as_str()),
            ];
            match &term.decode {
                Some(decode) => {
                    self.start("CodeListItem", &attributes)?;
                    self.start("Decode", &[])?;
                    self.text_element("TranslatedText", &[("xml:lang", "en")], decode)?;
                    self.end("Decode")?;
                    self.end("CodeListItem")?;
                }
                None => self.empty("EnumeratedItem", &attributes)?,
            }
        }
        self.end("CodeList")
    }

    fn method(&mut self, method: &Method) -> Result<(), CdiscError> {
        let kind = match method.kind {
            MethodKind::Computation => "Computation",
            MethodKind::Imputation => "Imputation",
        };
        self.start(
            "MethodDef",
            &[("OID", &method.oid), ("Name", &method.name), ("Type", kind)],
        )?;
        self.description(&format!(
            "{} Algorithm {}; documented in {}.",
            method.description.trim_end(),
            method.algorithm_id,
            method.docs_path
        ))?;
        if let Some(leaf) = &method.document_leaf_id {
            self.empty("def:DocumentRef", &[("leafID", leaf)])?;
        }
        self.end("MethodDef")
    }
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "Yes" } else { "No" }
}

/// The most decimal places among a column's values (Define-XML `SignificantDigits` of a float).
fn max_scale(dataset: &Dataset, index: usize) -> u32 {
    dataset
        .rows
        .iter()
        .map(|row| match &row[index] {
            Value::Decimal(d) => d.normalize().scale(),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}
