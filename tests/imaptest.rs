//! Dovecot's compliance tool imaptest (vendored in tests/imaptest/, see its README) runs its
//! scripted test files against the demo server through `mdimap-listen` with LOGIN: every
//! file whose `capabilities:` the server advertises must pass with no failed command, and
//! every other file must be one imaptest skipped, named in [`LACKING`] with the capability
//! mdimap does not have (issue 9, acceptance point 1).
//!
//! imaptest needs Debian's `dovecot-core` for its library (`./test.sh` installs it); without
//! it this test fails with instructions, it never skips.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The files imaptest skips, each with the capabilities it needs that mdimap does not
/// advertise. A file leaves this list when its capability lands (and must then pass).
const LACKING: [(&str, &str); 3] = [
    ("urlauth", "URLAUTH"),
    ("urlauth-binary", "URLAUTH URLAUTH=BINARY"),
    ("urlauth2", "URLAUTH"),
];

/// Files that run (mdimap advertises what they need) and fail for a reason
/// stated here, each a known difference rather than a bug to hide. A file
/// that passes while listed here fails the test: take it off the list.
/// (None today: `append-binary` left it when APPEND began storing binary parts the
/// maildir cannot keep byte for byte in base64.)
const DIFFERING: [(&str, &str); 0] = [];

/// How long one file may take (imaptest's own timeouts are shorter; this only stops a hang).
const FILE_TIMEOUT: Duration = Duration::from_secs(180);

fn vendored() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/imaptest")
}

/// The capabilities a test file's header asks for (`capabilities: A B`), upper-cased.
fn required_capabilities(file: &Path) -> Vec<String> {
    // Some files hold 8-bit message data after the header.
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("capabilities:"))
        .flat_map(|caps| caps.split_whitespace().map(|c| c.to_ascii_uppercase()))
        .collect()
}

enum Outcome {
    Passed,
    Skipped,
    Failed(String),
}

/// imaptest's verdict on one file, read from its summary lines as
/// `run-scripted.sh` of the tool library reads them.
fn run_file(port: u16, file: &Path, box_name: &str) -> (Outcome, String) {
    let mut child = Command::new(vendored().join("imaptest"))
        .args([
            "host=127.0.0.1".to_string(),
            format!("port={port}"),
            "user=demo".into(),
            "pass=demo".into(),
            format!("box={box_name}"),
            format!("test={}", file.display()),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running tests/imaptest/imaptest");
    let deadline = Instant::now() + FILE_TIMEOUT;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let timed_out = matches!(child.try_wait(), Ok(None));
    if timed_out {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("imaptest output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if timed_out {
        return (
            Outcome::Failed(format!("no answer within {FILE_TIMEOUT:?}")),
            text,
        );
    }
    // "N test groups: F failed, S skipped due to missing capabilities"
    let groups = text.lines().rev().find(|l| l.contains(" test groups: "));
    let failed_commands = |prefix: &str| -> (u32, u32) {
        let line = text.lines().rev().find(|l| l.starts_with(prefix));
        let Some(numbers) = line.and_then(|l| l[prefix.len()..].split_whitespace().next()) else {
            return (0, 0);
        };
        let (f, t) = numbers.split_once('/').unwrap_or(("0", "0"));
        (f.parse().unwrap_or(0), t.parse().unwrap_or(0))
    };
    let Some(groups) = groups else {
        return (Outcome::Failed("no summary from imaptest".into()), text);
    };
    let counts: Vec<u32> = groups
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (group_failed, group_skipped) = (counts.get(1).copied(), counts.get(2).copied());
    let (base_failed, base_total) = failed_commands("base protocol: ");
    let (ext_failed, ext_total) = failed_commands("extensions: ");
    let outcome = match (group_failed, group_skipped) {
        (Some(0), _) if base_total + ext_total == 0 => Outcome::Skipped,
        (Some(0), Some(s)) if s > 0 => Outcome::Skipped,
        (Some(0), _) if base_failed + ext_failed == 0 => Outcome::Passed,
        _ => Outcome::Failed(groups.to_string()),
    };
    (outcome, text)
}

#[test]
fn every_covered_imaptest_file_passes() {
    assert!(
        Path::new("/usr/lib/dovecot/libdovecot.so.0").exists(),
        "imaptest needs Dovecot's library: install Debian's dovecot-core \
         (apt-get install dovecot-core; ./test.sh does this). It does not conflict with courier-imap."
    );
    let t = TestDir::new("imaptest");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdimap"));
    cmd.arg("demo")
        .arg("--dir")
        .arg(t.join("demo"))
        .args(["--port", "0", "--empty"]);
    let server = Daemon::start(cmd);
    let mut c = server.connect();
    c.ok("LOGIN demo demo");
    let caps: Vec<String> = c
        .ok("CAPABILITY")
        .line("* CAPABILITY")
        .expect("CAPABILITY")
        .split_whitespace()
        .skip(2)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    c.ok("LOGOUT");

    let mut files: Vec<PathBuf> = std::fs::read_dir(vendored().join("tests"))
        .expect("tests/imaptest/tests")
        .map(|e| e.expect("reading tests/imaptest/tests").path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "mbox"))
        .collect();
    files.sort();
    assert!(files.len() > 60, "imaptest's files are missing: {files:?}");

    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut passed = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let lacking: Vec<String> = required_capabilities(file)
            .into_iter()
            .filter(|c| !caps.contains(c))
            .collect();
        let (outcome, text) = run_file(server.port, file, "INBOX.imaptest");
        let differing = DIFFERING.iter().find(|(f, _)| *f == name);
        match (outcome, differing) {
            (Outcome::Failed(_), Some((_, why))) => {
                eprintln!("imaptest: {name} fails as expected: {why}");
                continue;
            }
            (_, Some(_)) => {
                failures.push(format!("{name}: no longer fails; remove it from DIFFERING"));
                continue;
            }
            (outcome, None) => match (outcome, lacking.is_empty()) {
                (Outcome::Passed, true) => passed += 1,
                (Outcome::Skipped, false) => skipped.push(name),
                (Outcome::Skipped, true) => failures.push(format!(
                    "{name}: skipped although every capability it needs is advertised\n{text}"
                )),
                (Outcome::Passed, false) => failures.push(format!(
                    "{name}: passed, but needs {lacking:?}, which is not advertised"
                )),
                (Outcome::Failed(why), _) => failures.push(format!("{name}: {why}\n{text}")),
            },
        }
    }
    eprintln!(
        "imaptest: {passed} files passed, {} skipped for a capability mdimap lacks",
        skipped.len()
    );
    assert!(
        failures.is_empty(),
        "imaptest files failed:\n{}",
        failures.join("\n\n")
    );
    let listed: Vec<&str> = LACKING.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        skipped, listed,
        "the skipped files must be those LACKING names (with the capability each lacks)"
    );
    for (file, missing) in LACKING {
        for cap in missing.split(' ') {
            assert!(
                !caps.contains(&cap.to_string()),
                "{file}: {cap} is advertised now"
            );
        }
    }
}
