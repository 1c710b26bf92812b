//! Bearer tokens: `myo_` followed by 64 lowercase hex digits (256 random bits). The server stores
//! and compares only SHA-256 hashes: a token is unguessable, so one unsalted hash round is enough
//! (a slow password hash protects low-entropy secrets, which these are not), and a stolen principals
//! file grants nothing.

use std::io::Read;

use sha2::{Digest, Sha256};

use super::AuthError;

/// Every token starts with this, so a leaked token is recognisable in logs and secret scanners.
pub const PREFIX: &str = "myo_";
/// Random bytes per token (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// The SHA-256 of a token.
pub type TokenHash = [u8; 32];

/// Reading the operating system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("reading /dev/urandom: {0}")]
pub struct RandomError(#[from] std::io::Error);

/// A new token from the operating system's CSPRNG. `/dev/urandom` rather than a crate: the server
/// runs on Linux only (the container image), and it never blocks once the kernel pool is seeded.
pub fn generate() -> Result<String, RandomError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!("{PREFIX}{}", hex(&bytes)))
}

/// The SHA-256 of a token's text.
pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Parses 64 hex digits into a hash (`None` if the text is anything else).
pub fn parse_hash(text: &str) -> Option<TokenHash> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *slot = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// The token of an `authorization` value `Bearer <token>` (scheme case-insensitive, RFC 6750).
/// Only the shape is checked here; whether the token is known is the principals file's business.
pub fn parse_bearer(header: &[u8]) -> Result<&str, AuthError> {
    let text = std::str::from_utf8(header).map_err(|_| AuthError::Malformed("not UTF-8"))?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or(AuthError::Malformed("expected `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed("scheme is not Bearer"));
    }
    let token = token.trim();
    let digits = token
        .strip_prefix(PREFIX)
        .ok_or(AuthError::Malformed("token does not start with myo_"))?;
    if digits.len() != TOKEN_BYTES * 2
        || !digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(AuthError::Malformed(
            "token is not myo_ and 64 lowercase hex digits",
        ));
    }
    Ok(token)
}

/// Constant-time equality of two hashes: every byte is compared and the differences are OR-ed, so
/// the time does not depend on where the first difference is. A hand-written fold rather than the
/// `subtle` crate: the inputs are fixed-size and public-length, and `black_box` keeps the compiler
/// from turning the fold into an early-exit comparison.
pub fn constant_time_eq(a: &TokenHash, b: &TokenHash) -> bool {
    let difference = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert_ne!(a, b);
        let header = format!("Bearer {a}");
        assert_eq!(parse_bearer(header.as_bytes()), Ok(a.as_str()));
        assert_eq!(a.len(), PREFIX.len() + 64);
    }

    #[test]
    fn bearer_shapes() {
        let good = format!("{PREFIX}{}", "0123456789abcdef".repeat(4));
        // (header, accepted)
        let cases: Vec<(Vec<u8>, bool)> = vec![
            (format!("Bearer {good}").into_bytes(), true),
            (format!("bearer {good}").into_bytes(), true),
            (format!("Bearer  {good} ").into_bytes(), true),
            (good.clone().into_bytes(), false),
            (format!("Basic {good}").into_bytes(), false),
            (b"Bearer ".to_vec(), false),
            (b"Bearer myo_".to_vec(), false),
            (
                format!("Bearer {}", good.to_uppercase()).into_bytes(),
                false,
            ),
            (format!("Bearer {good}0").into_bytes(), false),
            (
                format!("Bearer {}", &good[..good.len() - 1]).into_bytes(),
                false,
            ),
            (vec![b'B', 0xff, b' ', b'x'], false),
            (
                format!("Bearer {}", good.replace('a', "é")).into_bytes(),
                false,
            ),
        ];
        for (header, accepted) in cases {
            assert_eq!(
                parse_bearer(&header).is_ok(),
                accepted,
                "{:?}",
                String::from_utf8_lossy(&header)
            );
        }
    }

    #[test]
    fn hash_round_trips_through_hex() {
        let token = generate().expect("random");
        let digest = hash(&token);
        assert_eq!(parse_hash(&hex(&digest)), Some(digest));
        for bad in ["", "zz", &"0".repeat(63), &"g".repeat(64), &"é".repeat(32)] {
            assert_eq!(parse_hash(bad), None, "{bad}");
        }
    }

    #[test]
    fn constant_time_eq_is_equality() {
        let a = hash("a");
        let b = hash("b");
        assert!(constant_time_eq(&a, &a));
        assert!(!constant_time_eq(&a, &b));
        for i in 0..32 {
            let mut c = a;
            c[i] ^= 1;
            assert!(!constant_time_eq(&a, &c), "byte {i}");
        }
    }
}
