//! TLS for the gRPC port (rustls through tonic's `tls-ring`): the server certificate and key, and an
//! optional client CA. With a client CA, client certificates are optional (token callers need none)
//! but, when presented, must chain to that CA; the verified certificate's subject common name is then
//! the principal, looked up among the principals file's `[[client]]` entries.
//!
//! The common name is read by [`subject_common_name`], a small bounds-checked DER walk over the
//! certificate rustls has already verified: an X.509 parser crate would be far larger than the one
//! field needed, and every read here is checked, so hostile bytes give `None`, never a panic.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// Certificate files of `serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA whose client certificates are accepted (PEM); none: no client certificates.
    pub client_ca: Option<PathBuf>,
}

/// TLS settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Incomplete(&'static str),
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

impl TlsFiles {
    /// The files named by the flags, if TLS was asked for; both certificate and key or neither.
    pub fn from_flags(
        cert: Option<&Path>,
        key: Option<&Path>,
        client_ca: Option<&Path>,
    ) -> Result<Option<Self>, TlsError> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(Self {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                client_ca: client_ca.map(Path::to_path_buf),
            })),
            (None, None) if client_ca.is_some() => Err(TlsError::Incomplete(
                "--tls-client-ca needs --tls-cert and --tls-key",
            )),
            (None, None) => Ok(None),
            _ => Err(TlsError::Incomplete(
                "--tls-cert and --tls-key go together (MYOLOG_TLS_CERT, MYOLOG_TLS_KEY)",
            )),
        }
    }

    /// Reads the files into tonic's server TLS configuration (PEM errors surface when the server
    /// builds it, before it listens).
    pub fn load(&self) -> Result<ServerTlsConfig, TlsError> {
        let identity = Identity::from_pem(
            read("TLS certificate", &self.cert)?,
            read("TLS key", &self.key)?,
        );
        let mut config = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            config = config
                .client_ca_root(Certificate::from_pem(read("client CA", ca)?))
                .client_auth_optional(true);
        }
        Ok(config)
    }
}

/// One DER TLV at the start of `input`: (tag, contents, the bytes after it). `None` when the
/// encoding is truncated or uses a length form a certificate never needs.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(count)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let (contents, after) = rest.split_at_checked(length)?;
    Some((tag, contents, after))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// id-at-commonName, 2.5.4.3.
const COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

/// The subject common name of a DER X.509 certificate (`None` if absent, not a string, or the
/// bytes are not a certificate). With several CNs the last one counts, as most TLS stacks do.
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    let (SEQUENCE, certificate, _) = tlv(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(certificate)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] EXPLICIT version, absent in v1 certificates.
    if let (0xa0, _, after) = tlv(rest)? {
        rest = after;
    }
    // serialNumber, signature, issuer, validity.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (SEQUENCE, mut names, _) = tlv(rest)? else {
        return None;
    };
    let mut common_name = None;
    while !names.is_empty() {
        let (SET, mut set, after) = tlv(names)? else {
            return None;
        };
        names = after;
        while !set.is_empty() {
            let (SEQUENCE, pair, after) = tlv(set)? else {
                return None;
            };
            set = after;
            let (OID, oid, value) = tlv(pair)? else {
                return None;
            };
            if oid == COMMON_NAME {
                // UTF8String, PrintableString, T61String, IA5String.
                let (0x0c | 0x13 | 0x14 | 0x16, text, _) = tlv(value)? else {
                    return None;
                };
                common_name = Some(String::from_utf8(text.to_vec()).ok()?);
            }
        }
    }
    common_name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_go_together() {
        let p = |s: &'static str| Some(Path::new(s));
        // (cert, key, client CA, accepted, TLS on)
        let cases = [
            (None, None, None, true, false),
            (p("c"), p("k"), None, true, true),
            (p("c"), p("k"), p("ca"), true, true),
            (p("c"), None, None, false, false),
            (None, p("k"), None, false, false),
            (None, None, p("ca"), false, false),
        ];
        for (cert, key, ca, accepted, on) in cases {
            let result = TlsFiles::from_flags(cert, key, ca);
            assert_eq!(result.is_ok(), accepted, "{cert:?} {key:?} {ca:?}");
            assert_eq!(
                result.ok().flatten().is_some(),
                on,
                "{cert:?} {key:?} {ca:?}"
            );
        }
    }

    #[test]
    fn truncated_or_odd_der_gives_none() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x81],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x31, 0x00],
        ] {
            assert_eq!(subject_common_name(bytes), None, "{bytes:?}");
        }
    }
}
