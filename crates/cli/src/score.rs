//! `myolog score`: reads scoring cases as JSON (one object, possibly spanning lines, or JSON Lines
//! with one case per line) and writes one JSON result per case, in input order (the contract in docs/reference/score-json.md).
//! An invalid case yields `{"error": {"field": ..., "message": ..., "line": ...}}` in its place and the
//! others are still scored; the caller exits with [`ScoreRunSummary::exit_code`] (2 if any was invalid).

use myolog_domain::case::ScoreCase;
use myolog_domain::error::{InvalidInput, Problem};
use myolog_domain::json::Json;
use myolog_scoring::score_case;
use serde::Serialize;
use serde_json::value::RawValue;
use std::io::{self, BufRead, Write};

/// How many cases were read and how many were invalid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreRunSummary {
    pub cases: usize,
    pub invalid: usize,
}

impl ScoreRunSummary {
    /// The process exit status: 0 when every case was valid, 2 when any was invalid.
    pub fn exit_code(&self) -> i32 {
        if self.invalid > 0 { 2 } else { 0 }
    }
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    field: &'a str,
    message: String,
    /// 1-based line where the case starts.
    line: usize,
}

/// One case's text and the line it starts on.
struct CaseText<'a> {
    text: &'a str,
    line: usize,
}

/// Splits the input into cases: a stream of whitespace-separated JSON values when the whole input
/// is well-formed (a pretty-printed object, or JSON Lines); otherwise one case per non-blank line,
/// so that one broken line does not hide the others.
fn split_cases(input: &str) -> Vec<CaseText<'_>> {
    let line_of = |offset: usize| input[..offset].matches('\n').count() + 1;
    let mut stream = serde_json::Deserializer::from_str(input).into_iter::<&RawValue>();
    let mut values = Vec::new();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => return values,
            Some(Ok(raw)) => {
                let text = raw.get();
                let leading = input[start..].find(text).unwrap_or(0);
                values.push(CaseText {
                    text,
                    line: line_of(start + leading),
                });
            }
            Some(Err(_)) => break,
        }
    }
    input
        .split('\n')
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, text)| CaseText {
            text,
            line: index + 1,
        })
        .collect()
}

/// Scores every case of `input` and writes one JSON line per case to `output`.
pub fn run(mut input: impl BufRead, mut output: impl Write) -> io::Result<ScoreRunSummary> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    // Bytes that are not UTF-8 become U+FFFD and fail only the case they are in; a byte-order mark
    // (some spreadsheet exports write one) is not part of the first case.
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut summary = ScoreRunSummary::default();
    for case in split_cases(text) {
        summary.cases += 1;
        let parsed = Json::parse(case.text)
            .map_err(|message| InvalidInput::at("", Problem::Syntax(message)))
            .and_then(|json| ScoreCase::from_json_value(&json));
        match parsed {
            Ok(case) => serde_json::to_writer(&mut output, &score_case(&case))?,
            Err(invalid) => {
                summary.invalid += 1;
                let body = ErrorBody {
                    field: &invalid.field,
                    message: invalid.problem.to_string(),
                    line: case.line,
                };
                serde_json::to_writer(&mut output, &ErrorLine { error: body })?;
            }
        }
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Runs `input` and returns the parsed output lines and the summary.
    fn score(input: &str) -> (Vec<Value>, ScoreRunSummary) {
        let mut output = Vec::new();
        let summary = run(input.as_bytes(), &mut output).expect("in-memory IO cannot fail");
        let text = String::from_utf8(output).expect("utf-8");
        let lines = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("each output line is JSON"))
            .collect();
        (lines, summary)
    }

    const STIR_LIKE: &str = r#"{"id": "s1", "population": "adult", "baseline": {"physician_global": 6.0, "patient_global": 7.0, "extramuscular_global": 4.0, "mmt8": {"total": 60, "max": 80}, "haq_di": 1.5, "enzymes": {"ck": {"value": 2000, "uln": 200}}}, "followup": {"physician_global": 2.0, "patient_global": 3.0, "extramuscular_global": 1.0, "mmt8": {"total": 70, "max": 80}, "haq_di": 1.0, "enzymes": {"ck": {"value": 400, "uln": 200}}}}"#;

    /// `expected`: per output line, `Ok(doi status)` or `Err((field, line))`; and the exit code.
    fn check(input: &str, expected: &[Result<&str, (&str, usize)>], exit_code: i32) {
        let (lines, summary) = score(input);
        let actual: Vec<Result<String, (String, usize)>> = lines
            .iter()
            .map(|line| match line.get("error") {
                Some(error) => Err((
                    error["field"].as_str().unwrap_or("?").to_string(),
                    error["line"].as_u64().unwrap_or(0) as usize,
                )),
                None => Ok(line["doi"]["status"].as_str().unwrap_or("?").to_string()),
            })
            .collect();
        let expected: Vec<Result<String, (String, usize)>> = expected
            .iter()
            .map(|item| {
                item.map(str::to_string)
                    .map_err(|(field, line)| (field.to_string(), line))
            })
            .collect();
        assert_eq!(actual, expected, "{input}");
        assert_eq!(summary.cases, expected.len());
        assert_eq!(
            summary.invalid,
            expected.iter().filter(|item| item.is_err()).count()
        );
        assert_eq!(summary.exit_code(), exit_code);
    }

    #[test]
    fn cases_in_order_with_invalid_ones_in_place() {
        let invalid_grade = STIR_LIKE.replace(
            r#""mmt8": {"total": 70, "max": 80}"#,
            r#""mmt8": {"max": 80, "grades": {"deltoid": 11}}"#,
        );
        let too_few = r#"{"population": "adult", "baseline": {"physician_global": 6}, "followup": {"physician_global": 1}}"#;
        // A single case.
        check(STIR_LIKE, &[Ok("met")], 0);
        // JSON Lines with one invalid line in the middle, blank lines ignored.
        check(
            &format!("{STIR_LIKE}\n\n{invalid_grade}\n{too_few}\n"),
            &[
                Ok("met"),
                Err(("followup.mmt8.grades.deltoid", 3)),
                Ok("not_evaluable"),
            ],
            2,
        );
        // A line that is not JSON does not hide the others.
        check(
            &format!("{STIR_LIKE}\n{{\"population\": \n{too_few}"),
            &[Ok("met"), Err(("", 2)), Ok("not_evaluable")],
            2,
        );
        // A pretty-printed object spanning lines is one case.
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(STIR_LIKE).expect("json"))
                .expect("json");
        check(&pretty, &[Ok("met")], 0);
        check(&format!("{pretty}\n{pretty}"), &[Ok("met"), Ok("met")], 0);
        // Not an object.
        check("[1, 2]", &[Err(("", 1))], 2);
        // Unknown key at the top.
        check(
            r#"{"population": "adult", "baseline": {}, "followup": {}, "extra": 1}"#,
            &[Err(("extra", 1))],
            2,
        );
        // Deep nesting is an error, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        check(&deep, &[Err(("", 1))], 2);
        // A byte-order mark is skipped; bytes that are not UTF-8 fail only their own case.
        check(&format!("\u{feff}{STIR_LIKE}"), &[Ok("met")], 0);
        let mut bytes = format!("{STIR_LIKE}\n").into_bytes();
        bytes.extend_from_slice(
            b"{\"population\": \"adult\xff\", \"baseline\": {}, \"followup\": {}}\n",
        );
        bytes.extend_from_slice(STIR_LIKE.as_bytes());
        let mut output = Vec::new();
        let summary = run(bytes.as_slice(), &mut output).expect("in-memory IO cannot fail");
        assert_eq!(
            summary,
            ScoreRunSummary {
                cases: 3,
                invalid: 1
            }
        );
        let lines: Vec<Value> = String::from_utf8(output)
            .expect("utf-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("json"))
            .collect();
        assert_eq!(lines[1]["error"]["field"], "population");
        assert_eq!(lines[2]["doi"]["status"], "met");
        // Nothing to score.
        check("", &[], 0);
        check("\n \n", &[], 0);
    }

    #[test]
    fn result_lines_follow_the_contract() {
        let (lines, _) = score(STIR_LIKE);
        let result = &lines[0];
        assert_eq!(result["id"], "s1");
        assert_eq!(result["doi"]["algorithm"], "doi-2004@1");
        assert_eq!(result["tis"]["algorithm"], "tis-2016@1");
        assert_eq!(result["tis"]["status"], "evaluable");
        // PhGA 6 -> 2: 40% of 10 cm -> band >25-40 -> 17.5; PtGA 40% -> 7.5; extramuscular 30% -> 15;
        // MMT 10/80 = 12.5% -> 20; HAQ 0.5/3 = 16.7% -> 7.5; CK 10 -> 2 x ULN, 80% -> 7.5. Sum 75.
        assert_eq!(result["tis"]["points"]["physician_global"], 17.5);
        assert_eq!(result["tis"]["points"]["patient_global"], 7.5);
        assert_eq!(result["tis"]["points"]["extramuscular_global"], 15);
        assert_eq!(result["tis"]["points"]["mmt"], 20);
        assert_eq!(result["tis"]["points"]["haq"], 7.5);
        assert_eq!(result["tis"]["points"]["enzyme"], 7.5);
        assert_eq!(result["tis"]["score"], 75);
        assert_eq!(result["tis"]["category"], "major");
        assert_eq!(result["measures"]["haq"]["improvement_pct"], 33.333333);
        assert_eq!(result["measures"]["enzyme"]["enzyme"], "ck");
        assert_eq!(result["doi"]["conventions"]["enzyme"], "ck");
    }

    #[test]
    fn error_lines_name_the_field_and_the_allowed_range() {
        let (lines, summary) =
            score(&STIR_LIKE.replace(r#""physician_global": 2.0"#, r#""physician_global": 2.05"#));
        assert_eq!(summary.exit_code(), 2);
        let error = &lines[0]["error"];
        assert_eq!(error["field"], "followup.physician_global");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("2.05") && message.contains("0 to 10 cm"),
            "{message}"
        );
    }

    /// The fenced block that follows `marker` in the contract page, docs/reference/score-json.md.
    fn docs_block(marker: &str) -> String {
        let page = include_str!("../../../docs/reference/score-json.md");
        let after = page
            .split_once(marker)
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let body = after
            .split_once("```json\n")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        body.split_once("```")
            .map(|(block, _)| block.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn docs_example_is_the_real_output() {
        let input = docs_block("<!-- score-example-input -->");
        let expected = docs_block("<!-- score-example-output -->");
        assert!(
            !input.is_empty() && !expected.is_empty(),
            "docs/reference/score-json.md example blocks not found"
        );
        let mut output = Vec::new();
        let summary = run(input.as_bytes(), &mut output).expect("in-memory IO cannot fail");
        assert_eq!(String::from_utf8(output).expect("utf-8"), expected);
        assert_eq!(
            summary,
            ScoreRunSummary {
                cases: 2,
                invalid: 1
            }
        );
    }
}
