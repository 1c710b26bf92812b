//! Sorted-key JSON text without building a `serde_json::Value`.
//!
//! The replay prints every outcome's scoring result with its object keys sorted, which it used to get
//! by parsing the result's JSON text into a `Value` (a tree of `BTreeMap`s, a few hundred allocations
//! per outcome) and serialising that again: most of the cost of writing a replay. [`sorted_keys`]
//! produces the same bytes in one pass over the text. It only takes the fast path where it can be
//! sure of that: anything it does not reproduce exactly (escaped keys, duplicate keys, invalid text)
//! makes it return `false`, and [`write_sorted`] then takes the `Value` round trip after all.

use serde_json::Value;

/// Writes `text` with the keys of every object sorted, exactly as
/// `serde_json::to_writer(out, &serde_json::from_str::<Value>(text).unwrap_or(Value::Null))` would.
pub fn write_sorted(text: &str, out: &mut Vec<u8>) {
    let start = out.len();
    if sorted_keys(text, out) {
        return;
    }
    out.truncate(start);
    let value = serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    // Writing a `Value` into a `Vec` cannot fail (no I/O, no non-string keys).
    let _ = serde_json::to_writer(&mut *out, &value);
}

/// Appends `text` re-emitted with sorted object keys; `false` (with `out` partly written) when the
/// text is not valid JSON or holds something the fast path does not reproduce exactly.
pub fn sorted_keys(text: &str, out: &mut Vec<u8>) -> bool {
    thread_local! {
        // The buffers of the nesting levels, kept from one call to the next: a replay sorts about
        // a hundred thousand results of the same shape.
        static SCRATCH: std::cell::RefCell<Vec<Level>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        let mut parser = Parser {
            bytes: text.as_bytes(),
            text,
            at: 0,
            scratch,
        };
        if parser.value(out).is_none() {
            return false;
        }
        parser.skip_whitespace();
        parser.at == parser.bytes.len()
    })
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
    /// Reused buffers for the members of the objects being sorted, one per nesting level.
    scratch: &'a mut Vec<Level>,
}

/// One nesting level's buffers: the members' values as written, and the members.
type Level = (Vec<u8>, Vec<Member>);

/// One object member: where its key (raw text, no escapes) sits in the input, and where its value
/// sits in the level's buffer.
type Member = (usize, usize, usize, usize);

impl<'a> Parser<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Option<()> {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            out.extend_from_slice(word);
            Some(())
        } else {
            None
        }
    }

    fn value(&mut self, out: &mut Vec<u8>) -> Option<()> {
        self.skip_whitespace();
        match *self.bytes.get(self.at)? {
            b'{' => self.object(out),
            b'[' => self.array(out),
            b'"' => self.string(out),
            b't' => self.literal(b"true", out),
            b'f' => self.literal(b"false", out),
            b'n' => self.literal(b"null", out),
            b'-' | b'0'..=b'9' => self.number(out),
            _ => None,
        }
    }

    /// The end (exclusive, after the closing quote) of the string opening at `self.at`, and whether it
    /// holds an escape. Raw control characters are invalid JSON.
    fn string_end(&self) -> Option<(usize, bool)> {
        let mut at = self.at + 1;
        let mut escaped = false;
        loop {
            match *self.bytes.get(at)? {
                b'"' => return Some((at + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    at += 2;
                }
                0x00..=0x1f => return None,
                _ => at += 1,
            }
        }
    }

    fn string(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let (end, escaped) = self.string_end()?;
        let token = self.text.get(self.at..end)?;
        self.at = end;
        if escaped {
            // Escapes are rare (serde_json writes only quotes, backslashes and control characters
            // escaped): decode and re-encode them as the `Value` round trip does.
            let decoded: String = serde_json::from_str(token).ok()?;
            serde_json::to_writer(&mut *out, &decoded).ok()?;
        } else {
            out.extend_from_slice(token.as_bytes());
        }
        Some(())
    }

    fn number(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let start = self.at;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
        let token = self.text.get(start..self.at)?;
        let digits = token.strip_prefix('-').unwrap_or(token);
        // A plain integer of at most 18 digits without a leading zero (and not "-0") reads back as
        // the same u64/i64 and prints as itself; anything else goes through serde_json's own number,
        // as the `Value` round trip does (floats, "-0", integers near the limits).
        let plain = !digits.is_empty()
            && digits.len() <= 18
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if plain || token == "0" {
            out.extend_from_slice(token.as_bytes());
        } else {
            let number: serde_json::Number = serde_json::from_str(token).ok()?;
            serde_json::to_writer(&mut *out, &number).ok()?;
        }
        Some(())
    }

    fn array(&mut self, out: &mut Vec<u8>) -> Option<()> {
        self.at += 1;
        out.push(b'[');
        self.skip_whitespace();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            out.push(b']');
            return Some(());
        }
        loop {
            self.value(out)?;
            self.skip_whitespace();
            match *self.bytes.get(self.at)? {
                b',' => {
                    self.at += 1;
                    out.push(b',');
                }
                b']' => {
                    self.at += 1;
                    out.push(b']');
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self, out: &mut Vec<u8>) -> Option<()> {
        self.at += 1;
        self.skip_whitespace();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            out.extend_from_slice(b"{}");
            return Some(());
        }
        // The members' values are written into this level's buffer, then copied out in key order.
        let (mut values, mut members) = self.scratch.pop().unwrap_or_default();
        values.clear();
        members.clear();
        let parsed = self.members(&mut values, &mut members);
        let bytes = self.bytes;
        let key = |member: &Member| bytes.get(member.0..member.1).unwrap_or_default();
        let sorted = parsed.and_then(|()| {
            members.sort_unstable_by(|a, b| key(a).cmp(key(b)));
            // Duplicate keys: `Value` keeps the last one; rare enough to leave to it.
            if members
                .windows(2)
                .any(|pair| key(&pair[0]) == key(&pair[1]))
            {
                return None;
            }
            out.push(b'{');
            for (index, member) in members.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.push(b'"');
                out.extend_from_slice(key(member));
                out.extend_from_slice(b"\":");
                out.extend_from_slice(values.get(member.2..member.3)?);
            }
            out.push(b'}');
            Some(())
        });
        self.scratch.push((values, members));
        sorted
    }

    fn members(&mut self, values: &mut Vec<u8>, members: &mut Vec<Member>) -> Option<()> {
        loop {
            self.skip_whitespace();
            if self.bytes.get(self.at) != Some(&b'"') {
                return None;
            }
            let (end, escaped) = self.string_end()?;
            // An escaped key would sort by its decoded text: left to the `Value` round trip.
            if escaped {
                return None;
            }
            let key = (self.at + 1, end - 1);
            self.at = end;
            self.skip_whitespace();
            if self.bytes.get(self.at) != Some(&b':') {
                return None;
            }
            self.at += 1;
            let start = values.len();
            self.value(values)?;
            members.push((key.0, key.1, start, values.len()));
            self.skip_whitespace();
            match *self.bytes.get(self.at)? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the replay wrote before: the `Value` round trip.
    fn through_value(text: &str) -> Vec<u8> {
        let value = serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        serde_json::to_vec(&value).unwrap_or_default()
    }

    #[test]
    fn the_same_bytes_as_the_value_round_trip() {
        let cases = [
            r#"{"b":1,"a":{"d":[3,{"z":null,"y":true}],"c":"x"}}"#,
            r#"{"status":"met","algorithm":"doi-2004@1","improved":[],"missing_reasons":{}}"#,
            r#"{"x":4.64,"y":9.051724,"z":-0.0,"w":1e3,"v":1E-7,"u":-0,"t":0,"s":-12}"#,
            r#"{"big":123456789012345678901234,"max":18446744073709551615,"min":-9223372036854775808}"#,
            r#"{"over":1e400}"#,
            r#"{"esc":"a\"b\\c\nd\u00e9\u0001","plain":"é ü"}"#,
            r#"{"a\u0062":1,"ab":2}"#,
            r#"{"dup":1,"dup":2}"#,
            r#" { "spaced" : [ 1 , 2 ] , "a" : { } } "#,
            r#"[{"b":1,"a":2},[],{}]"#,
            r#""just a string""#,
            "17",
            "",
            "{",
            r#"{"a":1,}"#,
            r#"{"a":1} trailing"#,
            r#"{"error":"missing field `x` at line 1 column 2"}"#,
            r#"{"error":"bad "quote""}"#,
            r#"{"a":tru}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            "{\"raw\":\"tab\there\"}",
        ];
        for text in cases {
            let mut out = Vec::new();
            write_sorted(text, &mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&through_value(text)),
                "{text}"
            );
        }
    }

    #[test]
    fn the_fast_path_is_taken_for_serde_json_output() {
        let cases = [
            r#"{"b":1,"a":{"d":[3,{"z":null,"y":true}],"c":"x"}}"#,
            r#"{"x":4.64,"n":-5,"s":"a\"b"}"#,
        ];
        for text in cases {
            assert!(sorted_keys(text, &mut Vec::new()), "{text}");
        }
    }
}
