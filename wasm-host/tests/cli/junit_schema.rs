//! The JUnit schema Jenkins reads, as a check on a report: the xunit
//! plugin's `junit-10.xsd` (jenkinsci/xunit-plugin,
//! `src/main/resources/org/jenkinsci/plugins/xunit/types/model/xsd/junit-10.xsd`),
//! its rules written out here: which elements may hold which, the
//! attributes each must (`use="required"`) or may carry, and the pattern of
//! `time` (`SUREFIRE_TIME`). Written out because no XSD validator builds as
//! a plain Rust dependency, and the schema is another project's file; the
//! report was also checked against the file itself with `xmllint --schema`.
//! Beyond the schema: the counts add up, and each suite has its timestamp.

use std::collections::HashMap;
use std::time::Duration;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Children and attributes each element of junit-10.xsd may have; `!`
/// marks a required attribute.
fn rules(element: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match element {
        "testsuites" => (&["testsuite"], &["name", "time", "tests", "failures", "errors"]),
        "testsuite" => (
            &["testsuite", "properties", "testcase", "system-out", "system-err"],
            &[
                "!name",
                "!tests",
                "!failures",
                "!errors",
                "group",
                "time",
                "skipped",
                "timestamp",
                "hostname",
                "id",
                "package",
                "file",
                "log",
                "url",
                "version",
            ],
        ),
        "properties" => (&["property"], &[]),
        "property" => (&[], &["!name", "!value"]),
        "testcase" => (
            &[
                "skipped",
                "error",
                "failure",
                "rerunFailure",
                "rerunError",
                "flakyFailure",
                "flakyError",
                "system-out",
                "system-err",
            ],
            &["!name", "time", "classname", "group"],
        ),
        "failure" | "error" | "skipped" => (&[], &["type", "message"]),
        "rerunFailure" | "rerunError" | "flakyFailure" | "flakyError" => {
            (&["stackTrace", "system-out", "system-err"], &["message", "!type"])
        }
        "system-out" | "system-err" | "stackTrace" => (&[], &[]),
        _ => return None,
    })
}

/// junit-10.xsd's `SUREFIRE_TIME`, the type of a suite's `time`:
/// `(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]{0,3})?`, digits (commas
/// between groups of three allowed) and at most three decimals.
fn is_surefire_time(value: &str) -> bool {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let groups: Vec<&str> = whole.split(',').collect();
    let digits = |text: &str| text.bytes().all(|b| b.is_ascii_digit());
    groups.iter().all(|g| digits(g))
        && groups.iter().skip(1).all(|g| g.len() == 3)
        && (groups.len() == 1 || groups[0].len() <= 3)
        && fraction.len() <= 3
        && digits(fraction)
}

fn attributes(tag: &BytesStart<'_>) -> HashMap<String, String> {
    tag.attributes()
        .map(|a| {
            let a = a.expect("well-formed attribute");
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .expect("well-formed attribute value")
                .into_owned();
            (String::from_utf8(a.key.as_ref().to_vec()).unwrap(), value)
        })
        .collect()
}

fn check_attributes(element: &str, found: &HashMap<String, String>) {
    let (_, allowed) = rules(element).unwrap_or_else(|| panic!("<{element}> is not in the schema"));
    for name in allowed.iter().filter_map(|a| a.strip_prefix('!')) {
        assert!(found.contains_key(name), "<{element}> lacks the required `{name}`");
    }
    for (name, value) in found {
        assert!(
            allowed.iter().any(|a| a.trim_start_matches('!') == name),
            "<{element}> has `{name}`, which the schema does not allow"
        );
        match name.as_str() {
            "tests" | "failures" | "errors" | "skipped" => {
                value
                    .parse::<u64>()
                    .unwrap_or_else(|_| panic!("{name}={value:?} is not a count"));
            }
            "time" if element.starts_with("testsuite") => {
                assert!(
                    is_surefire_time(value),
                    "<{element}> time={value:?} is not a SUREFIRE_TIME"
                )
            }
            "time" => assert!(
                value.parse::<f64>().is_ok_and(|t| t >= 0.0),
                "time={value:?} is not a duration"
            ),
            "timestamp" => assert!(is_date_time(value), "timestamp={value:?} is not an ISO 8601 date-time"),
            _ => {}
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS`, optional fraction, optional `Z` or `±HH:MM`.
fn is_date_time(value: &str) -> bool {
    let shape = |text: &str, pattern: &str| {
        text.len() == pattern.len()
            && text.chars().zip(pattern.chars()).all(|(c, p)| match p {
                'd' => c.is_ascii_digit(),
                _ => c == p,
            })
    };
    if value.len() < 19 || !shape(&value[..19], "dddd-dd-ddTdd:dd:dd") {
        return false;
    }
    let mut rest = &value[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &fraction[digits..];
    }
    rest.is_empty() || rest == "Z" || (rest.len() == 6 && shape(&rest[1..], "dd:dd") && rest.starts_with(['+', '-']))
}

/// Per open `<testsuite>`: its attributes, and what its test cases add up to.
#[derive(Default)]
struct SuiteCounts {
    declared: HashMap<String, String>,
    tests: u64,
    failures: u64,
    errors: u64,
    skipped: u64,
}

/// Panics, saying what is wrong, unless `xml` follows the schema, its
/// counts match its test cases, and no suite took longer than `wall`.
pub fn check(xml: &str, wall: Duration) {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut suite = SuiteCounts::default();
    let mut roots = 0;
    loop {
        let event = reader.read_event().expect("well-formed XML");
        let (tag, empty) = match &event {
            Event::Start(tag) => (Some(tag), false),
            Event::Empty(tag) => (Some(tag), true),
            Event::End(_) => {
                let closed = stack.pop().unwrap();
                if closed == "testsuite" {
                    check_counts(&suite, wall);
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let tag = tag.unwrap();
        let name = String::from_utf8(tag.name().as_ref().to_vec()).unwrap();
        match stack.last() {
            Some(parent) => {
                let (children, _) = rules(parent).unwrap();
                assert!(children.contains(&name.as_str()), "<{parent}> may not hold <{name}>");
            }
            None => {
                assert_eq!(name, "testsuites", "the root is <testsuites>");
                roots += 1;
            }
        }
        let found = attributes(tag);
        check_attributes(&name, &found);
        if name == "failure" || name == "error" {
            assert!(
                found.contains_key("message") && found.contains_key("type"),
                "<{name}> says what and of which type"
            );
        }
        match name.as_str() {
            "testsuite" => {
                suite = SuiteCounts {
                    declared: found,
                    ..SuiteCounts::default()
                }
            }
            "testcase" => suite.tests += 1,
            "failure" => suite.failures += 1,
            "error" => suite.errors += 1,
            "skipped" => suite.skipped += 1,
            _ => {}
        }
        if empty {
            if name == "testsuite" {
                check_counts(&suite, wall);
            }
        } else {
            stack.push(name);
        }
    }
    assert_eq!(roots, 1, "one <testsuites>");
    assert!(stack.is_empty(), "every element is closed");
}

fn check_counts(suite: &SuiteCounts, wall: Duration) {
    let declared = |name: &str| suite.declared.get(name).map_or(0, |v| v.parse::<u64>().unwrap());
    let name = suite.declared.get("name").cloned().unwrap_or_default();
    assert_eq!(declared("tests"), suite.tests, "{name}: tests");
    assert_eq!(declared("failures"), suite.failures, "{name}: failures");
    assert_eq!(declared("errors"), suite.errors, "{name}: errors");
    assert_eq!(declared("skipped"), suite.skipped, "{name}: skipped");
    assert!(
        suite.declared.contains_key("errors"),
        "{name}: errors is always written"
    );
    assert!(
        suite.declared.contains_key("timestamp"),
        "{name}: timestamp is always written"
    );
    let time: f64 = suite.declared.get("time").expect("time").parse().unwrap();
    assert!(
        time <= wall.as_secs_f64(),
        "{name}: time {time} s is more than the run's {wall:?}"
    );
}

#[test]
fn the_check_refuses_what_the_schema_refuses() {
    let good = r#"<testsuites><testsuite name="s" tests="1" failures="1" errors="0" skipped="0" time="0.1" timestamp="2026-01-02T03:04:05.678+00:00"><testcase name="t"><failure message="m" type="x"/></testcase></testsuite></testsuites>"#;
    check(good, Duration::from_secs(1));
    let bad = [
        good.replace(r#"tests="1""#, r#"tests="2""#),
        good.replace(r#" name="s""#, ""),
        good.replace("<failure", "<failed"),
        good.replace(r#"time="0.1""#, r#"time="9""#),
        good.replace("2026-01-02T", "2026-01-02 "),
        good.replace(r#" type="x""#, ""),
        good.replace(r#" errors="0""#, r#" errors="0" colour="red""#),
        // What quick-junit writes and junit-10.xsd refuses.
        good.replace("<testsuites>", r#"<testsuites skipped="0">"#),
        good.replace("<testsuites>", r#"<testsuites timestamp="2026-01-02T03:04:05Z">"#),
        good.replace(r#" errors="0" skipped"#, " skipped"),
        good.replace(r#"time="0.1""#, r#"time="0.1234""#),
        good.replace(
            r#"<testcase name="t">"#,
            r#"<testcase name="t" timestamp="2026-01-02T03:04:05Z">"#,
        ),
    ];
    for xml in bad {
        let result = std::panic::catch_unwind(|| check(&xml, Duration::from_secs(1)));
        assert!(result.is_err(), "accepted: {xml}");
    }
}
