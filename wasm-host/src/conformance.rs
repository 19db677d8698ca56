//! `wasm-host conformance`: the command line of the conformance runner
//! (the `wasm-host-conformance` crate), turned once into its options and
//! executor, and its verdict into the exit status.

use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use conformance::{Executor, NoTests, Options, Partition, Verdict};
use host::Limits;

use crate::limits::{LimitArgs, Output, RuntimePlan};
use crate::status::Failure;

/// The exit status of a run that selects no test (as cargo-nextest's).
pub const NO_TESTS: u8 = 4;

const CONFORMANCE_HELP: &str = "\
Each DIR is a suite in the WASI test suite's format (its doc/specification.md):
every *.wasm directly in it is a test, NAME.json beside it its specification,
either legacy (\"args\", \"env\", \"root\": a directory preopened as the guest's
`/`, \"exit_code\", \"stdout\", \"stderr\"; the older \"dirs\" too) or
operation-based (\"operations\": run, write to stdin, read of stdout/stderr,
wait, connect/send/recv, request, kill; \"proposals\", \"servers\");
manifest.json gives the suite's \"name\" and WASI \"version\" (wasm32-wasip1
modules; wasm32-wasip2 and wasm32-wasip3 components). A guest whose
operations talk to it while it runs (connect, request, a read before a write)
runs live. The `sockets` and `http` proposals are granted on loopback only.
Tests of other WASI versions, or sending a signal (kill) to a command guest,
are skipped with the reason; so, through --adapter, is the `http` proposal,
an HTTP service, connect/send/recv/request/kill or \"servers\". A specification
that breaks a validation rule fails its test, naming the rule; unknown fields
are reported on stderr.

All tests run at once, each on its own copy of its directories (on /dev/shm
when there is one); a directory must be inside its suite. *.cleanup files
below DIR (output of earlier runs) are removed before and after the run. Each failure is
printed as `FAIL SUITE/TEST: reasons` as it happens; the last line is
`N passed, N failed` (and `, N skipped`); a test that fails as the
expectation file says counts as passed, on the console and in both reports.
Progress goes to stderr: a live bar on a terminal, else a line per finished
test (`-q`: none).

Exit status: 0 when no test failed, 1 when one did (an expected failure that
passes counts as failed), 2 for an invalid command line, 4 when no test is
selected (unless --no-tests says otherwise), 126 when the suites could not be
run (a DIR without tests, an unreadable expectation file, a report that cannot
be written).";

// Described on `Command::Conformance` in main.rs.
#[derive(Args, Debug)]
#[command(after_help = CONFORMANCE_HELP)]
pub struct ConformanceArgs {
    /// Suite directories (each with *.wasm tests, optional *.json specs and manifest.json)
    #[arg(value_name = "DIR", required = true)]
    dirs: Vec<PathBuf>,

    /// Tests to run at once [default: the number of CPUs]
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<NonZeroUsize>,

    /// Run only the tests whose name or `SUITE/TEST` matches GLOB; without *?[{ a substring (repeatable)
    #[arg(long, value_name = "GLOB", value_parser = conformance::parse_filter)]
    filter: Vec<String>,

    /// Run only partition K of N: `hash:K/N` (by name) or `count:K/N` (dealt in turn), as cargo-nextest
    #[arg(long, value_name = "KIND:K/N")]
    partition: Option<Partition>,

    /// Expectation file: the suite's TOML (`[[suite]]`, `[[suite.test]]`, `action = "skip"`, `expected = "fail"`) or a JSON skip list `{"SUITE": {"TEST": "reason"}}` (repeatable)
    #[arg(long, short = 'e', visible_alias = "exclude", value_name = "FILE")]
    expectations: Vec<PathBuf>,

    /// Write every test's outcome, failures and duration as JSON (the reference runner's shape) to FILE
    #[arg(long, value_name = "FILE")]
    json_report: Option<PathBuf>,

    /// Write a JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Run each test in a process of its own through this legacy adapter script (`$PYTHON`, default python3, runs it) instead of in this process; --timeout then limits each process
    #[arg(long, value_name = "ADAPTER.py", conflicts_with_all = ["fuel", "max_memory", "max_output", "max_stack"])]
    adapter: Option<PathBuf>,

    /// Print the selected tests (`SUITE/TEST`, and why one would be skipped) instead of running them
    #[arg(long)]
    list: bool,

    /// Stop starting tests after the first that fails the run; those not started are reported as skipped
    #[arg(long)]
    fail_fast: bool,

    /// What a run that selects no test does, as cargo-nextest: fail (exit 4), warn (exit 0 with a warning) or pass
    #[arg(long, value_name = "ACTION", default_value = "fail",
        value_parser = PossibleValuesParser::new(NoTests::NAMES).try_map(|name| name.parse::<NoTests>()))]
    no_tests: NoTests,

    /// No progress on stderr (failures and the summary are still printed)
    #[arg(long, short = 'q')]
    quiet: bool,

    #[command(flatten)]
    limits: LimitArgs,
}

impl ConformanceArgs {
    /// Every decision the options make, taken once, before any suite is read.
    pub fn plan(self) -> Result<Plan, Failure> {
        let adapter = match &self.adapter {
            Some(script) => {
                // clap refuses --fuel and --max-memory with --adapter; their
                // -W forms alike.
                if let Some(key) = self.limits.wasm_instance_limits().next() {
                    return Err(Failure::Usage(format!(
                        "-W {key}: not with --adapter, whose tests each run in a process of their own, limited by --timeout only"
                    )));
                }
                Some(Adapter {
                    python: std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into()),
                    script: std::path::absolute(script)
                        .with_context(|| format!("locating {}", script.display()))
                        .map_err(Failure::Setup)?,
                })
            }
            None => None,
        };
        let options = Options {
            max_stack: self.limits.max_stack(),
            dirs: self.dirs,
            jobs: self.jobs,
            filter: self.filter,
            partition: self.partition,
            expectations: self.expectations,
            json_report: self.json_report,
            junit: self.junit,
            list: self.list,
            fail_fast: self.fail_fast,
            no_tests: self.no_tests,
            quiet: self.quiet,
        };
        Ok(Plan {
            options,
            adapter,
            // Each test's output is kept, to be checked.
            limits: self.limits.limits(Output::Captured),
            runtime: self.limits.runtime(),
        })
    }
}

/// What `conformance` does, decided from its options.
pub struct Plan {
    options: Options,
    /// Each test in a process of its own, through this script, rather than in this one.
    adapter: Option<Adapter>,
    /// Each test's (of an adapter's, the timeout only).
    limits: Limits,
    runtime: RuntimePlan,
}

/// `--adapter`: the interpreter and the script it runs.
struct Adapter {
    python: OsString,
    script: PathBuf,
}

impl Plan {
    /// Runs the suites and returns the status their verdict gives.
    pub fn execute(self) -> Result<u8, Failure> {
        let executor = match self.adapter {
            Some(Adapter { python, script }) => Executor::Adapter {
                python,
                script,
                timeout: self.limits.timeout,
            },
            None => Executor::InProcess {
                runtime: self.runtime.build().map_err(|error| Failure::Setup(error.into()))?,
                limits: self.limits,
            },
        };
        match conformance::run(&self.options, executor).map_err(Failure::Setup)? {
            Verdict::Passed => Ok(0),
            Verdict::Failed => Ok(1),
            Verdict::NoTests => Ok(NO_TESTS),
        }
    }
}
