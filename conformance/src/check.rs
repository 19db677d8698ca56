//! Checking a run against its specification: each `read` takes the next
//! characters of a stream as the reference runner reads it, each `wait`
//! the exit code, and a failure is named with the output around it.

use super::spec::Operation;
use host::text::escape_controls;

/// What a run produced, whichever way it was run: the part of a
/// `host::RunOutcome` a check reads, which an adapter's process or a run
/// that never started also has.
pub struct Observed {
    pub ending: Ending,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// A stream's bytes, and whether a limit cut them.
#[derive(Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

impl Captured {
    /// Bytes read to their end.
    pub fn whole(bytes: Vec<u8>) -> Captured {
        Captured {
            bytes,
            truncated: false,
        }
    }
}

/// How a run ended.
#[derive(Clone)]
pub enum Ending {
    Exited(i32),
    /// The guest trapped, timed out or was killed.
    Stopped(String),
    /// The guest could not be started at all.
    NotRun(String),
}

impl Observed {
    /// What a run in this process did, or why it could not start.
    pub fn of(result: Result<host::RunOutcome, host::Error>) -> Self {
        match result {
            Ok(outcome) => Observed {
                ending: match outcome.termination {
                    host::Termination::Exited(code) => Ending::Exited(code),
                    host::Termination::Trapped(_) => Ending::Stopped(outcome.to_string()),
                },
                stdout: Captured {
                    bytes: outcome.stdout,
                    truncated: outcome.stdout_truncated,
                },
                stderr: Captured {
                    bytes: outcome.stderr,
                    truncated: outcome.stderr_truncated,
                },
            },
            Err(error) => Observed::not_run(host::text::one_line(&host::text::with_causes(&error))),
        }
    }

    /// A run that could not start, and why.
    pub fn not_run(reason: String) -> Self {
        Observed {
            ending: Ending::NotRun(reason),
            stdout: Captured::default(),
            stderr: Captured::default(),
        }
    }
}

/// A stream as the reference runner reads it: text with universal
/// newlines, taken a number of characters at a time.
struct Stream {
    text: Vec<char>,
    at: usize,
    truncated: bool,
}

impl Stream {
    fn new(captured: &Captured) -> Stream {
        Stream {
            text: decode(&captured.bytes, true),
            at: 0,
            truncated: captured.truncated,
        }
    }

    fn take(&mut self, count: usize) -> String {
        let end = (self.at + count).min(self.text.len());
        let taken = self.text[self.at..end].iter().collect();
        self.at = end;
        taken
    }
}

/// Output as the reference runner's text pipes read it: UTF-8 (invalid
/// bytes replaced) with universal newlines (`\r\n` and `\r` read as `\n`).
/// While more may come (`complete` false), a character cut at the end is
/// left out until the rest arrives; a `\r` is read at once, as `\r\n`
/// gives the same one `\n`.
pub fn decode(bytes: &[u8], complete: bool) -> Vec<char> {
    let whole = match std::str::from_utf8(bytes) {
        Err(e) if !complete && e.error_len().is_none() => &bytes[..e.valid_up_to()],
        _ => bytes,
    };
    let text = String::from_utf8_lossy(whole).replace("\r\n", "\n").replace('\r', "\n");
    text.chars().collect()
}

/// The failure of a `read` of `id` that expected `payload` and got `got`,
/// `from` characters into the stream, if it differs.
pub fn read_failure(id: &str, payload: &str, from: usize, got: &str, truncated: bool) -> Option<String> {
    let difference = compare(payload, got)?;
    let place = if from > 0 {
        format!(" (after {from} characters)")
    } else {
        String::new()
    };
    let cut = if truncated {
        " (cut at the --max-output limit)"
    } else {
        ""
    };
    Some(format!("{id}{place} {difference}{cut}"))
}

/// The failure of a `wait` for `exit_code` after the run ended so, if it did not end with it.
pub fn wait_failure(exit_code: i32, ending: &Ending) -> Option<String> {
    match ending {
        Ending::Exited(code) if *code == exit_code => None,
        Ending::Exited(code) => Some(format!("exit code {code}, expected {exit_code}")),
        Ending::Stopped(why) => Some(format!("{why}; expected exit code {exit_code}")),
        Ending::NotRun(why) => Some(format!("could not run: {why}")),
    }
}

/// Adds what the guest said on stderr to `failures` when there are some
/// and no `read` showed it: an unexpected ending is easier to understand with it.
pub fn stderr_note(failures: &mut Vec<String>, stderr_read: bool, stderr: &[u8]) {
    if !failures.is_empty() && !stderr_read && !stderr.is_empty() {
        failures.push(format!("stderr was {}", excerpt(stderr, 0)));
    }
}

/// Checks the operations after a `run` against what the guest did, in
/// order, up to the first that fails.
pub fn check(steps: &[Operation], observed: &Observed) -> Vec<String> {
    let mut stdout = Stream::new(&observed.stdout);
    let mut stderr = Stream::new(&observed.stderr);
    let mut stderr_read = false;
    let mut failures = Vec::new();
    for step in steps {
        let failure = match step {
            Operation::Read { id, payload } => {
                let stream = match id.as_str() {
                    "stderr" => {
                        stderr_read = true;
                        &mut stderr
                    }
                    _ => &mut stdout,
                };
                let from = stream.at;
                let got = stream.take(payload.chars().count());
                read_failure(id, payload, from, &got, stream.truncated)
            }
            Operation::Wait { exit_code } => wait_failure(*exit_code, &observed.ending),
            _ => None,
        };
        if let Some(failure) = failure {
            failures.push(failure);
            break;
        }
    }
    stderr_note(&mut failures, stderr_read, &observed.stderr.bytes);
    failures
}

/// Where `actual` first departs from `expected`, with both around that point.
pub fn compare(expected: &str, actual: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let (expected, actual) = (expected.as_bytes(), actual.as_bytes());
    let at = expected.iter().zip(actual).take_while(|(a, b)| a == b).count();
    // Start a little before the difference so it is seen in context.
    let from = at.saturating_sub(20);
    Some(format!(
        "differs at byte {at}: got {}, expected {}",
        excerpt(actual, from),
        excerpt(expected, from)
    ))
}

/// Up to 80 bytes of `bytes` from `from`, quoted and escaped, with `…` where cut.
fn excerpt(bytes: &[u8], from: usize) -> String {
    const WIDTH: usize = 80;
    let from = from.min(bytes.len());
    let to = bytes.len().min(from + WIDTH);
    let text = String::from_utf8_lossy(&bytes[from..to]);
    let before = if from > 0 { "…" } else { "" };
    let after = if to < bytes.len() { "…" } else { "" };
    escape_controls(&format!("{before}{text:?}{after}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32, stdout: &str) -> Observed {
        Observed {
            ending: Ending::Exited(code),
            stdout: Captured::whole(stdout.as_bytes().to_vec()),
            stderr: Captured::default(),
        }
    }

    fn read(id: &str, payload: &str) -> Operation {
        Operation::Read {
            id: id.into(),
            payload: payload.into(),
        }
    }

    #[test]
    fn a_matching_run_has_no_failures() {
        let steps = [read("stdout", "hi\n"), Operation::Wait { exit_code: 3 }];
        assert!(check(&steps, &exited(3, "hi\n")).is_empty());
        // Output that is not read is not checked.
        assert!(check(&[Operation::Wait { exit_code: 0 }], &exited(0, "anything")).is_empty());
    }

    #[test]
    fn reads_take_the_stream_in_order_as_the_reference_runner_does() {
        let steps = [
            read("stdout", "one "),
            read("stdout", "two"),
            Operation::Wait { exit_code: 0 },
        ];
        assert!(check(&steps, &exited(0, "one two and more")).is_empty());
        let failures = check(&steps, &exited(0, "one six"));
        assert_eq!(
            failures,
            [r#"stdout (after 4 characters) differs at byte 0: got "six", expected "two""#]
        );
        // Universal newlines, and characters rather than bytes.
        let steps = [read("stdout", "é\nx\n"), Operation::Wait { exit_code: 0 }];
        assert!(check(&steps, &exited(0, "é\r\nx\r")).is_empty());
    }

    #[test]
    fn the_first_unmet_expectation_is_named() {
        let steps = [read("stdout", "hello\n"), Operation::Wait { exit_code: 1 }];
        let failures = check(&steps, &exited(0, "help\n"));
        assert_eq!(
            failures,
            [r#"stdout differs at byte 3: got "help\n", expected "hello\n""#]
        );
        let failures = check(&steps, &exited(0, "hello\n"));
        assert_eq!(failures, ["exit code 0, expected 1"]);
    }

    #[test]
    fn long_output_is_shown_around_the_difference() {
        let expected = format!("{}A{}", "x".repeat(100), "y".repeat(100));
        let actual = format!("{}B{}", "x".repeat(100), "y".repeat(100));
        let message = compare(&expected, &actual).unwrap();
        assert!(
            message.starts_with("differs at byte 100: got …\"xxxxxxxxxxxxxxxxxxxxBy"),
            "{message}"
        );
        assert!(message.ends_with("y\"…"), "{message}");
    }

    #[test]
    fn guest_output_never_reaches_the_terminal_raw() {
        let mut observed = exited(1, "");
        observed.stderr.bytes = b"\x1b[2J\x9b31m".to_vec();
        let failures = check(&[Operation::Wait { exit_code: 0 }], &observed);
        let shown = failures.join(" ");
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert!(shown.contains(r"\u{1b}[2J"), "{shown}");
    }
}
