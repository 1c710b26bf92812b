//! The README's "A five-minute tour", run as typed: every `$ ` line of steps 1 to 5 is read from
//! README.md and run by bash in a fresh temporary directory, with `myolog` on the PATH, and each
//! step's output must show the lines the README shows, in the README's order. In a shown line `...`
//! stands for any text (hashes, times); a line that is only `...` marks elided lines. A block that
//! does not open with `...` shows the output's first line, and a block with nothing shown means no
//! output. The README also leaves out lines without writing `...` (after the demo's correction line,
//! and at the end of most blocks), so lines may come between and after shown lines. A README edit
//! that makes a shown line false, or puts shown lines out of order, fails this test.
//!
//! Why a real program and a real shell rather than the command line's library functions: the tour
//! is shell lines (pipes into `cut` and `grep`, `&`, `kill %1`), and replay, verify and report write
//! to the process's stdout, which a test cannot read in-process. `myolog` is this package's
//! `myolog-tour` binary, the same `myolog_cli::main()` as `crates/cli`'s, which cargo builds before
//! the test; the path to `target/*/myolog` would be whatever an earlier build left there, or nothing.
//!
//! Two deviations from a user's terminal, both so that the test depends on nothing else running on
//! the machine: `serve` listens on a free port (through `MYOLOG_ADDR`, which `serve` reads as its
//! `--addr`; the command line stays as written), and the outcomes line's `127.0.0.1:50051` is
//! pointed at that port; `serve --help` must still name 127.0.0.1:50051 as the default. The
//! metrics endpoint gets a free port the same way. `MYOLOG_*` variables of the test's own
//! environment are not passed on.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The README's port for `serve` and `outcomes`.
const README_ADDR: &str = "127.0.0.1:50051";

/// How long one typed command may take (the demo streams 402 events through a debug build).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// One `$ ` line and the output lines the README shows under it.
#[derive(Debug)]
struct Typed {
    line: String,
    shown: Vec<String>,
}

/// The tour's steps 1 to 5, each with its typed commands, in README order.
fn tour() -> Vec<(u32, Vec<Typed>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let start = readme
        .find("\n## A five-minute tour\n")
        .expect("README.md has the section \"A five-minute tour\"");
    let section = &readme[start + 1..];
    let section = &section[..section[1..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 1)];
    let mut steps: Vec<(u32, Vec<Typed>)> = Vec::new();
    let mut in_block = false;
    for line in section.lines() {
        if let Some(rest) = line.strip_prefix("**") {
            let number: String = rest.chars().take_while(char::is_ascii_digit).collect();
            match number.parse::<u32>() {
                Ok(number) if number <= 5 => steps.push((number, Vec::new())),
                // Step 6 and later are prose with no commands to run.
                Ok(_) => break,
                Err(_) => {}
            }
            in_block = false;
            continue;
        }
        let Some((_, commands)) = steps.last_mut() else {
            // Before step 1: building and the PATH, which the test does its own way.
            continue;
        };
        if let Some(typed) = line.strip_prefix("    $ ") {
            commands.push(Typed {
                line: typed.to_string(),
                shown: Vec::new(),
            });
            in_block = true;
        } else if in_block && let Some(shown) = line.strip_prefix("    ") {
            let typed = commands.last_mut().expect("a command opens the block");
            typed.shown.push(shown.to_string());
        } else {
            in_block = false;
        }
    }
    let numbers: Vec<u32> = steps.iter().map(|(number, _)| *number).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5], "the tour's numbered steps");
    for (number, commands) in &steps {
        assert!(!commands.is_empty(), "step {number} has a `$ ` line");
    }
    steps
}

/// Whether `line` is `shown`, reading `...` in `shown` as any text.
fn line_matches(shown: &str, line: &str) -> bool {
    let parts: Vec<&str> = shown.split("...").collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return shown == line;
    };
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Checks that `output` shows the README's `shown` lines as the module doc says, or names the
/// first shown line that it does not show.
fn check_shown(shown: &[String], output: &str) -> Result<(), String> {
    let lines: Vec<&str> = output.lines().map(str::trim_end).collect();
    let shown: Vec<&str> = shown.iter().map(|line| line.trim_end()).collect();
    if shown.is_empty() {
        return match lines.first() {
            None => Ok(()),
            Some(line) => Err(format!(
                "the README shows no output, the first line is {line:?}"
            )),
        };
    }
    let mut at = 0;
    for (index, shown) in shown.iter().enumerate() {
        if *shown == "..." {
            continue;
        }
        let found = if index == 0 {
            // The block opens with this line: so does the output.
            (!lines.is_empty() && line_matches(shown, lines[0])).then_some(0)
        } else {
            (at..lines.len()).find(|&i| line_matches(shown, lines[i]))
        };
        match found {
            Some(i) => at = i + 1,
            None if index == 0 => {
                return Err(format!(
                    "the first line is {:?}, the README shows {shown:?}",
                    lines.first().copied().unwrap_or("(no output)")
                ));
            }
            None => return Err(format!("no line after line {at} is {shown:?}")),
        }
    }
    Ok(())
}

/// A loopback address no one listens on now (the OS picks the port).
fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address")
}

/// The shell and environment of a user who put `myolog` on the PATH, in the tour's directory.
struct Terminal {
    dir: tempfile::TempDir,
    path: String,
    serve_addr: SocketAddr,
    metrics_addr: SocketAddr,
    outputs: u32,
}

impl Terminal {
    fn new() -> Terminal {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin dir");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_myolog-tour"), bin.join("myolog"))
            .expect("myolog on the PATH");
        let path = match std::env::var_os("PATH") {
            Some(path) => format!("{}:{}", bin.display(), path.to_string_lossy()),
            None => bin.display().to_string(),
        };
        let work = dir.path().join("tour");
        std::fs::create_dir(&work).expect("tour dir");
        Terminal {
            dir,
            path,
            serve_addr: free_addr(),
            metrics_addr: free_addr(),
            outputs: 0,
        }
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("tour")
    }

    /// `bash -o pipefail -c line` in the tour's directory, its stdout and stderr both to one file as
    /// a terminal shows them (`report` says what it wrote on stderr); a file, since a pipe nobody
    /// reads could stall a talkative server.
    fn spawn(&mut self, line: &str) -> (Child, PathBuf) {
        self.outputs += 1;
        let output = self.dir.path().join(format!("{}.out", self.outputs));
        let file = File::create(&output).expect("output file");
        let mut command = Command::new("bash");
        command
            .args(["-o", "pipefail", "-c", line])
            .current_dir(self.work())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("output file"))
            .stderr(file)
            .env("PATH", &self.path)
            .env("MYOLOG_ADDR", self.serve_addr.to_string())
            .env("MYOLOG_METRICS_ADDR", self.metrics_addr.to_string());
        for (name, _) in std::env::vars_os() {
            let passed = ["MYOLOG_ADDR", "MYOLOG_METRICS_ADDR"];
            if name.to_string_lossy().starts_with("MYOLOG_") && !passed.iter().any(|p| name == *p) {
                command.env_remove(&name);
            }
        }
        let child = command.spawn().expect("bash runs");
        (child, output)
    }

    /// Runs a typed line to its end; what it printed.
    fn run(&mut self, line: &str) -> String {
        let (mut child, output) = self.spawn(line);
        let status = wait(&mut child, COMMAND_TIMEOUT, line);
        let output = std::fs::read_to_string(output).expect("output");
        assert!(status.success(), "`{line}` failed ({status}):\n{output}");
        output
    }
}

/// Waits for `child`, killing it and failing after `limit`.
fn wait(child: &mut Child, limit: Duration, line: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`{line}` still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A background job, killed if the test fails before `kill %1` (a test's failure must not leave a
/// server running).
struct Job(Child);

impl Drop for Job {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sends SIGTERM, as `kill %1` does to the background job.
fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM");
}

fn check_step(number: u32, typed: &Typed, output: &str) {
    if let Err(problem) = check_shown(&typed.shown, output) {
        panic!(
            "README step {number}, `{}`: {problem}\nREADME shows:\n{}\noutput:\n{output}",
            typed.line,
            typed.shown.join("\n")
        );
    }
    // The comparison has teeth: each shown line, made false (its first digit changed, or without a
    // digit its first character), no longer passes against the same output.
    for (index, line) in typed.shown.iter().enumerate() {
        if line.trim() == "..." {
            continue;
        }
        let mut edited = typed.shown.clone();
        edited[index] = match line.find(|c: char| c.is_ascii_digit()) {
            Some(at) => {
                let digit = line.as_bytes()[at] - b'0';
                format!("{}{}{}", &line[..at], (digit + 1) % 10, &line[at + 1..])
            }
            None => format!("!{}", &line[1..]),
        };
        assert!(
            check_shown(&edited, output).is_err(),
            "README step {number}: {:?} edited to {:?} still passes against:\n{output}",
            line,
            edited[index]
        );
    }
}

#[test]
fn the_readme_tour_runs_as_written() {
    let steps = tour();
    let mut terminal = Terminal::new();

    // The port the README's step 3 relies on is `serve`'s default.
    let help = terminal.run("myolog serve --help");
    assert!(
        help.contains(&format!("[default: {README_ADDR}]")),
        "serve's default address is {README_ADDR}:\n{help}"
    );

    for (number, commands) in &steps {
        let mut background: Option<(Job, PathBuf)> = None;
        for typed in commands {
            let line = typed.line.split(" #").next().unwrap_or_default().trim();
            if let Some(command) = line.strip_suffix('&') {
                assert!(background.is_none(), "one background job at a time");
                assert!(
                    typed.shown.is_empty(),
                    "`{line}`: output of a background job"
                );
                let (child, printed) = terminal.spawn(&format!("exec {}", command.trim_end()));
                let mut child = Job(child);
                // A user reads the next line while the server starts; the test waits for it.
                let deadline = Instant::now() + COMMAND_TIMEOUT;
                while TcpStream::connect(terminal.serve_addr).is_err() {
                    if let Some(status) = child.0.try_wait().expect("wait") {
                        panic!(
                            "`{line}` exited ({status}):\n{}",
                            std::fs::read_to_string(&printed).unwrap_or_default()
                        );
                    }
                    assert!(Instant::now() < deadline, "`{line}` never listened");
                    std::thread::sleep(Duration::from_millis(50));
                }
                background = Some((child, printed));
            } else if line == "kill %1" {
                let (mut child, printed) = background.take().expect("`kill %1` after a `&` line");
                terminate(&child.0);
                let status = wait(&mut child.0, COMMAND_TIMEOUT, "kill %1");
                assert!(
                    status.success(),
                    "SIGTERM shuts the server down gracefully ({status}):\n{}",
                    std::fs::read_to_string(&printed).unwrap_or_default()
                );
                check_step(*number, typed, "");
            } else {
                let runnable = line.replace(README_ADDR, &terminal.serve_addr.to_string());
                let output = terminal.run(&runnable);
                check_step(*number, typed, &output);
            }
        }
        assert!(
            background.is_none(),
            "step {number} leaves its background job running"
        );
    }
    // Step 5's page is there, and replay from step 4 ran over step 1's log.
    assert!(terminal.work().join("report/report.html").is_file());
}

#[test]
fn shown_lines_are_read_in_order_with_their_wildcards() {
    let shown = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    let output = "a\nhead sequence 382, hash 9f3c\nb\nlast 8/10\n";
    let check = |lines: &[&str]| check_shown(&shown(lines), output);
    assert!(check(&["...", "head sequence 382, hash ...", "...", "last 8/10"]).is_ok());
    assert!(check(&["a", "last 8/10"]).is_ok());
    // A changed number, a line out of order, a wrong first line: each is caught.
    assert!(check(&["...", "head sequence 381, hash ..."]).is_err());
    assert!(check(&["...", "last 8/10", "b"]).is_err());
    assert!(check(&["head sequence 382, hash ...", "..."]).is_err());
    assert!(check(&["...", "last 8/11"]).is_err());
    // A block with nothing shown means no output.
    assert!(check_shown(&[], "").is_ok());
    assert!(check_shown(&[], "unexpected\n").is_err());
    assert!(line_matches("x ... y ... z", "x 1 y 2 z"));
    assert!(!line_matches("x ... y", "x 1 z"));
    assert!(!line_matches("x", "x 1"));
}
