//! What a run expects of some tests, as the WASI test suite's expectation
//! files say it (`expectations/*/linux.toml`): TOML with `version = 1` and
//! `[[suite]]` tables (`name`) holding `[[suite.test]]` tables (`name`,
//! `action = "skip"` and/or `expected = "fail"` or `"pass"`, and an
//! optional `reason`, which the reference runner ignores and we report).
//! Other keys are ignored, as the reference runner ignores them.
//! The older JSON skip list, `{"SUITE": {"TEST": "reason"}}`, is read too.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// What is expected of one test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectation {
    /// Not run; the reason, when the file gives one.
    pub skip: Option<String>,
    /// Expected to fail (a pass is then reported as a failure), with the file's reason.
    pub fail: Option<String>,
}

/// Expectations by `(suite, test)`.
#[derive(Debug, Default)]
pub struct Expectations(HashMap<(String, String), Expectation>);

impl Expectations {
    /// Reads each file, TOML or (by its `.json` extension) a skip list;
    /// a later file's entry for a test replaces an earlier one's.
    pub fn read(paths: &[impl AsRef<Path>]) -> Result<Expectations> {
        let mut all = Expectations::default();
        for path in paths {
            let path = path.as_ref();
            let text =
                fs::read_to_string(path).with_context(|| format!("cannot read expectations {}", path.display()))?;
            let entries = match path.extension().is_some_and(|e| e == "json") {
                true => skip_list(&text),
                false => toml_file(&text),
            }
            .with_context(|| format!("invalid expectations {}", path.display()))?;
            all.0.extend(entries);
        }
        Ok(all)
    }

    /// What is expected of `test` in `suite` (nothing special by default).
    pub fn get(&self, suite: &str, test: &str) -> Expectation {
        self.0
            .get(&(suite.to_owned(), test.to_owned()))
            .cloned()
            .unwrap_or_default()
    }
}

type Entries = Vec<((String, String), Expectation)>;

fn skip_list(text: &str) -> Result<Entries> {
    let lists: HashMap<String, HashMap<String, String>> =
        serde_json::from_str(text).context("a JSON skip list is {\"SUITE\": {\"TEST\": \"reason\"}}")?;
    Ok(lists
        .into_iter()
        .flat_map(|(suite, tests)| {
            tests.into_iter().map(move |(test, reason)| {
                let skip = Some(reason);
                ((suite.clone(), test), Expectation { skip, fail: None })
            })
        })
        .collect())
}

#[derive(Deserialize)]
struct File {
    version: Option<i64>,
    #[serde(default)]
    suite: Vec<SuiteTable>,
}

#[derive(Deserialize)]
struct SuiteTable {
    name: String,
    #[serde(default)]
    test: Vec<TestTable>,
}

#[derive(Deserialize)]
struct TestTable {
    name: String,
    action: Option<String>,
    expected: Option<String>,
    reason: Option<String>,
}

fn toml_file(text: &str) -> Result<Entries> {
    let file: File = toml::from_str(text)?;
    if let Some(version) = file.version.filter(|v| *v != 1) {
        bail!("unsupported expectation file version {version} (1 is known)");
    }
    let mut entries = Vec::new();
    for suite in file.suite {
        for test in suite.test {
            let fail = match test.expected.as_deref() {
                None | Some("pass") => false,
                Some("fail") => true,
                Some(other) => bail!("{}: `expected` is \"fail\" or \"pass\", not {other:?}", test.name),
            };
            let skip = match test.action.as_deref() {
                None => false,
                Some("skip") => true,
                Some(other) => bail!("{}: `action` is \"skip\", not {other:?}", test.name),
            };
            if test.action.is_none() && test.expected.is_none() {
                bail!("{}: each test sets `action` and/or `expected`", test.name);
            }
            let reason = test.reason.unwrap_or_else(|| "the expectation file says so".to_owned());
            let expectation = Expectation {
                skip: skip.then(|| reason.clone()),
                fail: fail.then_some(reason),
            };
            entries.push(((suite.name.clone(), test.name), expectation));
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, text: &str) -> Result<Expectations> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        Expectations::read(&[path])
    }

    /// The whole format, end to end, is in wasm-host's CLI tests
    /// (`expectation_files_skip_and_expect_failures_as_the_reference_runner_does`).
    #[test]
    fn an_expectation_holds_for_its_own_suite_and_test_only() {
        let toml = "[[suite]]\nname = \"S\"\n[[suite.test]]\nname = \"t\"\nexpected = \"fail\"";
        let expectations = read("e.toml", toml).unwrap();
        let expected = expectations.get("S", "t");
        assert_eq!(expected.fail.as_deref(), Some("the expectation file says so"));
        assert_eq!(expected.skip, None);
        assert_eq!(expectations.get("S", "other"), Expectation::default());
        assert_eq!(expectations.get("T", "t"), Expectation::default());
    }

    #[test]
    fn the_json_skip_list_still_works() {
        let expectations = read("s.json", r#"{"S": {"t": "flaky"}}"#).unwrap();
        assert_eq!(expectations.get("S", "t").skip.as_deref(), Some("flaky"));
    }

    #[test]
    fn a_malformed_file_is_refused_with_what_is_wrong() {
        for (text, expected) in [
            ("version = 2", "version 2"),
            (
                "[[suite]]\nname = \"S\"\n[[suite.test]]\nname = \"t\"\nexpected = \"flaky\"",
                "not \"flaky\"",
            ),
            (
                "[[suite]]\nname = \"S\"\n[[suite.test]]\nname = \"t\"",
                "`action` and/or `expected`",
            ),
            (
                "[[suite]]\nname = \"S\"\n[[suite.test]]\nname = \"t\"\naction = \"run\"",
                "not \"run\"",
            ),
        ] {
            let error = format!("{:#}", read("e.toml", text).unwrap_err());
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
