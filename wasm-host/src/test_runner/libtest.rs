//! What libtest (the harness `cargo test` builds) speaks: the arguments
//! `cargo test -- ARGS` hands it, its `--list --format terse` listing,
//! what it prints around one test's own output, and its console format,
//! which `wasm-host test` reproduces for the tests it runs one per instance.

use std::collections::HashSet;
use std::num::NonZeroUsize;

/// The libtest arguments `wasm-host test` honours itself. Anything else
/// (`--list`, `--bench`, `--format json`, `-Z ...`) is for the guest's own
/// harness: see [`parse`].
#[derive(Debug, Default, PartialEq)]
pub struct LibtestArgs {
    /// Run the tests whose name contains any of these (equals, with `--exact`).
    pub filters: Vec<String>,
    pub skip: Vec<String>,
    pub exact: bool,
    /// Run only the ignored tests.
    pub ignored: bool,
    pub include_ignored: bool,
    /// Print each test's output as it comes, failing or not.
    pub nocapture: bool,
    /// List the passed tests at the end, each with its output.
    pub show_output: bool,
    pub test_threads: Option<NonZeroUsize>,
    /// One character per test (`-q`, `--format terse`).
    pub terse: bool,
    pub color: Color,
    /// Under a trapped test's reason, its wasm backtrace: `RUST_BACKTRACE`,
    /// for which std prints a panic's backtrace natively (the guest is not
    /// given it: its std has no backtrace to print).
    pub backtrace: Backtrace,
}

/// What `RUST_BACKTRACE` asks std for: nothing (unset or `0`), the frames
/// between std's short-backtrace markers (the test's own code, as
/// `RUST_BACKTRACE=1` prints them), or every frame (`full`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Backtrace {
    #[default]
    Off,
    Short,
    Full,
}

impl Backtrace {
    pub fn of(variable: Option<&str>) -> Backtrace {
        match variable {
            None | Some("0") => Backtrace::Off,
            Some("full") => Backtrace::Full,
            Some(_) => Backtrace::Short,
        }
    }

    /// The lines of Wasmtime's `backtrace` (its frames under a heading,
    /// perhaps a note after them) to print: short, std's frames of the
    /// panic and of libtest around the test's own are left out, and
    /// names lose their hashes, as std prints them.
    pub fn frames(self, backtrace: &str) -> Option<String> {
        let mut lines = backtrace.lines().skip(1).peekable();
        // Each function: its `N: 0x... - name` line, or `- name` for one
        // inlined into the frame above (with WASMTIME_BACKTRACE_DETAILS),
        // then its `at FILE:LINE`.
        let mut functions: Vec<Vec<&str>> = Vec::new();
        while let Some(line) = lines.next_if(|line| is_function(line)) {
            let mut function = vec![line];
            while let Some(at) = lines.next_if(|line| line.trim_start().starts_with("at ")) {
                function.push(at);
            }
            functions.push(function);
        }
        let notes = lines;
        let has = |function: &Vec<&str>, marker: &str| function[0].contains(marker);
        let kept: Vec<String> = match self {
            Backtrace::Off => return None,
            Backtrace::Full => functions.iter().flatten().map(|line| line.to_string()).collect(),
            Backtrace::Short => {
                let start = (functions
                    .iter()
                    .rposition(|function| has(function, "__rust_end_short_backtrace")))
                .map_or(0, |at| at + 1);
                let end = (functions[start..].iter())
                    .position(|function| has(function, "__rust_begin_short_backtrace"))
                    .map_or(functions.len(), |at| start + at);
                functions[start..end]
                    .iter()
                    .flatten()
                    .map(|line| without_hashes(line))
                    .collect()
            }
        };
        let lines: Vec<String> = kept.into_iter().chain(notes.map(str::to_owned)).collect();
        (!lines.is_empty()).then(|| format!("wasm backtrace:\n{}", lines.join("\n")))
    }
}

/// `   12:  0x3b2a9 - module!name`, or `- name` for a function inlined
/// into the frame above: a function's first line.
fn is_function(line: &str) -> bool {
    let line = line.trim_start();
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0 && line[digits..].starts_with(':')) || line.starts_with("- ")
}

/// `std[a88812da5ee6ad9e]::f::h06184268c71ac9d0` as `std::f`: a symbol's
/// crate disambiguators (v0 mangling) and its hash (legacy mangling, the
/// name's last part: a module named like one is kept, as std keeps it).
fn without_hashes(line: &str) -> String {
    let hex16 = |text: &str| text.len() >= 16 && text.as_bytes()[..16].iter().all(u8::is_ascii_hexdigit);
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(['[', ':']) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        if let Some(hash) = from
            .strip_prefix('[')
            .filter(|hash| hex16(hash) && hash[16..].starts_with(']'))
        {
            rest = &hash[17..];
        } else if let Some(hash) = from.strip_prefix("::h").filter(|hash| {
            hex16(hash) && !hash[16..].starts_with(|c: char| c.is_ascii_alphanumeric() || "_:".contains(c))
        }) {
            rest = &hash[16..];
        } else {
            out.push_str(&from[..1]);
            rest = &from[1..];
        }
    }
    out.push_str(rest);
    out
}

/// libtest's `--color`: `auto` colours the verdicts on a terminal, unless
/// `--nocapture` (the tests' own output comes in between).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    #[default]
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether verdicts are coloured, writing to a terminal or not.
    pub fn colors(self, nocapture: bool, terminal: bool) -> bool {
        match self {
            Color::Auto => terminal && !nocapture,
            Color::Always => true,
            Color::Never => false,
        }
    }
}

/// The colours libtest gives its verdicts.
#[derive(Debug, Clone, Copy)]
pub enum Hue {
    Green,
    Red,
    Yellow,
}

/// The escapes that colour a verdict on the terminal TERM names, as
/// libtest finds them: terminfo's `setaf` and reset.
#[derive(Debug)]
pub struct Palette {
    green: String,
    red: String,
    yellow: String,
    reset: String,
}

impl Palette {
    /// The palette of the terminal TERM names; `None` where TERM is unset
    /// or names no terminal known here (libtest then writes no colour,
    /// even with `--color always`).
    pub fn of_terminal() -> Option<Palette> {
        use term::Terminal;
        let mut terminal = term::terminfo::TerminfoTerminal::new(Vec::new())?;
        let mut escape = |hue: Option<term::color::Color>| -> Option<String> {
            match hue {
                Some(color) => terminal.fg(color).ok()?,
                None => terminal.reset().ok()?,
            }
            String::from_utf8(std::mem::take(terminal.get_mut())).ok()
        };
        Some(Palette {
            green: escape(Some(term::color::GREEN))?,
            red: escape(Some(term::color::RED))?,
            yellow: escape(Some(term::color::YELLOW))?,
            reset: escape(None)?,
        })
    }

    /// `word` in `hue` with a palette, as libtest writes a verdict; as it
    /// is without.
    pub fn paint(palette: Option<&Palette>, word: &str, hue: Hue) -> String {
        let Some(palette) = palette else {
            return word.to_owned();
        };
        let color = match hue {
            Hue::Green => &palette.green,
            Hue::Red => &palette.red,
            Hue::Yellow => &palette.yellow,
        };
        format!("{color}{word}{}", palette.reset)
    }
}

/// The arguments as `wasm-host test` understands them, or `None` when one
/// of them is for the harness alone: the run is then the guest's own, in
/// one instance, as `wasm-host run` would run it.
pub fn parse(args: &[String]) -> Option<LibtestArgs> {
    /// The options that take a value; the others are flags.
    const VALUED: [&str; 4] = ["--skip", "--test-threads", "--format", "--color"];
    let mut parsed = LibtestArgs::default();
    // As libtest reads them: `--format`, wherever it comes, over `-q`.
    let (mut quiet, mut format) = (false, None);
    // libtest refuses an option given twice (but `--skip`), and a flag
    // given a value: the harness's errors.
    let mut given = HashSet::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let flag = if flag == "-q" { "--quiet" } else { flag };
        if flag.starts_with('-') && flag != "--skip" && !given.insert(flag) {
            return None;
        }
        if inline.is_some() && !VALUED.contains(&flag) {
            return None;
        }
        let mut value = || inline.clone().or_else(|| args.next().cloned());
        match flag {
            "--exact" => parsed.exact = true,
            "--ignored" => parsed.ignored = true,
            "--include-ignored" => parsed.include_ignored = true,
            "--nocapture" | "--no-capture" => parsed.nocapture = true,
            "--show-output" => parsed.show_output = true,
            "--quiet" => quiet = true,
            "--skip" => parsed.skip.push(value()?),
            "--test-threads" => parsed.test_threads = Some(value()?.parse().ok()?),
            "--format" => match value()?.as_str() {
                "terse" => format = Some(true),
                "pretty" => format = Some(false),
                _ => return None,
            },
            "--color" => {
                parsed.color = match value()?.as_str() {
                    "auto" => Color::Auto,
                    "always" => Color::Always,
                    "never" => Color::Never,
                    // libtest's own error, from the harness.
                    _ => return None,
                }
            }
            // `--test` is what cargo passes a harness to say "run the tests".
            "--test" => {}
            _ if flag.starts_with('-') => return None,
            _ => parsed.filters.push(arg.clone()),
        }
    }
    parsed.terse = format.unwrap_or(quiet);
    Some(parsed)
}

impl LibtestArgs {
    /// With what libtest reads from its environment where no argument
    /// says otherwise: `RUST_TEST_NOCAPTURE` (anything but `0`) and
    /// `RUST_TEST_THREADS`.
    /// A `RUST_TEST_THREADS` that is no positive count is libtest's error.
    pub fn with_environment(mut self, var: impl Fn(&str) -> Option<String>) -> Result<LibtestArgs, String> {
        self.nocapture |= var("RUST_TEST_NOCAPTURE").is_some_and(|value| value != "0");
        self.backtrace = Backtrace::of(var("RUST_BACKTRACE").as_deref());
        if self.test_threads.is_none()
            && let Some(threads) = var("RUST_TEST_THREADS")
        {
            let count = threads.parse();
            let refused = || format!("RUST_TEST_THREADS is `{threads}`, should be a positive integer");
            self.test_threads = Some(count.map_err(|_| refused())?);
        }
        Ok(self)
    }

    /// Whether libtest would run a test of this name (ignored or not) with
    /// these filters.
    pub fn selects(&self, name: &str) -> bool {
        let matches = |pattern: &String| match self.exact {
            true => name == pattern,
            false => name.contains(pattern.as_str()),
        };
        (self.filters.is_empty() || self.filters.iter().any(matches)) && !self.skip.iter().any(matches)
    }

    /// What to do with a selected test that is (or is not) marked ignored.
    pub fn runs(&self, ignored: bool) -> Selection {
        match (ignored, self.ignored, self.include_ignored) {
            (_, _, true) | (true, true, _) => Selection::Run,
            (false, true, false) => Selection::FilteredOut,
            (true, false, false) => Selection::Ignored,
            (false, false, false) => Selection::Run,
        }
    }
}

/// A test's fate before it runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Selection {
    Run,
    /// Reported as `ignored` without running.
    Ignored,
    /// Not reported, counted as filtered out (`--ignored` leaves out the rest).
    FilteredOut,
}

/// The arguments that make libtest run exactly `name` and nothing else,
/// its output not captured (a test that aborts would take libtest's
/// capture with it: the instance's own streams keep it instead).
pub fn one_test(name: &str) -> [&str; 6] {
    [
        "--exact",
        name,
        "--include-ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ]
}

/// The arguments that list every test, ignored or not: `NAME: test` lines.
pub const LIST: [&str; 3] = ["--list", "--format", "terse"];
/// The arguments that list the ignored tests alone.
pub const LIST_IGNORED: [&str; 4] = ["--list", "--format", "terse", "--ignored"];

/// The test names of a terse listing (benchmarks left out: `cargo test`
/// does not run them).
pub fn listed_tests(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

/// The reasons libtest gives for the tests it ignored
/// (`test NAME ... ignored, REASON` lines), by name.
pub fn ignore_reasons(stdout: &str) -> impl Iterator<Item = (String, String)> + '_ {
    stdout.lines().filter_map(|line| {
        let (name, verdict) = line.strip_prefix("test ")?.split_once(" ... ")?;
        Some((name.to_owned(), verdict.strip_prefix("ignored, ")?.to_owned()))
    })
}

/// What libtest itself said of a test it ran alone, from the instance's stdout.
#[derive(Debug, PartialEq, Eq)]
pub struct OneTest<'a> {
    /// The test's own output: what libtest wrote around it left out.
    pub output: &'a str,
    /// libtest ignored the test when asked to run it: a `#[should_panic]`
    /// test, which libtest cannot check where a panic aborts (wasm).
    pub ignored_should_panic: bool,
}

/// Splits what libtest printed when running one test (`one_test`, pretty
/// format) from what the test printed: `running 1 test`, `test NAME ... `,
/// then the test's output, then (unless the test aborted) `ok` or
/// `FAILED`, the failures list and the result line.
pub fn one_test_output(stdout: &str) -> OneTest<'_> {
    let Some((header, mut output)) = stdout.split_once(" ... ") else {
        return OneTest {
            output: stdout,
            ignored_should_panic: false,
        };
    };
    if header.ends_with(" - should panic") && output.starts_with("ignored") {
        return OneTest {
            output: "",
            ignored_should_panic: true,
        };
    }
    if let Some(end) = output.rfind("\ntest result: ") {
        output = &output[..end];
        if let Some(failures) = output.rfind("\n\nfailures:\n\nfailures:\n") {
            output = &output[..failures];
        }
        output = output.trim_end_matches('\n');
        for verdict in ["ok", "FAILED"] {
            if let Some(rest) = output.strip_suffix(verdict) {
                output = rest;
                break;
            }
        }
    }
    OneTest {
        output,
        ignored_should_panic: false,
    }
}

/// Where libtest's terse format stands: 87 marks (`.`, `i`) a line, each
/// line ended by the count of tests so far; a failed test gets a line of
/// its own, `NAME --- FAILED`, the line of marks it cuts short ended first.
#[derive(Debug, Default)]
pub struct Terse {
    /// The tests reported so far, failed or not.
    reported: usize,
    /// The marks on the line being written.
    column: usize,
}

impl Terse {
    /// Counts a mark: what follows it (the count and the line's end,
    /// every 87 marks).
    pub fn mark(&mut self, total: usize) -> Option<String> {
        self.reported += 1;
        self.column += 1;
        (self.column == 87).then(|| self.line_end(total))
    }

    /// Counts a failed test: what comes before its `NAME --- FAILED`
    /// line (the end of a line of marks it cuts short).
    pub fn failure(&mut self, total: usize) -> Option<String> {
        let end = (self.column != 0).then(|| self.line_end(total));
        self.reported += 1;
        end
    }

    fn line_end(&mut self, total: usize) -> String {
        self.column = 0;
        format!(" {}/{total}\n", self.reported)
    }
}

/// libtest's closing line: `test result: ok. 1 passed; ...`, its verdict
/// coloured with `palette`.
pub fn result_line(counts: &Counts, seconds: f64, palette: Option<&Palette>) -> String {
    format!(
        "test result: {}. {} passed; {} failed; {} ignored; 0 measured; {} filtered out; finished in {seconds:.2}s",
        match counts.failed {
            0 => Palette::paint(palette, "ok", Hue::Green),
            _ => Palette::paint(palette, "FAILED", Hue::Red),
        },
        counts.passed,
        counts.failed,
        counts.ignored,
        counts.filtered_out,
    )
}

/// The counts of libtest's result line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
    pub filtered_out: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Option<LibtestArgs> {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_arguments_cargo_and_nextest_pass_are_understood() {
        let parsed = args(&[
            "--exact",
            "a::b",
            "--nocapture",
            "--skip=c",
            "--test-threads",
            "3",
            "-q",
        ])
        .unwrap();
        assert_eq!(parsed.filters, ["a::b"]);
        assert_eq!(parsed.skip, ["c"]);
        assert!(parsed.exact && parsed.nocapture && parsed.terse);
        assert_eq!(parsed.test_threads, NonZeroUsize::new(3));
        assert!(
            args(&["--format", "terse", "--color", "never", "--include-ignored"])
                .unwrap()
                .terse
        );
        assert_eq!(args(&["--test-threads"]), None, "a flag without its value");
        assert!(args(&["--show-output"]).unwrap().show_output);
        assert_eq!(args(&["--color=always"]).unwrap().color, Color::Always);
        assert_eq!(args(&["--color", "never"]).unwrap().color, Color::Never);
        assert_eq!(args(&["--color", "sometimes"]), None, "libtest's to refuse");
    }

    #[test]
    fn an_argument_reads_as_libtests_getopts_reads_it() {
        // `--format` wins over `-q` wherever it comes (`cargo test -q`
        // passes `--quiet` after `-- ARGS`).
        assert!(!args(&["--format", "pretty", "-q"]).unwrap().terse);
        assert!(!args(&["-q", "--format=pretty"]).unwrap().terse);
        assert!(args(&["--format", "terse"]).unwrap().terse);
        // An option given twice is libtest's error (`Option 'color' given
        // more than once`), as is a value given to a flag: the harness's to
        // refuse. `--skip` alone may be given many times.
        for refused in [
            &["--color", "always", "--color", "never"][..],
            &["-q", "--quiet"],
            &["--exact", "--exact"],
            &["--test-threads=2", "--test-threads", "3"],
            &["--exact=yes"],
        ] {
            assert_eq!(args(refused), None, "{refused:?}");
        }
        assert_eq!(args(&["--skip", "a", "--skip=b"]).unwrap().skip, ["a", "b"]);
    }

    #[test]
    fn a_terse_line_ends_as_libtests_every_87_tests() {
        // Native libtest's first lines over chrono's 258 tests (`-q`).
        let mut terse = Terse::default();
        let marks: String = (1..=258)
            .map(|_| format!(".{}", terse.mark(258).unwrap_or_default()))
            .collect();
        let lines: Vec<&str> = marks.lines().collect();
        assert_eq!(lines[0], format!("{} 87/258", ".".repeat(87)));
        assert_eq!(lines[1], format!("{} 174/258", ".".repeat(87)));
        assert_eq!(
            lines[2],
            ".".repeat(84),
            "the last line left for the result line to end"
        );
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn a_failure_ends_the_line_of_marks_and_the_next_starts_afresh() {
        // Native libtest (`-q --test-threads 1`): `.i.` then a failure, a
        // failure first, 90 passing tests.
        let mut terse = Terse::default();
        let mut written = String::new();
        let mut write = |mark: &str, terse: &mut Terse| match mark {
            "F" => {
                written += &terse.failure(94).unwrap_or_default();
                written += "NAME --- FAILED\n";
            }
            _ => written += &format!("{mark}{}", terse.mark(94).unwrap_or_default()),
        };
        for mark in [".", "i", ".", "F", "F"]
            .into_iter()
            .chain(std::iter::repeat_n(".", 89))
        {
            write(mark, &mut terse);
        }
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines[..3], [".i. 3/94", "NAME --- FAILED", "NAME --- FAILED"]);
        assert_eq!(lines[3], format!("{} 92/94", ".".repeat(87)));
        assert_eq!(lines[4], "..");
    }

    #[test]
    fn verdicts_are_coloured_as_libtest_colours_them() {
        assert!(Color::Auto.colors(false, true));
        assert!(!Color::Auto.colors(false, false), "not on a pipe");
        assert!(!Color::Auto.colors(true, true), "not amid the tests' own output");
        assert!(Color::Always.colors(true, false));
        assert!(!Color::Never.colors(false, true));
        let palette = Palette {
            green: "<g>".to_owned(),
            red: "<r>".to_owned(),
            yellow: "<y>".to_owned(),
            reset: "</>".to_owned(),
        };
        assert_eq!(Palette::paint(Some(&palette), "ignored", Hue::Yellow), "<y>ignored</>");
        assert_eq!(Palette::paint(None, "ok", Hue::Green), "ok");
        let failed = Counts {
            failed: 1,
            ..Counts::default()
        };
        assert!(result_line(&failed, 0.0, Some(&palette)).starts_with("test result: <r>FAILED</>. 0 passed; 1 failed"));
        assert!(result_line(&Counts::default(), 0.0, Some(&palette)).starts_with("test result: <g>ok</>. 0 passed"));
    }

    #[test]
    fn libtests_environment_counts_where_no_argument_says_otherwise() {
        let environment = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| Some(pairs.iter().find(|(key, _)| *key == name)?.1.to_owned())
        };
        let from = |list: &[&str], pairs| args(list).unwrap().with_environment(environment(pairs));
        let set = from(&[], &[("RUST_TEST_NOCAPTURE", "1"), ("RUST_TEST_THREADS", "3")]).unwrap();
        assert!(set.nocapture);
        assert_eq!(set.test_threads, NonZeroUsize::new(3));
        let zero = from(&[], &[("RUST_TEST_NOCAPTURE", "0")]).unwrap();
        assert!(!zero.nocapture);
        assert_eq!(zero.test_threads, None);
        let refused = from(&[], &[("RUST_TEST_THREADS", "0")]).unwrap_err();
        assert_eq!(refused, "RUST_TEST_THREADS is `0`, should be a positive integer");
        assert!(from(&[], &[("RUST_TEST_THREADS", "x")]).is_err());
        let argued = from(&["--test-threads", "2"], &[("RUST_TEST_THREADS", "0")]).unwrap();
        assert_eq!(argued.test_threads, NonZeroUsize::new(2));
        assert!(
            from(&["--nocapture"], &[("RUST_TEST_NOCAPTURE", "0")])
                .unwrap()
                .nocapture
        );
        let backtrace = |pairs| from(&[], pairs).unwrap().backtrace;
        assert_eq!(backtrace(&[]), Backtrace::Off);
        assert_eq!(backtrace(&[("RUST_BACKTRACE", "0")]), Backtrace::Off);
        assert_eq!(backtrace(&[("RUST_BACKTRACE", "1")]), Backtrace::Short);
        assert_eq!(backtrace(&[("RUST_BACKTRACE", "yes")]), Backtrace::Short);
        assert_eq!(backtrace(&[("RUST_BACKTRACE", "full")]), Backtrace::Full);
    }

    /// Wasmtime's backtrace of a test's failed assertion (a wasip1 test
    /// binary's, some frames left out), with file and line for some
    /// functions and one inlined into the frame above.
    const TRAPPED: &str = "\
error while executing at wasm backtrace:
    0:  0x45881 - t.wasm!abort
    1:  0x3bcfc - t.wasm!std[a88812da5ee6ad9e]::sys::backtrace::__rust_end_short_backtrace::<std[a88812da5ee6ad9e]::panicking::panic_handler::{closure#0}, !>
    2:  0x3d245 - t.wasm!__rustc[b7974e8690430dd9]::rust_begin_unwind
    3:  0x4eba1 - t.wasm!core[9f8d08631ff90aa5]::panicking::panic_fmt
                    at /rustc/library/core/src/panicking.rs:80:14
   12:   0x50b8 - t.wasm!fixture::tests::fails::h06184268c71ac9d0
                    at src/lib.rs:31:9
   13:   0x3e83 - t.wasm!fixture::tests::hash_like::h06184268c71ac9d0x::{{closure}}::h8fe82a7bb20a6113
   16:   0x5ca0 - <fn() as core::ops::function::FnOnce<()>>::call_once
                    at /rustc/library/core/src/ops/function.rs:250:5
                - test::__rust_begin_short_backtrace::<fn()>
                    at /rustc/library/test/src/lib.rs:663:18
   17:  0x1886e - t.wasm!<test[21b4df1b1919455c]::types::RunnableTest>::run
note: using the `WASMTIME_BACKTRACE_DETAILS=1` environment variable may show more debugging information";

    #[test]
    fn a_short_backtrace_keeps_the_frames_std_prints_for_rust_backtrace_1() {
        assert_eq!(
            Backtrace::Short.frames(TRAPPED).unwrap(),
            "\
wasm backtrace:
    2:  0x3d245 - t.wasm!__rustc::rust_begin_unwind
    3:  0x4eba1 - t.wasm!core::panicking::panic_fmt
                    at /rustc/library/core/src/panicking.rs:80:14
   12:   0x50b8 - t.wasm!fixture::tests::fails
                    at src/lib.rs:31:9
   13:   0x3e83 - t.wasm!fixture::tests::hash_like::h06184268c71ac9d0x::{{closure}}
   16:   0x5ca0 - <fn() as core::ops::function::FnOnce<()>>::call_once
                    at /rustc/library/core/src/ops/function.rs:250:5
note: using the `WASMTIME_BACKTRACE_DETAILS=1` environment variable may show more debugging information"
        );
        let full = Backtrace::Full.frames(TRAPPED).unwrap();
        assert_eq!(
            full.lines().skip(1).collect::<Vec<_>>(),
            TRAPPED.lines().skip(1).collect::<Vec<_>>()
        );
        assert_eq!(Backtrace::Off.frames(TRAPPED), None);
        // Without std's markers (a trap in the test's own code, not a
        // panic): every frame.
        let unmarked =
            "error while executing at wasm backtrace:\n    0:  0x1 - m!f::h0123456789abcdef\n    1:  0x2 - m!g";
        assert_eq!(
            Backtrace::Short.frames(unmarked).unwrap(),
            "wasm backtrace:\n    0:  0x1 - m!f\n    1:  0x2 - m!g"
        );
        assert_eq!(Backtrace::Short.frames("error while executing"), None);
    }

    /// A function's first line is Wasmtime's `N: ...` or `- name`; a
    /// line that starts with a number or a colon otherwise is none.
    #[test]
    fn only_a_frames_own_line_starts_a_function() {
        assert!(is_function("   12:  0x3b2a9 - m!f"));
        assert!(is_function("                - inlined"));
        for line in [
            "          at src/lib.rs:3:9",
            "note: more",
            "2 frames left out",
            ": no number",
            "",
        ] {
            assert!(!is_function(line), "{line:?}");
        }
    }

    /// Only a crate's disambiguator (16 hex digits in brackets) and a
    /// legacy hash (`::h` and 16 hex digits ending a name) go: a name's
    /// own brackets and segments like a hash stay, short ones too.
    #[test]
    fn only_hashes_are_taken_off_a_name() {
        for kept in [
            "m!<[u8]>::len",
            "m!<[T; 16]>::f",
            "m!a::hi",
            "m!a::h0123456789abcde",
            "m!a::h0123456789abcdef_x",
            "m!a::h0123456789abcdef::f",
            "m![0123456789abcdef0]::f",
        ] {
            assert_eq!(without_hashes(kept), kept);
        }
        assert_eq!(
            without_hashes("m!core[0123456789abcdef]::f::h0123456789abcdef"),
            "m!core::f"
        );
    }

    #[test]
    fn arguments_for_the_harness_alone_leave_the_run_to_it() {
        for harness_only in [
            &["--list"][..],
            &["--bench"],
            &["--format", "json", "-Z", "unstable-options"],
        ] {
            assert_eq!(args(harness_only), None, "{harness_only:?}");
        }
        // What cargo passes a harness, a filter that holds an `=`, and
        // `--color`'s default said out loud are ours to run.
        let ours = args(&["--test", "key=value", "--color", "auto"]).unwrap();
        assert_eq!(ours.filters, ["key=value"]);
        assert_eq!(ours.color, Color::Auto);
    }

    #[test]
    fn the_reasons_libtest_gives_for_ignored_tests_are_read_by_name() {
        let stdout = "\nrunning 3 tests\ntest a ... ignored, slow on wasm\ntest b ... ignored\ntest c ... ok\n";
        let reasons: Vec<(String, String)> = ignore_reasons(stdout).collect();
        assert_eq!(reasons, [("a".to_owned(), "slow on wasm".to_owned())]);
    }

    #[test]
    fn filters_skips_and_ignored_tests_are_selected_as_libtest_selects_them() {
        let parsed = args(&["parse", "sum", "--skip", "slow"]).unwrap();
        assert!(parsed.selects("tests::parses_a_line"));
        assert!(!parsed.selects("tests::parses_a_line_slowly"));
        assert!(!parsed.selects("tests::other"));
        let exact = args(&["--exact", "tests::sum"]).unwrap();
        assert!(exact.selects("tests::sum") && !exact.selects("tests::sum_all"));
        let plain = LibtestArgs::default();
        assert_eq!(
            (plain.runs(false), plain.runs(true)),
            (Selection::Run, Selection::Ignored)
        );
        let only = args(&["--ignored"]).unwrap();
        assert_eq!(
            (only.runs(false), only.runs(true)),
            (Selection::FilteredOut, Selection::Run)
        );
        let all = args(&["--include-ignored"]).unwrap();
        assert_eq!((all.runs(false), all.runs(true)), (Selection::Run, Selection::Run));
    }

    #[test]
    fn a_listing_gives_the_tests_not_the_benchmarks() {
        assert_eq!(listed_tests("a::b: test\nc: benchmark\nd: test\n"), ["a::b", "d"]);
    }

    #[test]
    fn libtests_own_lines_are_taken_off_a_tests_output() {
        let passed = "\nrunning 1 test\ntest t ... hello\nok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 2 filtered out; finished in 0.00s\n\n";
        assert_eq!(one_test_output(passed).output, "hello\n");
        let failed = "\nrunning 1 test\ntest t ... FAILED\n\nfailures:\n\nfailures:\n    t\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\n";
        assert_eq!(one_test_output(failed).output, "");
        let aborted = "\nrunning 1 test\ntest t ... before the panic\n";
        assert_eq!(one_test_output(aborted).output, "before the panic\n");
        let should_panic = "\nrunning 1 test\ntest t - should panic ... ignored\n\ntest result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\n";
        assert!(one_test_output(should_panic).ignored_should_panic);
        assert!(!one_test_output(passed).ignored_should_panic);
        // A test that prints `ignored` first is no should_panic test.
        let says_ignored = "\nrunning 1 test\ntest t ... ignored words\nok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\n";
        assert!(!one_test_output(says_ignored).ignored_should_panic);
        assert_eq!(one_test_output(says_ignored).output, "ignored words\n");
    }
}
