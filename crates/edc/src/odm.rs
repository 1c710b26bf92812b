//! A streaming reader of CDISC ODM 1.3.x ClinicalData (1.3.1 and 1.3.2 share one namespace URI) on
//! quick-xml's namespace-aware pull parser: one flat [`OdmRow`] per `ItemData` (or typed
//! `ItemDataString`, `ItemDataInteger`, ...), never a document tree, so a gigabyte export is read in
//! the memory of one element at a time.
//!
//! Elements are recognised by namespace URI, not by prefix. Vendor extensions (`OpenClinica:*`,
//! `redcap:*`, `mdsol:*`) are skipped with their whole subtree, except OpenClinica 3's item audit log
//! (`OpenClinica:AuditLogs` inside an `ItemData`, in an extract made with `includeAudits=y`), whose
//! entry that set the item's value becomes the row's audit record (user, time, reason for change).
//! Three vendor attributes are read because they carry facts ODM has no element for: a form's status
//! (`OpenClinica:Status`), REDCap's data access group and Rave's human subject id
//! (`mdsol:SubjectName`) on `SubjectData`. `TransactionType` and `AuditRecord` are inherited: a row carries the
//! nearest ancestor's. The reader never reads a DTD or an external entity: an entity reference other
//! than the five XML ones and character references is an error, whatever a DOCTYPE declares.

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use smol_str::SmolStr;
use std::fmt;
use std::io::BufRead;

/// The namespace URI of ODM 1.3.0, 1.3.1 and 1.3.2.
pub const ODM_NAMESPACE: &str = "http://www.cdisc.org/ns/odm/v1.3";

/// The start of OpenClinica 3's extension namespace URIs (`.../odm_ext_v130/v3.1`, `.../v3.1` ...).
pub const OPENCLINICA_NAMESPACE_PREFIX: &str = "http://www.openclinica.org/ns/odm_ext_v1";

/// Longest text value kept (typed item values, reasons for change): larger text is a broken or hostile
/// file, and capping it keeps memory flat whatever arrives.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// `ODM/@FileType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// The current state of the data: every value as it is now.
    Snapshot,
    /// Changes: each element says whether it inserts, updates or removes.
    Transactional,
}

impl FileType {
    pub const fn name(self) -> &'static str {
        match self {
            FileType::Snapshot => "Snapshot",
            FileType::Transactional => "Transactional",
        }
    }
}

/// `@TransactionType` of a clinical data element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionType {
    Insert,
    Update,
    Remove,
    Upsert,
    /// Sent only to identify where the changes below it belong; never applied.
    Context,
}

impl TransactionType {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Insert" => Some(TransactionType::Insert),
            "Update" => Some(TransactionType::Update),
            "Remove" => Some(TransactionType::Remove),
            "Upsert" => Some(TransactionType::Upsert),
            "Context" => Some(TransactionType::Context),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            TransactionType::Insert => "Insert",
            TransactionType::Update => "Update",
            TransactionType::Remove => "Remove",
            TransactionType::Upsert => "Upsert",
            TransactionType::Context => "Context",
        }
    }
}

/// An `AuditRecord`: who changed the data, where, when (as written, with its offset if the source gave
/// one) and why.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct AuditRecord {
    /// `AuditRecord/@ID`, the source's own id of the audit entry when it gives one.
    pub id: Option<SmolStr>,
    pub user_oid: Option<SmolStr>,
    pub location_oid: Option<SmolStr>,
    pub date_time_stamp: Option<String>,
    pub reason_for_change: Option<String>,
    pub source_id: Option<String>,
}

impl AuditRecord {
    /// The source's identity of this audit entry: its `@ID`, else its `SourceID`.
    pub fn audit_id(&self) -> Option<&str> {
        self.id
            .as_deref()
            .or(self.source_id.as_deref())
            .filter(|id| !id.is_empty())
    }
}

/// An item's value or why it has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ItemValue {
    Value(String),
    /// `Value=""` or an empty typed element: the field was blanked.
    Empty,
    /// `IsNull="Yes"`.
    IsNull,
    /// No value at all (a `Remove`, or an `ItemData` carrying only an audit record).
    Absent,
}

impl ItemValue {
    /// The value text, when there is one.
    pub fn text(&self) -> Option<&str> {
        match self {
            ItemValue::Value(text) => Some(text),
            _ => None,
        }
    }
}

/// An OID with the repeat key that tells its occurrences apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Keyed {
    pub oid: SmolStr,
    pub repeat_key: Option<SmolStr>,
}

/// Where a value sits in the ODM hierarchy; absent levels are simply not there (REDCap classic projects
/// put `FormData` directly under `SubjectData`). Its `Display` is used in every error and discrepancy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct KeyPath {
    pub subject_key: Option<SmolStr>,
    pub study_event: Option<Keyed>,
    pub form: Option<Keyed>,
    pub item_group: Option<Keyed>,
    pub item_oid: Option<SmolStr>,
}

/// Writes an attribute value, quoted when it contains a character of the path syntax (`SCREEN[1]`).
fn write_key_value(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    if value.is_empty() || value.contains(['[', ']', ',', '=', '/', '"', '\\']) {
        f.write_str("\"")?;
        for c in value.chars() {
            if matches!(c, '"' | '\\') {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")
    } else {
        f.write_str(value)
    }
}

fn write_keyed(
    f: &mut fmt::Formatter<'_>,
    element: &str,
    attr: &str,
    keyed: &Keyed,
) -> fmt::Result {
    write!(f, "{element}[{attr}=")?;
    write_key_value(f, &keyed.oid)?;
    if let Some(repeat_key) = &keyed.repeat_key {
        f.write_str(",RepeatKey=")?;
        write_key_value(f, repeat_key)?;
    }
    f.write_str("]")
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        let mut separator = |f: &mut fmt::Formatter<'_>| {
            let first = !wrote;
            wrote = true;
            if first { Ok(()) } else { f.write_str("/") }
        };
        if let Some(subject_key) = &self.subject_key {
            separator(f)?;
            f.write_str("SubjectData[SubjectKey=")?;
            write_key_value(f, subject_key)?;
            f.write_str("]")?;
        }
        if let Some(event) = &self.study_event {
            separator(f)?;
            write_keyed(f, "StudyEventData", "StudyEventOID", event)?;
        }
        if let Some(form) = &self.form {
            separator(f)?;
            write_keyed(f, "FormData", "FormOID", form)?;
        }
        if let Some(group) = &self.item_group {
            separator(f)?;
            write_keyed(f, "ItemGroupData", "ItemGroupOID", group)?;
        }
        if let Some(item_oid) = &self.item_oid {
            separator(f)?;
            f.write_str("ItemData[ItemOID=")?;
            write_key_value(f, item_oid)?;
            f.write_str("]")?;
        }
        if !wrote {
            f.write_str("ODM")?;
        }
        Ok(())
    }
}

/// One value of the export, flattened: everything needed to map it without looking at another row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OdmRow {
    pub file_type: FileType,
    pub study_oid: SmolStr,
    pub metadata_version_oid: Option<SmolStr>,
    /// `SiteRef/@LocationOID`, else REDCap's data access group.
    pub site: Option<SmolStr>,
    /// Rave's `mdsol:SubjectName` (the human subject id beside a UUID `SubjectKey`).
    pub subject_name: Option<SmolStr>,
    /// The value's place. `item_oid` is `None` only on a row that stands for a whole removed
    /// container (`TransactionType="Remove"` on a `FormData`, say, with no items under it).
    pub key: KeyPath,
    pub value: ItemValue,
    /// `MeasurementUnitRef/@MeasurementUnitOID` (or a unit text a JSON source gives).
    pub unit: Option<SmolStr>,
    /// The nearest `TransactionType` of the item or its ancestors.
    pub transaction: Option<TransactionType>,
    /// The nearest `AuditRecord` of the item or its ancestors.
    pub audit: Option<AuditRecord>,
    /// A form status the source states on the form (`OpenClinica:Status`); REDCap states it as an
    /// item (`<form>_complete`) instead.
    pub form_status: Option<SmolStr>,
    /// Byte offset of the row's end in the input.
    pub position: u64,
    /// Ordinal of the `SubjectData` element (from 1): a Transactional file applies one at a time.
    pub subject_block: u64,
}

/// What went wrong while reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OdmErrorKind {
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("not a CDISC ODM 1.3 document: {0}")]
    NotOdm(String),
    #[error("{element} has no {attribute} attribute")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    #[error("{element}/@{attribute} is {value:?}; allowed: {allowed}")]
    InvalidAttribute {
        element: &'static str,
        attribute: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error(
        "entity reference &{0}; is not resolved: DTDs and external entities are never read; \
         only the five XML entities and character references are accepted"
    )]
    UnresolvedEntity(String),
    #[error("the file ends inside an open {0} element")]
    UnexpectedEnd(String),
    #[error("a text value is longer than {MAX_TEXT_BYTES} bytes")]
    TextTooLong,
}

/// A reading error: where (byte offset and the ODM key path open at that point) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} (byte {position}): {kind}")]
pub struct OdmError {
    pub position: u64,
    /// Boxed: errors are rare and the happy path's `Result`s stay small.
    pub path: Box<KeyPath>,
    pub kind: OdmErrorKind,
}

/// The file's header attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OdmHeader {
    pub file_type: FileType,
    pub file_oid: Option<SmolStr>,
    pub odm_version: Option<SmolStr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuditText {
    DateTimeStamp,
    ReasonForChange,
    SourceId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Odm,
    ClinicalData,
    SubjectData,
    StudyEventData,
    FormData,
    ItemGroupData,
    ItemData {
        typed: bool,
    },
    AuditRecord,
    AuditText(AuditText),
    /// `OpenClinica:AuditLogs` of an item: its `OpenClinica:AuditLog` entries are read.
    OpenClinicaAuditLogs,
    /// An element read for its attributes only (SiteRef, UserRef, MeasurementUnitRef, ...).
    Leaf,
}

#[derive(Debug)]
struct Frame {
    kind: FrameKind,
    transaction: Option<TransactionType>,
    audit: Option<AuditRecord>,
    /// Rows emitted before this frame opened: a removed container that emitted none gets a row.
    rows_before: u64,
}

#[derive(Debug, Default)]
struct ItemInProgress {
    value: Option<ItemValue>,
    unit: Option<SmolStr>,
}

/// Where an element sits: the ODM namespace (or none, as some exports omit it), or a vendor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementNamespace {
    Odm,
    OpenClinica,
    Other,
}

/// The streaming reader: an iterator of rows. After the first error it yields nothing more.
#[derive(Debug)]
pub struct OdmReader<R: BufRead> {
    reader: NsReader<R>,
    buf: Vec<u8>,
    header: Option<OdmHeader>,
    stack: Vec<Frame>,
    /// Depth inside a skipped subtree (vendor extension or an ODM element carrying no data we read).
    skip_depth: usize,
    path: KeyPath,
    study_oid: Option<SmolStr>,
    metadata_version_oid: Option<SmolStr>,
    site: Option<SmolStr>,
    /// Rave's `mdsol:SubjectName` of the current subject.
    subject_name: Option<SmolStr>,
    form_status: Option<SmolStr>,
    item: ItemInProgress,
    audit: Option<AuditRecord>,
    /// Text of a typed item value.
    text: String,
    /// Text of an audit record's child, kept apart so an audit inside a typed item leaves its value be.
    audit_text: String,
    rows: u64,
    subject_blocks: u64,
    finished: bool,
}

impl<R: BufRead> OdmReader<R> {
    /// Reads from any buffered source; the encoding comes from the BOM or the XML declaration
    /// (UTF-8 with or without BOM, ISO-8859-1, windows-1252, ...).
    pub fn new(source: R) -> Self {
        let mut reader = NsReader::from_reader(source);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        Self {
            reader,
            buf: Vec::new(),
            header: None,
            stack: Vec::new(),
            skip_depth: 0,
            path: KeyPath::default(),
            study_oid: None,
            metadata_version_oid: None,
            site: None,
            subject_name: None,
            form_status: None,
            item: ItemInProgress::default(),
            audit: None,
            text: String::new(),
            audit_text: String::new(),
            rows: 0,
            subject_blocks: 0,
            finished: false,
        }
    }

    /// The `ODM` element's attributes, once the reader has passed it (after the first row or error).
    pub fn header(&self) -> Option<&OdmHeader> {
        self.header.as_ref()
    }

    fn error(&self, kind: OdmErrorKind) -> OdmError {
        OdmError {
            position: self.reader.buffer_position(),
            path: Box::new(self.path.clone()),
            kind,
        }
    }

    fn xml_error(&self, error: impl fmt::Display) -> OdmError {
        OdmError {
            position: self.reader.error_position(),
            path: Box::new(self.path.clone()),
            kind: OdmErrorKind::Xml(error.to_string()),
        }
    }

    fn classify(resolved: &ResolveResult<'_>) -> ElementNamespace {
        match resolved {
            ResolveResult::Bound(Namespace(uri)) if *uri == ODM_NAMESPACE.as_bytes() => {
                ElementNamespace::Odm
            }
            ResolveResult::Unbound => ElementNamespace::Odm,
            ResolveResult::Bound(Namespace(uri))
                if uri.starts_with(OPENCLINICA_NAMESPACE_PREFIX.as_bytes()) =>
            {
                ElementNamespace::OpenClinica
            }
            _ => ElementNamespace::Other,
        }
    }

    /// The ODM (unprefixed) attribute `name`, decoded and unescaped.
    fn attribute(&self, start: &BytesStart<'_>, name: &str) -> Result<Option<String>, OdmError> {
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|error| self.xml_error(error))?;
            if attribute.key.prefix().is_none()
                && attribute.key.local_name().as_ref() == name.as_bytes()
            {
                let value = attribute
                    .decode_and_unescape_value(self.reader.decoder())
                    .map_err(|error| self.entity_or_xml_error(error))?;
                return Ok(Some(value.into_owned()));
            }
        }
        Ok(None)
    }

    /// A vendor-namespace attribute with the local name `name` (whatever its prefix).
    fn vendor_attribute(
        &self,
        start: &BytesStart<'_>,
        name: &str,
    ) -> Result<Option<String>, OdmError> {
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|error| self.xml_error(error))?;
            if attribute.key.prefix().is_none() {
                continue;
            }
            let (resolved, local) = self.reader.resolve_attribute(attribute.key);
            if local.as_ref() == name.as_bytes()
                && Self::classify(&resolved) != ElementNamespace::Odm
                && !matches!(resolved, ResolveResult::Unknown(_))
            {
                let value = attribute
                    .decode_and_unescape_value(self.reader.decoder())
                    .map_err(|error| self.entity_or_xml_error(error))?;
                return Ok(Some(value.into_owned()));
            }
        }
        Ok(None)
    }

    fn entity_or_xml_error(&self, error: quick_xml::Error) -> OdmError {
        if let quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
            _,
            name,
        )) = &error
        {
            return self.error(OdmErrorKind::UnresolvedEntity(name.clone()));
        }
        self.xml_error(error)
    }

    fn required(
        &self,
        start: &BytesStart<'_>,
        element: &'static str,
        attribute: &'static str,
    ) -> Result<String, OdmError> {
        self.attribute(start, attribute)?
            .ok_or_else(|| self.error(OdmErrorKind::MissingAttribute { element, attribute }))
    }

    fn transaction(
        &self,
        start: &BytesStart<'_>,
        element: &'static str,
    ) -> Result<Option<TransactionType>, OdmError> {
        match self.attribute(start, "TransactionType")? {
            None => Ok(None),
            Some(text) => TransactionType::parse(&text).map(Some).ok_or_else(|| {
                self.error(OdmErrorKind::InvalidAttribute {
                    element,
                    attribute: "TransactionType",
                    value: text,
                    allowed: "Insert, Update, Remove, Upsert or Context",
                })
            }),
        }
    }

    fn keyed(
        &self,
        start: &BytesStart<'_>,
        element: &'static str,
        oid: &'static str,
        repeat_key: &'static str,
    ) -> Result<Keyed, OdmError> {
        Ok(Keyed {
            oid: SmolStr::new(self.required(start, element, oid)?),
            repeat_key: self.attribute(start, repeat_key)?.map(SmolStr::new),
        })
    }

    fn push(&mut self, kind: FrameKind, transaction: Option<TransactionType>) {
        self.stack.push(Frame {
            kind,
            transaction,
            audit: None,
            rows_before: self.rows,
        });
    }

    /// Handles a start tag; `Ok(false)` means the element (and its subtree) is skipped.
    fn start(
        &mut self,
        namespace: ElementNamespace,
        start: &BytesStart<'_>,
    ) -> Result<bool, OdmError> {
        let local = start.local_name();
        let name = local.as_ref();
        let parent = self.stack.last().map(|frame| frame.kind);
        if parent.is_none() {
            if namespace != ElementNamespace::Odm || name != b"ODM" {
                let found = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                return Err(self.error(OdmErrorKind::NotOdm(format!(
                    "the root element is {found}, not ODM in namespace {ODM_NAMESPACE}"
                ))));
            }
            let file_type = match self.attribute(start, "FileType")? {
                Some(text) if text == "Snapshot" => FileType::Snapshot,
                Some(text) if text == "Transactional" => FileType::Transactional,
                Some(text) => {
                    return Err(self.error(OdmErrorKind::InvalidAttribute {
                        element: "ODM",
                        attribute: "FileType",
                        value: text,
                        allowed: "Snapshot or Transactional",
                    }));
                }
                None => {
                    return Err(self.error(OdmErrorKind::MissingAttribute {
                        element: "ODM",
                        attribute: "FileType",
                    }));
                }
            };
            self.header = Some(OdmHeader {
                file_type,
                file_oid: self.attribute(start, "FileOID")?.map(SmolStr::new),
                odm_version: self.attribute(start, "ODMVersion")?.map(SmolStr::new),
            });
            self.push(FrameKind::Odm, None);
            return Ok(true);
        }
        let Some(parent) = parent else {
            return Ok(false);
        };
        if namespace == ElementNamespace::OpenClinica {
            match (parent, name) {
                (FrameKind::ItemData { .. }, b"AuditLogs") => {
                    self.push(FrameKind::OpenClinicaAuditLogs, None);
                    return Ok(true);
                }
                (FrameKind::OpenClinicaAuditLogs, b"AuditLog") => {
                    self.open_clinica_audit_log(start)?;
                    self.push(FrameKind::Leaf, None);
                    return Ok(true);
                }
                _ => return Ok(false),
            }
        }
        if namespace != ElementNamespace::Odm {
            return Ok(false);
        }
        match (parent, name) {
            (FrameKind::Odm, b"ClinicalData") => {
                self.study_oid = Some(SmolStr::new(self.required(
                    start,
                    "ClinicalData",
                    "StudyOID",
                )?));
                self.metadata_version_oid = self
                    .attribute(start, "MetaDataVersionOID")?
                    .map(SmolStr::new);
                self.push(FrameKind::ClinicalData, None);
            }
            (FrameKind::ClinicalData, b"SubjectData") => {
                let key = self.required(start, "SubjectData", "SubjectKey")?;
                self.subject_blocks += 1;
                self.path = KeyPath {
                    subject_key: Some(SmolStr::new(key)),
                    ..KeyPath::default()
                };
                let transaction = self.transaction(start, "SubjectData")?;
                self.site = self
                    .vendor_attribute(start, "DataAccessGroup")?
                    .filter(|group| !group.is_empty())
                    .map(SmolStr::new);
                self.subject_name = self
                    .vendor_attribute(start, "SubjectName")?
                    .map(|name| SmolStr::new(name.trim()))
                    .filter(|name| !name.is_empty());
                self.push(FrameKind::SubjectData, transaction);
            }
            (FrameKind::SubjectData, b"SiteRef") => {
                let site = self.required(start, "SiteRef", "LocationOID")?;
                self.site = Some(SmolStr::new(site));
                self.push(FrameKind::Leaf, None);
            }
            (FrameKind::SubjectData, b"StudyEventData") => {
                let event = self.keyed(
                    start,
                    "StudyEventData",
                    "StudyEventOID",
                    "StudyEventRepeatKey",
                )?;
                self.path.study_event = Some(event);
                let transaction = self.transaction(start, "StudyEventData")?;
                self.push(FrameKind::StudyEventData, transaction);
            }
            (FrameKind::SubjectData | FrameKind::StudyEventData, b"FormData") => {
                let form = self.keyed(start, "FormData", "FormOID", "FormRepeatKey")?;
                self.path.form = Some(form);
                let transaction = self.transaction(start, "FormData")?;
                self.form_status = self.vendor_attribute(start, "Status")?.map(SmolStr::new);
                self.push(FrameKind::FormData, transaction);
            }
            (FrameKind::FormData, b"ItemGroupData") => {
                // REDCap writes ItemGroupOID=""; an empty OID is kept as it is, not rejected.
                let group =
                    self.keyed(start, "ItemGroupData", "ItemGroupOID", "ItemGroupRepeatKey")?;
                self.path.item_group = Some(group);
                let transaction = self.transaction(start, "ItemGroupData")?;
                self.push(FrameKind::ItemGroupData, transaction);
            }
            (FrameKind::ItemGroupData, element) if is_item_data(element) => {
                let typed = element != b"ItemData";
                let oid = self.required(start, "ItemData", "ItemOID")?;
                self.path.item_oid = Some(SmolStr::new(oid));
                let transaction = self.transaction(start, "ItemData")?;
                let is_null = self
                    .attribute(start, "IsNull")?
                    .is_some_and(|flag| flag == "Yes");
                let value = if is_null {
                    Some(ItemValue::IsNull)
                } else if typed {
                    None
                } else {
                    Some(match self.attribute(start, "Value")? {
                        Some(text) if text.is_empty() => ItemValue::Empty,
                        Some(text) => ItemValue::Value(text),
                        None => ItemValue::Absent,
                    })
                };
                self.item = ItemInProgress { value, unit: None };
                self.text.clear();
                self.push(FrameKind::ItemData { typed }, transaction);
            }
            (FrameKind::ItemData { .. }, b"MeasurementUnitRef") => {
                self.item.unit = self
                    .attribute(start, "MeasurementUnitOID")?
                    .map(SmolStr::new);
                self.push(FrameKind::Leaf, None);
            }
            (
                FrameKind::SubjectData
                | FrameKind::StudyEventData
                | FrameKind::FormData
                | FrameKind::ItemGroupData
                | FrameKind::ItemData { .. },
                b"AuditRecord",
            ) => {
                self.audit = Some(AuditRecord {
                    id: self.attribute(start, "ID")?.map(SmolStr::new),
                    ..AuditRecord::default()
                });
                self.push(FrameKind::AuditRecord, None);
            }
            (FrameKind::AuditRecord, b"UserRef") => {
                let user = self.required(start, "UserRef", "UserOID")?;
                if let Some(audit) = &mut self.audit {
                    audit.user_oid = Some(SmolStr::new(user));
                }
                self.push(FrameKind::Leaf, None);
            }
            (FrameKind::AuditRecord, b"LocationRef") => {
                let location = self.required(start, "LocationRef", "LocationOID")?;
                if let Some(audit) = &mut self.audit {
                    audit.location_oid = Some(SmolStr::new(location));
                }
                self.push(FrameKind::Leaf, None);
            }
            (FrameKind::AuditRecord, b"DateTimeStamp") => {
                self.audit_text.clear();
                self.push(FrameKind::AuditText(AuditText::DateTimeStamp), None);
            }
            (FrameKind::AuditRecord, b"ReasonForChange") => {
                self.audit_text.clear();
                self.push(FrameKind::AuditText(AuditText::ReasonForChange), None);
            }
            (FrameKind::AuditRecord, b"SourceID") => {
                self.audit_text.clear();
                self.push(FrameKind::AuditText(AuditText::SourceId), None);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// One `OpenClinica:AuditLog` of an item (attributes as OpenClinica 3 writes them: `ID`,
    /// `UserID`, `UserName`, `Name`, `DateTimeStamp` in the server's local time without an offset,
    /// `AuditType`, `ReasonForChange`, `OldValue`, `NewValue`). The entry that set the item's current
    /// value (`NewValue`), the latest of them, becomes the item's audit record; entries of other
    /// values (the history before) are left out.
    fn open_clinica_audit_log(&mut self, start: &BytesStart<'_>) -> Result<(), OdmError> {
        let new_value = self.attribute(start, "NewValue")?.unwrap_or_default();
        let current = match &self.item.value {
            Some(ItemValue::Value(text)) => Some(text.as_str()),
            Some(ItemValue::Empty) => Some(""),
            _ => None,
        };
        if current.is_some_and(|current| current != new_value) {
            return Ok(());
        }
        let user = match self.attribute(start, "UserName")? {
            Some(name) if !name.is_empty() => Some(name),
            _ => self.attribute(start, "UserID")?,
        };
        let audit = AuditRecord {
            id: self
                .attribute(start, "ID")?
                .filter(|id| !id.is_empty())
                .map(SmolStr::new),
            user_oid: user.filter(|user| !user.is_empty()).map(SmolStr::new),
            location_oid: None,
            date_time_stamp: self
                .attribute(start, "DateTimeStamp")?
                .filter(|time| !time.is_empty()),
            reason_for_change: self
                .attribute(start, "ReasonForChange")?
                .filter(|reason| !reason.trim().is_empty()),
            source_id: None,
        };
        // The item's frame sits under the AuditLogs frame.
        let item = self
            .stack
            .iter_mut()
            .rev()
            .find(|frame| matches!(frame.kind, FrameKind::ItemData { .. }));
        if let Some(item) = item {
            let later = match (&item.audit, &audit.date_time_stamp) {
                (Some(known), Some(time)) => known
                    .date_time_stamp
                    .as_deref()
                    .is_none_or(|known| known <= time.as_str()),
                _ => true,
            };
            if later {
                item.audit = Some(audit);
            }
        }
        Ok(())
    }

    fn capturing(&self) -> bool {
        matches!(
            self.stack.last().map(|frame| frame.kind),
            Some(FrameKind::ItemData { typed: true } | FrameKind::AuditText(_))
        )
    }

    fn push_text(&mut self, text: &str) -> Result<(), OdmError> {
        let into_audit = match self.stack.last().map(|frame| frame.kind) {
            Some(FrameKind::ItemData { typed: true }) => false,
            Some(FrameKind::AuditText(_)) => true,
            _ => return Ok(()),
        };
        let target = if into_audit {
            &self.audit_text
        } else {
            &self.text
        };
        if target.len() + text.len() > MAX_TEXT_BYTES {
            return Err(self.error(OdmErrorKind::TextTooLong));
        }
        if into_audit {
            self.audit_text.push_str(text);
        } else {
            self.text.push_str(text);
        }
        Ok(())
    }

    fn effective<T: Clone>(&self, pick: impl Fn(&Frame) -> Option<&T>) -> Option<T> {
        self.stack
            .iter()
            .rev()
            .find_map(|frame| pick(frame).cloned())
    }

    fn row(&self, value: ItemValue, unit: Option<SmolStr>) -> Result<OdmRow, OdmError> {
        let header = self
            .header
            .as_ref()
            .ok_or_else(|| self.error(OdmErrorKind::NotOdm("no ODM element".to_string())))?;
        let study_oid = self.study_oid.clone().ok_or_else(|| {
            self.error(OdmErrorKind::NotOdm(
                "clinical data outside ClinicalData".to_string(),
            ))
        })?;
        Ok(OdmRow {
            file_type: header.file_type,
            study_oid,
            metadata_version_oid: self.metadata_version_oid.clone(),
            site: self.site.clone(),
            subject_name: self.subject_name.clone(),
            key: self.path.clone(),
            value,
            unit,
            transaction: self.effective(|frame| frame.transaction.as_ref()),
            audit: self.effective(|frame| frame.audit.as_ref()),
            form_status: self.form_status.clone(),
            position: self.reader.buffer_position(),
            subject_block: self.subject_blocks,
        })
    }

    /// Handles an end tag (the frame is still on the stack); may produce a row.
    fn end(&mut self) -> Result<Option<OdmRow>, OdmError> {
        let Some(frame) = self.stack.last() else {
            return Ok(None);
        };
        let kind = frame.kind;
        let removed_without_rows =
            frame.transaction == Some(TransactionType::Remove) && frame.rows_before == self.rows;
        let mut row = None;
        match kind {
            FrameKind::ItemData { typed } => {
                let value = match self.item.value.take() {
                    Some(value) => value,
                    None if typed && self.text.is_empty() => ItemValue::Empty,
                    None if typed => ItemValue::Value(std::mem::take(&mut self.text)),
                    None => ItemValue::Absent,
                };
                let unit = self.item.unit.take();
                row = Some(self.row(value, unit)?);
                self.path.item_oid = None;
            }
            FrameKind::AuditRecord => {
                let audit = self.audit.take();
                self.stack.pop();
                if let Some(parent) = self.stack.last_mut() {
                    parent.audit = audit;
                }
                return Ok(None);
            }
            FrameKind::AuditText(field) => {
                let text = std::mem::take(&mut self.audit_text).trim().to_string();
                if let Some(audit) = &mut self.audit {
                    match field {
                        AuditText::DateTimeStamp => audit.date_time_stamp = Some(text),
                        AuditText::ReasonForChange => audit.reason_for_change = Some(text),
                        AuditText::SourceId => audit.source_id = Some(text),
                    }
                }
            }
            FrameKind::SubjectData
            | FrameKind::StudyEventData
            | FrameKind::FormData
            | FrameKind::ItemGroupData => {
                if removed_without_rows {
                    row = Some(self.row(ItemValue::Absent, None)?);
                }
                match kind {
                    FrameKind::SubjectData => {
                        self.path = KeyPath::default();
                        self.site = None;
                        self.subject_name = None;
                    }
                    FrameKind::StudyEventData => self.path.study_event = None,
                    FrameKind::FormData => {
                        self.path.form = None;
                        self.form_status = None;
                    }
                    _ => self.path.item_group = None,
                }
            }
            FrameKind::ClinicalData => {
                self.study_oid = None;
                self.metadata_version_oid = None;
            }
            FrameKind::Odm | FrameKind::Leaf | FrameKind::OpenClinicaAuditLogs => {}
        }
        self.stack.pop();
        if row.is_some() {
            self.rows += 1;
        }
        Ok(row)
    }

    fn general_reference(&mut self, name: &str, resolved: Option<char>) -> Result<(), OdmError> {
        let text = match (resolved, name) {
            (Some(c), _) => c,
            (None, "lt") => '<',
            (None, "gt") => '>',
            (None, "amp") => '&',
            (None, "apos") => '\'',
            (None, "quot") => '"',
            (None, other) => {
                return Err(self.error(OdmErrorKind::UnresolvedEntity(other.to_string())));
            }
        };
        let mut utf8 = [0; 4];
        self.push_text(text.encode_utf8(&mut utf8))
    }

    fn step(&mut self) -> Result<Option<OdmRow>, OdmError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let result = self.step_with(&mut buf);
        self.buf = buf;
        result
    }

    fn step_with(&mut self, buf: &mut Vec<u8>) -> Result<Option<OdmRow>, OdmError> {
        loop {
            buf.clear();
            let (namespace, event) = match self.reader.read_resolved_event_into(buf) {
                Ok((resolved, event)) => (Self::classify(&resolved), event),
                Err(error) => return Err(self.xml_error(error)),
            };
            match event {
                Event::Start(start) => {
                    if self.skip_depth > 0 {
                        self.skip_depth += 1;
                    } else if !self.start(namespace, &start)? {
                        self.skip_depth = 1;
                    }
                }
                Event::Empty(start) => {
                    if self.skip_depth == 0
                        && self.start(namespace, &start)?
                        && let Some(row) = self.end()?
                    {
                        return Ok(Some(row));
                    }
                }
                Event::End(_) => {
                    if self.skip_depth > 0 {
                        self.skip_depth -= 1;
                    } else if let Some(row) = self.end()? {
                        return Ok(Some(row));
                    }
                }
                Event::Text(text) => {
                    if self.skip_depth == 0 && self.capturing() {
                        let decoded = text
                            .xml10_content()
                            .map_err(|error| self.xml_error(error))?;
                        self.push_text(&decoded)?;
                    }
                }
                Event::CData(data) => {
                    if self.skip_depth == 0 && self.capturing() {
                        let decoded = data
                            .xml10_content()
                            .map_err(|error| self.xml_error(error))?;
                        self.push_text(&decoded)?;
                    }
                }
                Event::GeneralRef(reference) => {
                    // Checked even inside skipped subtrees: an undeclared entity is never silently
                    // accepted, and a declared one would need the DTD we refuse to read.
                    let resolved = reference
                        .resolve_char_ref()
                        .map_err(|error| self.xml_error(error))?;
                    let name = reference
                        .decode()
                        .map_err(|error| self.xml_error(error))?
                        .into_owned();
                    if self.skip_depth == 0 {
                        self.general_reference(&name, resolved)?;
                    } else if resolved.is_none()
                        && !matches!(name.as_str(), "lt" | "gt" | "amp" | "apos" | "quot")
                    {
                        return Err(self.error(OdmErrorKind::UnresolvedEntity(name)));
                    }
                }
                Event::Eof => {
                    if let Some(frame) = self.stack.last() {
                        let open = format!("{:?}", frame.kind);
                        return Err(self.error(OdmErrorKind::UnexpectedEnd(open)));
                    }
                    if self.header.is_none() {
                        return Err(
                            self.error(OdmErrorKind::NotOdm("no ODM element found".to_string()))
                        );
                    }
                    return Ok(None);
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
    }
}

fn is_item_data(element: &[u8]) -> bool {
    const TYPED: &[&[u8]] = &[
        b"ItemData",
        b"ItemDataAny",
        b"ItemDataString",
        b"ItemDataInteger",
        b"ItemDataFloat",
        b"ItemDataDouble",
        b"ItemDataDate",
        b"ItemDataTime",
        b"ItemDataDatetime",
        b"ItemDataBoolean",
        b"ItemDataHexBinary",
        b"ItemDataBase64Binary",
        b"ItemDataHexFloat",
        b"ItemDataBase64Float",
        b"ItemDataPartialDate",
        b"ItemDataPartialTime",
        b"ItemDataPartialDatetime",
        b"ItemDataDurationDatetime",
        b"ItemDataIntervalDatetime",
        b"ItemDataIncompleteDatetime",
        b"ItemDataIncompleteDate",
        b"ItemDataIncompleteTime",
        b"ItemDataURI",
    ];
    TYPED.contains(&element)
}

impl<R: BufRead> Iterator for OdmReader<R> {
    type Item = Result<OdmRow, OdmError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.step() {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(error) => {
                self.finished = true;
                Some(Err(error))
            }
        }
    }
}

/// Reads ODM from a byte slice (tests, request bodies).
pub fn read_slice(bytes: &[u8]) -> OdmReader<&[u8]> {
    OdmReader::new(bytes)
}
