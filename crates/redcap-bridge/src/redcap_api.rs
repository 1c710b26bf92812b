//! The REDCap API over HTTP(S), as REDCap documents it: form-encoded POSTs to one URL, the token
//! and `content` deciding what comes back (`metadata`, `record`, `log`). Which fields the bridge
//! asks for, and how a de-identified export is recognised. Not for reading what comes back (that is
//! `myolog_edc::redcap`).

use std::path::Path;
use std::time::Duration;

use myolog_edc::mapping::{Mapping, SiteSource};
use myolog_edc::redcap::RedcapMetadata;

/// A call to REDCap that failed: the server or the network (retried), or an answer that cannot be
/// used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedcapCallError {
    #[error("REDCap unreachable: {0}")]
    Unreachable(String),
    #[error("REDCap answered {status}: {body}")]
    Status { status: u16, body: String },
}

/// The REDCap API over HTTP(S), form-encoded POSTs as REDCap documents them.
#[derive(Debug, Clone)]
pub struct RedcapClient {
    http: reqwest::Client,
    url: String,
    token: String,
}

/// `application/x-www-form-urlencoded` of one component.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

impl RedcapClient {
    /// A client of the API at `url` with the project's token; `ca` adds a CA for REDCap's HTTPS.
    pub fn new(url: &str, token: &str, ca: Option<&Path>) -> Result<Self, String> {
        // reqwest's rustls without a bundled provider (the workspace's choice, shared with
        // object_store): ring is installed as the process-wide provider, once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|error| format!("{}: {error}", ca.display()))?;
            let certificate = reqwest::Certificate::from_pem(&pem)
                .map_err(|error| format!("{}: {error}", ca.display()))?;
            builder = builder.tls_certs_merge([certificate]);
        }
        let http = builder
            .build()
            .map_err(|error| format!("HTTP client: {error}"))?;
        Ok(Self {
            http,
            url: url.to_string(),
            token: token.to_string(),
        })
    }

    /// One API call: the token and `params`, form-encoded; the body of a 200 answer.
    pub async fn call(&self, params: &[(String, String)]) -> Result<String, RedcapCallError> {
        let mut body = format!("token={}", form_encode(&self.token));
        for (key, value) in params {
            body.push('&');
            body.push_str(&form_encode(key));
            body.push('=');
            body.push_str(&form_encode(value));
        }
        let response = self
            .http
            .post(&self.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|error| RedcapCallError::Unreachable(error.to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| RedcapCallError::Unreachable(error.to_string()))?;
        if !status.is_success() {
            let body: String = text.chars().take(300).collect();
            return Err(RedcapCallError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(text)
    }

    /// `content=metadata`: the data dictionary.
    pub async fn metadata(&self) -> Result<String, RedcapCallError> {
        self.call(&params(&[("content", "metadata"), ("format", "json")]))
            .await
    }

    /// `content=log` (the project's logging, JSON) of type `logtype` (`record`, `record_delete`,
    /// ...), limited to `record` when given and to entries since `begin_time`, which REDCap reads
    /// as `YYYY-MM-DD HH:MM` in its own server's time zone. The token needs the Logging right.
    pub async fn log(
        &self,
        logtype: &str,
        record: Option<&str>,
        begin_time: Option<&str>,
    ) -> Result<String, RedcapCallError> {
        let mut list = params(&[("content", "log"), ("format", "json"), ("logtype", logtype)]);
        if let Some(record) = record {
            list.push(("record".into(), record.to_string()));
        }
        if let Some(begin) = begin_time {
            list.push(("beginTime".into(), begin.to_string()));
        }
        self.call(&list).await
    }

    /// `content=record`, flat JSON, with the data access group, limited to `fields` and, when
    /// given, to `records` and to records changed since `since` (`YYYY-MM-DD HH:MM:SS`).
    pub async fn records(
        &self,
        records: &[String],
        fields: &[String],
        since: Option<&str>,
    ) -> Result<String, RedcapCallError> {
        let mut list = params(&[
            ("content", "record"),
            ("format", "json"),
            ("type", "flat"),
            ("exportDataAccessGroups", "true"),
        ]);
        for (index, record) in records.iter().enumerate() {
            list.push((format!("records[{index}]"), record.clone()));
        }
        for (index, field) in fields.iter().enumerate() {
            list.push((format!("fields[{index}]"), field.clone()));
        }
        if let Some(since) = since {
            list.push(("dateRangeBegin".into(), since.to_string()));
        }
        self.call(&list).await
    }
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// The REDCap fields the bridge asks for: the record id, every mapped item (a checkbox option
/// `f___c` is asked as its field `f`), the visit date, the enrolment items and the status field of
/// every form they are on; nothing else leaves REDCap.
pub fn requested_fields(mapping: &Mapping, metadata: &RedcapMetadata) -> Vec<String> {
    let mut fields: Vec<String> = vec![metadata.record_id_field().to_string()];
    let mut add = |name: &str| {
        let base = name.split_once("___").map_or(name, |(base, _)| base);
        if !base.is_empty() && !fields.iter().any(|known| known == base) {
            fields.push(base.to_string());
        }
    };
    for item in mapping.items.keys() {
        add(item);
    }
    add(&mapping.visits.date_item);
    if let Some(item) = &mapping.visits.visit_item {
        add(item);
    }
    if let Some(enrolment) = &mapping.enrolment {
        add(&enrolment.arm_item);
        add(&enrolment.date_item);
        if let (SiteSource::Item, Some(item)) = (enrolment.site, &enrolment.site_item) {
            add(item);
        }
    }
    let forms: Vec<String> = fields
        .iter()
        .filter_map(|field| metadata.form_of(field).map(str::to_string))
        .collect();
    for form in forms {
        let status = format!("{form}{}", mapping.form_status.suffix);
        if !fields.contains(&status) {
            fields.push(status);
        }
    }
    fields
}

/// Whether a record export was made with de-identified rights: the date column is absent from
/// the records REDCap returned (a full export always has the key, blank or not).
pub fn dates_removed(records_json: &str, date_field: &str) -> bool {
    let Ok(serde_json::Value::Array(records)) = serde_json::from_str(records_json) else {
        return false;
    };
    !records.is_empty()
        && records
            .iter()
            .all(|record| record.get(date_field).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_all_but_the_unreserved() {
        assert_eq!(form_encode("fields[0]"), "fields%5B0%5D");
        assert_eq!(
            form_encode("2024-01-01 10:00:00"),
            "2024-01-01+10%3A00%3A00"
        );
        assert_eq!(form_encode("é&="), "%C3%A9%26%3D");
    }

    #[test]
    fn a_de_identified_export_has_no_date_column() {
        assert!(dates_removed(r#"[{"record_id":"1"}]"#, "visit_date"));
        assert!(!dates_removed(
            r#"[{"record_id":"1","visit_date":""}]"#,
            "visit_date"
        ));
        assert!(!dates_removed("[]", "visit_date"));
        assert!(!dates_removed("not json", "visit_date"));
    }

    #[test]
    fn only_mapped_fields_are_asked_for() {
        let mapping = Mapping::from_toml(include_str!(
            "../../../tests/data/edc/stir_redcap.mapping.toml"
        ))
        .expect("mapping");
        let metadata =
            RedcapMetadata::from_json(include_str!("../../../tests/data/edc/stir_metadata.json"))
                .expect("metadata");
        let fields = requested_fields(&mapping, &metadata);
        assert_eq!(fields[0], "record_id");
        for expected in [
            "pga_vas",
            "visit_date",
            "rand_arm",
            "rand_date",
            "globals_complete",
            "enrolment_complete",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected}: {fields:?}"
            );
        }
        // Ignored items (adverse events, the checkbox) never leave REDCap.
        for ignored in ["ae_term", "pred_change", "ae_complete"] {
            assert!(
                !fields.iter().any(|f| f == ignored),
                "{ignored}: {fields:?}"
            );
        }
    }
}
