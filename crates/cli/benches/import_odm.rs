//! EDC import benchmark: a generated STIR-shaped CDISC ODM 1.3 Transactional file (REDCap
//! longitudinal layout, the fixture `tests/data/edc/redcap_longitudinal_stir.xml` with its mapping
//! `stir_redcap.mapping.toml`) measured three ways in the same run, interleaved round by round:
//! parsing alone (`OdmReader`), parsing + planning (`plan::plan` against an empty ledger), and the
//! whole `myolog import odm` (`import_odm`) into a real server on 127.0.0.1:0 with durable acks.
//! Then the peak RSS of a child process that only parses a ~10 MB and a ~1 GB generated file.
//!
//! `cargo bench -p myolog-cli --bench import_odm` (plain `main`, no harness). Sizes:
//! `MYOLOG_BENCH_ODM_ITEMS` [100000] ItemData items, `MYOLOG_BENCH_ROUNDS` [5],
//! `MYOLOG_BENCH_ODM_SMALL_MB` [10] and `MYOLOG_BENCH_ODM_BIG_MB` [1024] for the memory part
//! (`0` skips it). Smoke form:
//! `MYOLOG_BENCH_ODM_ITEMS=5000 MYOLOG_BENCH_ROUNDS=3 MYOLOG_BENCH_ODM_SMALL_MB=1 MYOLOG_BENCH_ODM_BIG_MB=20`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use myolog_cli::client::{Bearer, ServerTls};
use myolog_cli::edc::{ImportOdmArgs, import_odm, load_mapping};
use myolog_edc::odm::OdmReader;
use myolog_edc::plan::SentLedger;
use myolog_proto::v1 as pb;
use myolog_proto::v1::ingest_client::IngestClient;
use myolog_server::app::AppConfig;
use myolog_server::server;

/// Set in the child process of the memory part: the file it parses.
const CHILD_ENV: &str = "MYOLOG_BENCH_ODM_CHILD_PARSE";

/// The mapping of the STIR-shaped REDCap project, as the fixture `stir_redcap.mapping.toml` (the
/// fixture is read at build time so the generated file and its mapping cannot drift apart).
const MAPPING: &str = include_str!("../../../tests/data/edc/stir_redcap.mapping.toml");

/// Free space below which the ~1 GB file is not written: the disk is shared with builds.
const MIN_FREE_BYTES: u64 = 5 * 1024 * 1024 * 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {text:?}")),
        Err(_) => default,
    }
}

/// Counts what goes through it, so the generator can stop at an item count or a byte size.
struct Counting<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Where the generator stops adding subjects.
#[derive(Clone, Copy)]
enum Size {
    /// Exactly this many ItemData items (the corrections at the end fill the remainder).
    Items(u64),
    /// About this many bytes.
    Bytes(u64),
}

/// What a generated file holds.
#[derive(Debug, Clone, Copy, Default)]
struct Generated {
    subjects: u64,
    items: u64,
    updates: u64,
    bytes: u64,
}

/// The visits of the REDCap project: event OID and visit date.
const VISITS: [(&str, &str); 5] = [
    ("Event.baseline_arm_1", "2024-01-15"),
    ("Event.week_4_arm_1", "2024-02-12"),
    ("Event.week_8_arm_1", "2024-03-11"),
    ("Event.week_12_arm_1", "2024-04-08"),
    ("Event.week_16_arm_1", "2024-05-06"),
];

/// ItemData items of one subject as [`write_subject`] writes it: the baseline's 23, 19 per later
/// visit.
const ITEMS_PER_SUBJECT: u64 = 23 + 4 * 19;

/// Corrections written at the end of a file sized in bytes.
const BYTES_MODE_UPDATES: u64 = 50;

/// Opens a form with its audit record (on the form, so it applies to all its items, as REDCap and
/// OpenClinica write Transactional exports).
fn form_start(out: &mut impl Write, form: &str, audit: u64, date: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "   <FormData FormOID=\"Form.{form}\" FormRepeatKey=\"1\" TransactionType=\"Insert\">\n    \
         <AuditRecord ID=\"AR-{audit}\"><UserRef UserOID=\"U.SITE\"/><LocationRef LocationOID=\"SITE\"/>\
         <DateTimeStamp>{date}T10:00:00-05:00</DateTimeStamp><SourceID>src-{audit}</SourceID></AuditRecord>"
    )
}

/// One item group of a form: its items, then the form's `<form>_complete` status group.
fn form(
    out: &mut impl Write,
    form: &str,
    audit: u64,
    date: &str,
    items: &[(&str, String)],
) -> std::io::Result<()> {
    form_start(out, form, audit, date)?;
    writeln!(
        out,
        "    <ItemGroupData ItemGroupOID=\"{form}.main\" ItemGroupRepeatKey=\"1\" TransactionType=\"Insert\">"
    )?;
    for (item, value) in items {
        writeln!(out, "     <ItemData ItemOID=\"{item}\" Value=\"{value}\"/>")?;
    }
    writeln!(
        out,
        "    </ItemGroupData>\n    <ItemGroupData ItemGroupOID=\"{form}.{form}_complete\" ItemGroupRepeatKey=\"1\" TransactionType=\"Insert\">\n     \
         <ItemData ItemOID=\"{form}_complete\" Value=\"2\"/>\n    </ItemGroupData>\n   </FormData>"
    )
}

/// One subject inserted with its five visits: 99 ItemData items. Values vary with the subject and
/// the visit and stay in the domain's ranges.
fn write_subject(out: &mut impl Write, s: u64) -> std::io::Result<()> {
    let key = format!("STIR-{s:06}");
    let site = if s.is_multiple_of(2) {
        "site_a"
    } else {
        "site_b"
    };
    writeln!(
        out,
        " <SubjectData SubjectKey=\"{key}\" TransactionType=\"Insert\" redcap:DataAccessGroup=\"{site}\">"
    )?;
    for (v, (event, date)) in VISITS.iter().enumerate() {
        let v = v as u64;
        let audit = s * 100 + v * 10;
        writeln!(
            out,
            "  <StudyEventData StudyEventOID=\"{event}\" StudyEventRepeatKey=\"1\" TransactionType=\"Insert\">"
        )?;
        if v == 0 {
            let arm = 1 + s % 2;
            form(
                out,
                "enrolment",
                audit,
                date,
                &[
                    ("record_id", key.clone()),
                    ("rand_arm", arm.to_string()),
                    ("rand_date", "2024-01-12".into()),
                ],
            )?;
        }
        let tenth = |base: u64| format!("{}.{}", (base + s + v) % 10, (s * 7 + v) % 10);
        form(
            out,
            "visit",
            audit + 1,
            date,
            &[
                ("visit_date", (*date).into()),
                ("pred_change___1", "0".into()),
                ("pred_change___2", (v % 2).to_string()),
                ("pred_change___3", "0".into()),
            ],
        )?;
        form(
            out,
            "globals",
            audit + 2,
            date,
            &[
                ("pga_vas", tenth(6)),
                ("ptga_vas", tenth(7)),
                ("ega_vas", tenth(4)),
            ],
        )?;
        form(
            out,
            "mmt8",
            audit + 3,
            date,
            &[("mmt_total", (50 + (s + v * 3) % 30).to_string())],
        )?;
        form(
            out,
            "haq",
            audit + 4,
            date,
            &[("haq_di", format!("{}.{}25", (s + v) % 3, (s + v) % 9))],
        )?;
        form(
            out,
            "enzymes",
            audit + 5,
            date,
            &[
                ("ck", (150 + (s * 37 + v * 101) % 2000).to_string()),
                ("ck_uln", "200".into()),
                ("ck_unit", "1".into()),
            ],
        )?;
        form(
            out,
            "medication",
            audit + 6,
            date,
            &[("pred_dose", (20 - v * 2).to_string())],
        )?;
        writeln!(out, "  </StudyEventData>")?;
    }
    writeln!(out, " </SubjectData>")
}

/// A later transaction on subject `s`'s physician global at week `1 + n % 4`: an Update with its
/// own audit record and reason for change, inside Context ancestors.
fn write_update(out: &mut impl Write, s: u64, n: u64) -> std::io::Result<()> {
    let (event, date) = VISITS[1 + (n % 4) as usize];
    writeln!(
        out,
        " <SubjectData SubjectKey=\"STIR-{s:06}\" TransactionType=\"Context\">\n  \
         <StudyEventData StudyEventOID=\"{event}\" StudyEventRepeatKey=\"1\" TransactionType=\"Context\">\n   \
         <FormData FormOID=\"Form.globals\" FormRepeatKey=\"1\" TransactionType=\"Context\">\n    \
         <ItemGroupData ItemGroupOID=\"globals.main\" ItemGroupRepeatKey=\"1\" TransactionType=\"Context\">\n     \
         <ItemData ItemOID=\"pga_vas\" Value=\"{}.5\" TransactionType=\"Update\">\n      \
         <AuditRecord ID=\"AR-U{n}\"><UserRef UserOID=\"U.MONITOR\"/><LocationRef LocationOID=\"SITE\"/>\
         <DateTimeStamp>{date}T16:00:00-04:00</DateTimeStamp><ReasonForChange>transcription error</ReasonForChange></AuditRecord>\n     \
         </ItemData>\n    </ItemGroupData>\n   </FormData>\n  </StudyEventData>\n </SubjectData>",
        n % 9
    )
}

/// The removal of subject `s`'s week 12 globals form (a form entered for the wrong visit).
fn write_remove(out: &mut impl Write, s: u64) -> std::io::Result<()> {
    writeln!(
        out,
        " <SubjectData SubjectKey=\"STIR-{s:06}\" TransactionType=\"Context\">\n  \
         <StudyEventData StudyEventOID=\"Event.week_12_arm_1\" StudyEventRepeatKey=\"1\" TransactionType=\"Context\">\n   \
         <FormData FormOID=\"Form.globals\" FormRepeatKey=\"1\" TransactionType=\"Remove\">\n    \
         <AuditRecord ID=\"AR-R{s}\"><UserRef UserOID=\"U.DM\"/><LocationRef LocationOID=\"SITE\"/>\
         <DateTimeStamp>2024-04-18T16:45:00-04:00</DateTimeStamp><ReasonForChange>form entered for the wrong subject</ReasonForChange></AuditRecord>\n   \
         </FormData>\n  </StudyEventData>\n </SubjectData>"
    )
}

/// Streams a generated file to `out` (never held in memory, so the 1 GB file costs the generator
/// nothing either).
fn generate(out: impl Write, size: Size) -> std::io::Result<Generated> {
    let mut out = Counting {
        inner: out,
        bytes: 0,
    };
    writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ODM xmlns=\"http://www.cdisc.org/ns/odm/v1.3\" \
         xmlns:redcap=\"https://projectredcap.org\" ODMVersion=\"1.3.2\" FileType=\"Transactional\" \
         FileOID=\"STIR-BENCH\" CreationDateTime=\"2024-05-20T09:00:00\" SourceSystem=\"REDCap\">\n\
         <ClinicalData StudyOID=\"Project.STIR\" MetaDataVersionOID=\"Metadata.STIR_2024-05-20_0900\">"
    )?;
    let mut generated = Generated::default();
    // Items mode keeps room for at least 50 corrections at the end, which fill up to the count.
    let more = |g: &Generated, bytes: u64| match size {
        Size::Items(n) => g.items + ITEMS_PER_SUBJECT + BYTES_MODE_UPDATES <= n,
        Size::Bytes(n) => bytes < n,
    };
    while more(&generated, out.bytes) {
        write_subject(&mut out, generated.subjects)?;
        generated.subjects += 1;
        generated.items += ITEMS_PER_SUBJECT;
    }
    let updates = match size {
        Size::Items(n) => n.saturating_sub(generated.items),
        Size::Bytes(_) => BYTES_MODE_UPDATES,
    };
    let subjects = generated.subjects.max(1);
    for n in 0..updates {
        write_update(&mut out, (n * 7919) % subjects, n)?;
    }
    generated.updates = updates;
    generated.items += updates;
    write_remove(&mut out, subjects / 2)?;
    writeln!(out, "</ClinicalData>\n</ODM>")?;
    out.flush()?;
    generated.bytes = out.bytes;
    Ok(generated)
}

fn generate_file(path: &Path, size: Size) -> Generated {
    let file = File::create(path).expect("create the ODM file");
    generate(BufWriter::with_capacity(1 << 20, file), size).expect("write the ODM file")
}

/// Parsing alone: every row read and dropped; the row count.
fn parse(path: &Path) -> u64 {
    let file = File::open(path).expect("open the ODM file");
    let mut rows = 0;
    for row in OdmReader::new(BufReader::new(file)) {
        row.expect("a well-formed generated file");
        rows += 1;
    }
    rows
}

/// Parsing + planning against an empty ledger (a first import); the number of changes.
fn parse_and_plan(path: &Path, mapping: &myolog_edc::mapping::Mapping) -> (usize, usize) {
    let file = File::open(path).expect("open the ODM file");
    let mut ledger = SentLedger::default();
    let plan = myolog_edc::plan::plan(OdmReader::new(BufReader::new(file)), mapping, &mut ledger)
        .expect("the generated file plans");
    (plan.changes.len(), plan.discrepancies.len())
}

/// The study's registration, as an operator sends it before the first import.
fn registration() -> pb::SubmitRequest {
    pb::SubmitRequest {
        batch_id: "register".into(),
        events: vec![pb::Event {
            event_id: "STIR.registered".into(),
            study_id: "STIR".into(),
            subject_id: String::new(),
            visit_id: String::new(),
            clinical_date: "2024-01-01".into(),
            body: Some(pb::event::Body::StudyRegistered(pb::StudyRegistered {
                title: "STIR-shaped REDCap project".into(),
                population: pb::Population::Adult as i32,
                baseline_visit_id: "BL".into(),
                ..Default::default()
            })),
            source_audit: None,
        }],
    }
}

/// The whole `import odm` into a fresh server (its own log, a fresh ledger); time of the import
/// only, and the events the server acknowledged as stored.
async fn import(file: &Path, mapping: &Path, work: &Path) -> (Duration, usize, u8) {
    let dir = tempfile::tempdir_in(work).expect("tempdir");
    let running = server::start(
        AppConfig::new(dir.path().join("log")),
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .expect("server");
    let mut client = IngestClient::connect(running.url()).await.expect("connect");
    client.append(registration()).await.expect("register");
    let args = ImportOdmArgs {
        file: file.to_path_buf(),
        mapping: mapping.to_path_buf(),
        addr: Some(running.url()),
        ledger: Some(dir.path().join("ledger.json")),
        dry_run: false,
        discrepancies: None,
        batch_size: 500,
        tls: ServerTls::default(),
    };
    let mut out = Vec::new();
    let start = Instant::now();
    let summary = import_odm(&args, Bearer::default(), &mut out)
        .await
        .expect("the import runs");
    let elapsed = start.elapsed();
    running.stop().await.expect("stop");
    (elapsed, summary.sent, summary.exit_code())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Bytes free on the file system of `path`, from `df` (POSIX output, 1024-byte blocks).
fn free_bytes(path: &Path) -> Option<u64> {
    let output = Command::new("df").arg("-Pk").arg(path).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The child process: parses the file and prints its row count and its peak RSS (VmHWM, kB).
fn child(path: &Path) {
    let rows = parse(path);
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let hwm = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .map(|rest| rest.trim().trim_end_matches("kB").trim().to_string())
        .expect("VmHWM in /proc/self/status");
    println!("{rows} {hwm}");
}

/// Runs the child on `path`: (rows, peak RSS in kB, wall time).
fn child_parse(path: &Path) -> (u64, u64, Duration) {
    let start = Instant::now();
    let output = Command::new(std::env::current_exe().expect("current exe"))
        .env(CHILD_ENV, path)
        .output()
        .expect("run the child");
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let mut fields = text
        .split_whitespace()
        .map(|f| f.parse::<u64>().expect("a number"));
    let rows = fields.next().expect("rows");
    let hwm = fields.next().expect("VmHWM");
    (rows, hwm, elapsed)
}

fn load_line() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn memory_part(work: &Path) {
    let small_mb = env_u64("MYOLOG_BENCH_ODM_SMALL_MB", 10);
    let big_mb = env_u64("MYOLOG_BENCH_ODM_BIG_MB", 1024);
    if small_mb == 0 || big_mb == 0 {
        println!("\nmemory: skipped (MYOLOG_BENCH_ODM_SMALL_MB or MYOLOG_BENCH_ODM_BIG_MB is 0)");
        return;
    }
    println!("\nPeak RSS of a child process that only parses (VmHWM at its end):");
    let small_path = work.join("small.xml");
    let small = generate_file(&small_path, Size::Bytes(small_mb << 20));
    let (small_rows, small_hwm, small_time) = child_parse(&small_path);
    let _ = std::fs::remove_file(&small_path);
    println!(
        "  {:>7.1} MB {:>11} rows  peak RSS {:>7} kB  ({:.2} s)",
        small.bytes as f64 / 1e6,
        small_rows,
        small_hwm,
        small_time.as_secs_f64()
    );
    // The big file is on the shared disk: skip it rather than fill the disk.
    let needed = (big_mb << 20).max(MIN_FREE_BYTES);
    match free_bytes(work) {
        Some(free) if free >= needed => {}
        Some(free) => {
            println!(
                "  big file SKIPPED: {:.1} GB free on {} (needs at least {:.1} GB)",
                free as f64 / 1e9,
                work.display(),
                needed as f64 / 1e9
            );
            return;
        }
        None => {
            println!(
                "  big file SKIPPED: could not read the free space of {} with df",
                work.display()
            );
            return;
        }
    }
    let big_path = work.join("big.xml");
    let generated_at = Instant::now();
    let big = generate_file(&big_path, Size::Bytes(big_mb << 20));
    let generation = generated_at.elapsed();
    let (big_rows, big_hwm, big_time) = child_parse(&big_path);
    let _ = std::fs::remove_file(&big_path);
    println!(
        "  {:>7.1} MB {:>11} rows  peak RSS {:>7} kB  ({:.2} s; generated in {:.2} s; deleted)",
        big.bytes as f64 / 1e6,
        big_rows,
        big_hwm,
        big_time.as_secs_f64(),
        generation.as_secs_f64()
    );
    println!(
        "  big / small: {:.0}x the bytes, {:.2}x the peak RSS",
        big.bytes as f64 / small.bytes as f64,
        big_hwm as f64 / small_hwm as f64
    );
}

fn main() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        child(&PathBuf::from(path));
        return;
    }
    // `cargo bench` passes `--bench`; there is nothing else to read.
    let items = env_u64("MYOLOG_BENCH_ODM_ITEMS", 100_000);
    let rounds = env_u64("MYOLOG_BENCH_ROUNDS", 5).max(1) as usize;
    let work = tempfile::tempdir().expect("tempdir");
    println!(
        "EDC import benchmark, load average at start {} ({} cores)",
        load_line(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );

    let file = work.path().join("stir.xml");
    let generated = generate_file(&file, Size::Items(items));
    let mapping_path = work.path().join("stir.mapping.toml");
    std::fs::write(&mapping_path, MAPPING).expect("write the mapping");
    let mapping = load_mapping(&mapping_path).expect("the mapping loads");
    println!(
        "file: {} subjects x {} visits, {} ItemData items ({} Updates, 1 form Remove), {:.1} MB, Transactional",
        generated.subjects,
        VISITS.len(),
        generated.items,
        generated.updates,
        generated.bytes as f64 / 1e6
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Warm-up: page cache, allocator, the server's thread pools.
    let _ = parse(&file);
    let _ = parse_and_plan(&file, &mapping);

    let (mut parse_s, mut plan_s, mut import_s) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rows, mut changes, mut discrepancies, mut sent, mut exit) = (0, 0, 0, 0, 0);
    for round in 1..=rounds {
        let start = Instant::now();
        rows = parse(&file);
        let parse_time = start.elapsed();
        let start = Instant::now();
        (changes, discrepancies) = parse_and_plan(&file, &mapping);
        let plan_time = start.elapsed();
        let import_time;
        (import_time, sent, exit) = runtime.block_on(import(&file, &mapping_path, work.path()));
        println!(
            "  round {round}: parse {:.3} s, parse+plan {:.3} s, import {:.3} s",
            parse_time.as_secs_f64(),
            plan_time.as_secs_f64(),
            import_time.as_secs_f64()
        );
        parse_s.push(parse_time.as_secs_f64());
        plan_s.push(plan_time.as_secs_f64());
        import_s.push(import_time.as_secs_f64());
    }
    let (parse_m, plan_m, import_m) = (median(parse_s), median(plan_s), median(import_s));
    println!(
        "rows {rows}, planned changes {changes}, discrepancies {discrepancies}, events stored {sent}, \
         import exit code {exit}"
    );
    println!("median of {rounds} interleaved rounds:");
    println!(
        "{:<12} {:>9} {:>12} {:>12} {:>12} {:>10}",
        "side", "seconds", "rows/s", "items/s", "events/s", "MB/s"
    );
    let mb = generated.bytes as f64 / 1e6;
    for (side, secs) in [
        ("parse", parse_m),
        ("parse+plan", plan_m),
        ("import", import_m),
    ] {
        println!(
            "{:<12} {:>9.3} {:>12.0} {:>12.0} {:>12.0} {:>10.1}",
            side,
            secs,
            rows as f64 / secs,
            generated.items as f64 / secs,
            changes as f64 / secs,
            mb / secs
        );
    }
    println!(
        "import events/s against parsing alone (planned events / parse time): {:.3} ({:.1}%); \
         parse+plan against parse: {:.3}",
        parse_m / import_m,
        100.0 * parse_m / import_m,
        parse_m / plan_m
    );
    let _ = std::fs::remove_file(&file);
    memory_part(work.path());
    println!("load average at end {}", load_line());
}
