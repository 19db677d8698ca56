//! A test's specification, `NAME.json` beside `NAME.wasm`, in either of the
//! two styles of the WASI test suite's `doc/specification.md`: the legacy
//! fields (`args`, `env`, `root`, `exit_code`, `stdout`, `stderr`; also the
//! older `dirs`), or `operations` (`run`, `write`, `read`, `wait`, `connect`,
//! `send`, `recv`, `request`, `kill`) with `proposals`, `world` and
//! `servers` (`http`). Both become a list of operations, checked against the
//! specification's validation rules, as the reference runner does.

mod http;

use serde_json::{Map, Value};

pub use http::{Endpoint, EndpointBody, EndpointMode, Request, Server, ServerKind, Signal};

/// The WASI world every test targets unless its specification says otherwise.
pub const CLI_COMMAND: &str = "wasi:cli/command";
/// The world of a guest that serves HTTP, run as `wasmtime serve` runs it.
pub const HTTP_SERVICE: &str = "wasi:http/service";

/// Top-level fields of the legacy style (`dirs` is the older form of `root`).
const LEGACY_FIELDS: &[&str] = &["args", "root", "dirs", "env", "exit_code", "stderr", "stdout"];
/// Top-level fields of the operation-based style.
const OPERATION_FIELDS: &[&str] = &["operations", "proposals", "world", "servers"];
/// The fields whose value (not `null`) makes a specification operation-based
/// (`world` alone does not, in the reference runner).
const OPERATION_STYLE_MARKS: &[&str] = &["operations", "proposals", "servers"];

/// What a test does and expects, as operations run in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub operations: Vec<Operation>,
    /// WASI proposals the test needs (`http`, `sockets`).
    pub proposals: Vec<String>,
    /// The WASI world the test targets.
    pub world: String,
    /// HTTP servers stood up for the test's guest, in the order written.
    pub servers: Vec<Server>,
}

/// One step of a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Run(Run),
    /// Sends `payload` to the guest's stdin (the only writable stream).
    Write {
        id: String,
        payload: String,
    },
    /// The next `payload.chars().count()` characters of `id` (stdout or stderr) are `payload`.
    Read {
        id: String,
        payload: String,
    },
    /// The guest ends with `exit_code`.
    Wait {
        exit_code: i32,
    },
    Connect {
        id: String,
        protocol: String,
    },
    Send {
        id: String,
        payload: String,
    },
    Recv {
        id: String,
        payload: String,
    },
    /// An HTTP request to the guest's service, and the response it must get.
    Request(Box<Request>),
    /// Sends the guest this signal.
    Kill(Signal),
}

/// How the guest is started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    pub args: Vec<String>,
    /// The guest's whole environment, in the order written.
    pub env: Vec<(String, String)>,
    /// Directories to preopen: a path relative to the suite, and where the guest sees it.
    pub dirs: Vec<Preopen>,
}

/// A suite directory granted to the guest, read-write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// As written in the specification, relative to the suite directory.
    pub host: String,
    /// The guest's path: `/` for `root`, the same name for `dirs`.
    pub guest: String,
}

impl Operation {
    /// The operation's `type`, as the specification spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::Run(_) => "run",
            Operation::Write { .. } => "write",
            Operation::Read { .. } => "read",
            Operation::Wait { .. } => "wait",
            Operation::Connect { .. } => "connect",
            Operation::Send { .. } => "send",
            Operation::Recv { .. } => "recv",
            Operation::Request(_) => "request",
            Operation::Kill(_) => "kill",
        }
    }
}

impl Default for Spec {
    /// A test without `NAME.json`: run it and expect exit code 0.
    fn default() -> Self {
        Spec {
            operations: vec![Operation::Run(Run::default()), Operation::Wait { exit_code: 0 }],
            proposals: Vec::new(),
            world: CLI_COMMAND.to_owned(),
            servers: Vec::new(),
        }
    }
}

/// A specification that was read, with the unknown fields it holds.
#[derive(Debug)]
pub struct Parsed {
    pub spec: Spec,
    /// One line per field the specification does not define (reported, not fatal).
    pub warnings: Vec<String>,
}

/// Reads a specification from JSON text. An error names what is wrong,
/// and for a broken validation rule, which rule.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(fields) = value else {
        return Err("a specification is a JSON object".to_owned());
    };
    let mut warnings = Vec::new();
    let spec = if OPERATION_STYLE_MARKS
        .iter()
        .any(|f| fields.get(*f).is_some_and(|v| !v.is_null()))
    {
        check_style(&fields, OPERATION_FIELDS, LEGACY_FIELDS, &mut warnings)?;
        operation_style(&fields, &mut warnings)?
    } else {
        check_style(&fields, LEGACY_FIELDS, OPERATION_FIELDS, &mut warnings)?;
        legacy_style(&fields)?
    };
    validate(&spec.operations)?;
    Ok(Parsed { spec, warnings })
}

/// Refuses a mix of the two styles; warns of fields neither defines.
fn check_style(
    fields: &Map<String, Value>,
    known: &[&str],
    other: &[&str],
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let foreign: Vec<&str> = fields
        .keys()
        .map(String::as_str)
        .filter(|k| other.contains(k))
        .collect();
    if !foreign.is_empty() && fields.keys().any(|k| known.contains(&k.as_str())) {
        return Err(format!(
            "cannot mix the legacy fields ({}) with the operation-based ones ({})",
            LEGACY_FIELDS.join(", "),
            OPERATION_FIELDS.join(", ")
        ));
    }
    for name in fields.keys().filter(|k| !known.contains(&k.as_str())) {
        warnings.push(format!("unknown field `{}`", name.escape_debug()));
    }
    Ok(())
}

fn legacy_style(fields: &Map<String, Value>) -> Result<Spec, String> {
    let mut run = Run {
        args: strings(fields, "args")?,
        env: env(fields)?,
        dirs: Vec::new(),
    };
    if let Some(root) = optional_string(fields, "root")? {
        run.dirs.push(Preopen {
            host: root,
            guest: "/".to_owned(),
        });
    }
    for dir in strings(fields, "dirs")? {
        run.dirs.push(Preopen {
            guest: dir.clone(),
            host: dir,
        });
    }
    let mut operations = vec![Operation::Run(run)];
    for id in ["stdout", "stderr"] {
        if let Some(payload) = optional_string(fields, id)? {
            operations.push(Operation::Read {
                id: id.to_owned(),
                payload,
            });
        }
    }
    operations.push(Operation::Wait {
        exit_code: exit_code(fields)?,
    });
    Ok(Spec {
        operations,
        ..Spec::default()
    })
}

fn operation_style(fields: &Map<String, Value>, warnings: &mut Vec<String>) -> Result<Spec, String> {
    let operations = match fields.get("operations") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, op)| operation(op, warnings).map_err(|e| format!("operation {}: {e}", i + 1)))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`operations` must be a list".to_owned()),
    };
    let proposals = strings(fields, "proposals")?;
    if let Some(unknown) = proposals.iter().find(|p| !["http", "sockets"].contains(&p.as_str())) {
        return Err(format!(
            "unknown proposal `{}` (the specification defines http and sockets)",
            unknown.escape_debug()
        ));
    }
    let world = match fields.get("world") {
        None => CLI_COMMAND.to_owned(),
        Some(Value::String(world)) if [CLI_COMMAND, HTTP_SERVICE].contains(&world.as_str()) => world.clone(),
        Some(Value::String(world)) => return Err(format!("unknown WASI world `{}`", world.escape_debug())),
        Some(other) => return Err(format!("unknown WASI world {other} (the world is a string)")),
    };
    let servers = match fields.get("servers") {
        None | Some(Value::Null) => Vec::new(),
        Some(servers) => http::servers(servers)?,
    };
    Ok(Spec {
        operations,
        proposals,
        world,
        servers,
    })
}

/// Fields each operation type defines besides `type`.
fn operation_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "run" => &["args", "env", "root", "dirs"],
        "wait" => &["exit_code"],
        "read" | "write" | "send" | "recv" => &["id", "payload"],
        "connect" => &["id", "protocol_type"],
        "request" => &["method", "path", "headers", "body", "response"],
        "kill" => &["signal"],
        _ => return None,
    })
}

fn operation(value: &Value, warnings: &mut Vec<String>) -> Result<Operation, String> {
    let Value::Object(fields) = value else {
        return Err("an operation is a JSON object".to_owned());
    };
    let kind = optional_string(fields, "type")?.unwrap_or_default();
    let Some(known) = operation_fields(&kind) else {
        return Err(format!("unsupported operation type `{}`", kind.escape_debug()));
    };
    for name in fields.keys().filter(|k| *k != "type" && !known.contains(&k.as_str())) {
        warnings.push(format!(
            "unknown field `{}` in a `{kind}` operation",
            name.escape_debug()
        ));
    }
    let id_or = |default: &str| Ok::<_, String>(optional_string(fields, "id")?.unwrap_or_else(|| default.to_owned()));
    let required_id = || optional_string(fields, "id")?.ok_or_else(|| format!("`{kind}` needs an `id`"));
    let payload = || Ok::<_, String>(optional_string(fields, "payload")?.unwrap_or_default());
    Ok(match kind.as_str() {
        "run" => match legacy_style(fields)?.operations.into_iter().next() {
            Some(Operation::Run(run)) => Operation::Run(run),
            _ => unreachable!("the legacy style always starts with a run"),
        },
        "wait" => Operation::Wait {
            exit_code: exit_code(fields)?,
        },
        "read" => Operation::Read {
            id: id_or("stdout")?,
            payload: payload()?,
        },
        "write" => Operation::Write {
            id: id_or("write")?,
            payload: payload()?,
        },
        "connect" => Operation::Connect {
            id: id_or("server")?,
            protocol: optional_string(fields, "protocol_type")?.unwrap_or_else(|| "tcp".to_owned()),
        },
        "send" => Operation::Send {
            id: required_id()?,
            payload: payload()?,
        },
        "recv" => Operation::Recv {
            id: required_id()?,
            payload: payload()?,
        },
        "request" => Operation::Request(Box::new(http::request(fields)?)),
        _ => Operation::Kill(http::signal(fields)?),
    })
}

/// The specification's validation rules (and the stream checks the
/// reference runner makes with them). Rule numbers are those of
/// `doc/specification.md`.
fn validate(operations: &[Operation]) -> Result<(), String> {
    const RULE_1: &str = "rule 1: each run is paired with a wait";
    const RULE_2: &str = "rule 2: read, write, connect, send and recv come after a run";
    const RULE_3: &str = "rule 3: connection ids are unique";
    const RULE_4: &str = "rule 4: send and recv use an id a connect defined";
    let mut running = false;
    let mut connections: Vec<&str> = Vec::new();
    for (i, op) in operations.iter().enumerate() {
        let at = format!("operation {} ({})", i + 1, op.kind());
        let broken = |rule: &str, why: &str| Err(format!("breaks validation {rule}: {at} {why}"));
        match op {
            Operation::Run(_) if running => return broken(RULE_1, "starts a run before the last one's wait"),
            Operation::Run(_) => running = true,
            _ if !running => return broken(RULE_2, "has no run before it"),
            Operation::Wait { .. } => {
                running = false;
                connections.clear();
            }
            Operation::Read { id, .. } if id != "stdout" && id != "stderr" => {
                return Err(format!("{at}: reads `{}`, not stdout or stderr", id.escape_debug()));
            }
            Operation::Write { id, .. } if id != "stdin" => {
                return Err(format!("{at}: writes `{}`, not stdin", id.escape_debug()));
            }
            Operation::Connect { protocol, .. } if protocol != "tcp" => {
                return Err(format!("{at}: protocol `{}` is not supported", protocol.escape_debug()));
            }
            Operation::Connect { id, .. } => {
                if connections.contains(&id.as_str()) || ["stdin", "stdout", "stderr"].contains(&id.as_str()) {
                    return broken(RULE_3, &format!("reuses the id `{}`", id.escape_debug()));
                }
                connections.push(id);
            }
            Operation::Send { id, .. } | Operation::Recv { id, .. } if !connections.contains(&id.as_str()) => {
                return broken(
                    RULE_4,
                    &format!("uses `{}`, which no connect defined", id.escape_debug()),
                );
            }
            _ => {}
        }
    }
    if running {
        return Err(format!("breaks validation {RULE_1}: the last run has no wait"));
    }
    Ok(())
}

fn optional_string(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{name}` must be a string")),
    }
}

fn strings(fields: &Map<String, Value>, name: &str) -> Result<Vec<String>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("`{name}` must be a list of strings")),
        Some(_) => Err(format!("`{name}` must be a list of strings")),
    }
}

/// `env` in the order of the file: the guest sees its variables in that order.
fn env(fields: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    match fields.get("env") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(vars)) => vars
            .iter()
            .map(|(name, value)| value.as_str().map(|v| (name.clone(), v.to_owned())))
            .collect::<Option<_>>()
            .ok_or_else(|| "`env` must be an object of string values".to_owned()),
        Some(_) => Err("`env` must be an object of string values".to_owned()),
    }
}

fn exit_code(fields: &Map<String, Value>) -> Result<i32, String> {
    match fields.get("exit_code") {
        None | Some(Value::Null) => Ok(0),
        Some(value) => value
            .as_i64()
            .and_then(|code| i32::try_from(code).ok())
            .ok_or_else(|| "`exit_code` must be an integer".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(text: &str) -> Vec<Operation> {
        parse(text).unwrap().spec.operations
    }

    #[test]
    fn a_legacy_spec_becomes_run_reads_and_wait() {
        let spec =
            parse(r#"{"args": ["a"], "env": {"Z": "1", "A": "2"}, "root": "fs.dir", "stdout": "hi", "exit_code": 3}"#)
                .unwrap()
                .spec;
        assert_eq!(
            spec.operations,
            [
                Operation::Run(Run {
                    args: vec!["a".into()],
                    env: vec![("Z".into(), "1".into()), ("A".into(), "2".into())],
                    dirs: vec![Preopen {
                        host: "fs.dir".into(),
                        guest: "/".into()
                    }],
                }),
                Operation::Read {
                    id: "stdout".into(),
                    payload: "hi".into()
                },
                Operation::Wait { exit_code: 3 },
            ]
        );
        assert_eq!(parse("{}").unwrap().spec, Spec::default());
        assert_eq!(
            ops(r#"{"dirs": ["d.dir"]}"#)[0],
            Operation::Run(Run {
                dirs: vec![Preopen {
                    host: "d.dir".into(),
                    guest: "d.dir".into()
                }],
                ..Run::default()
            })
        );
    }

    #[test]
    fn operations_take_the_specified_defaults() {
        let parsed = ops(r#"{"operations": [{"type": "run"}, {"type": "read"}, {"type": "wait"}]}"#);
        assert_eq!(
            parsed,
            [
                Operation::Run(Run::default()),
                Operation::Read {
                    id: "stdout".into(),
                    payload: String::new()
                },
                Operation::Wait { exit_code: 0 },
            ]
        );
        assert!(ops(r#"{"operations": []}"#).is_empty());
    }

    #[test]
    fn each_validation_rule_is_named_when_broken() {
        let cases = [
            (r#"[{"type": "run"}]"#, "rule 1"),
            (r#"[{"type": "run"}, {"type": "run"}, {"type": "wait"}]"#, "rule 1"),
            (r#"[{"type": "read"}, {"type": "run"}, {"type": "wait"}]"#, "rule 2"),
            (r#"[{"type": "wait"}]"#, "rule 2"),
            (
                r#"[{"type": "run"}, {"type": "connect"}, {"type": "connect"}, {"type": "wait"}]"#,
                "rule 3",
            ),
            (
                r#"[{"type": "run"}, {"type": "send", "id": "x"}, {"type": "wait"}]"#,
                "rule 4",
            ),
        ];
        for (operations, rule) in cases {
            let error = parse(&format!(r#"{{"operations": {operations}}}"#)).unwrap_err();
            assert!(
                error.contains(&format!("breaks validation {rule}")),
                "{operations}: {error}"
            );
        }
        let fine = r#"{"operations": [{"type": "run"}, {"type": "connect"}, {"type": "send", "id": "server"},
            {"type": "recv", "id": "server"}, {"type": "wait"}, {"type": "run"}, {"type": "wait"}]}"#;
        assert!(parse(fine).is_ok());
    }

    #[test]
    fn streams_and_types_are_checked() {
        let bad = [
            (
                r#"{"operations": [{"type": "run"}, {"type": "read", "id": "stdin"}, {"type": "wait"}]}"#,
                "not stdout or stderr",
            ),
            (
                r#"{"operations": [{"type": "run"}, {"type": "write", "payload": "x"}, {"type": "wait"}]}"#,
                "not stdin",
            ),
            (
                r#"{"operations": [{"type": "jump"}]}"#,
                "unsupported operation type `jump`",
            ),
            (
                r#"{"operations": [{"type": "run"}, {"type": "send"}, {"type": "wait"}]}"#,
                "`send` needs an `id`",
            ),
            (r#"{"args": "x"}"#, "`args` must be a list of strings"),
            (r#"{"env": {"A": 1}}"#, "`env` must be an object of string values"),
            (r#"{"exit_code": "1"}"#, "`exit_code` must be an integer"),
            (r#"{"proposals": ["threads"]}"#, "unknown proposal `threads`"),
            (r#"{"args": [], "operations": []}"#, "cannot mix"),
            ("[]", "a JSON object"),
        ];
        for (text, expected) in bad {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn unknown_fields_are_reported_and_the_rest_is_used() {
        let parsed = parse(r#"{"exit_code": 2, "stdin": "x\u001b"}"#).unwrap();
        assert_eq!(parsed.warnings, [r"unknown field `stdin`"]);
        assert_eq!(parsed.spec.operations.last(), Some(&Operation::Wait { exit_code: 2 }));
        let parsed =
            parse(r#"{"operations": [{"type": "run", "cwd": "/"}, {"type": "wait"}], "debug": true}"#).unwrap();
        assert_eq!(
            parsed.warnings,
            ["unknown field `debug`", "unknown field `cwd` in a `run` operation"]
        );
        // A control character in a field's name is escaped, never printed raw.
        let parsed = parse("{\"a\\u001b[2J\": 1}").unwrap();
        assert_eq!(parsed.warnings, [r"unknown field `a\u{1b}[2J`"]);
    }
}
