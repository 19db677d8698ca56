//! The parts of a specification the `http` proposal uses: the `servers` a
//! test stands up for its guest's outgoing requests, the `request`s the
//! runner sends to a guest that serves, and `kill`. Validated as the
//! reference runner's `test_case.py` validates them: where it reads
//! `config.get(key, default)`, a key that is present must have the right
//! type, `null` included.

use serde_json::{Map, Value};

/// The HTTP methods an endpoint may answer.
const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// A server stood up for the test; the guest finds its address in the
/// environment variable [`Server::env_var`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Letters, digits and `_`.
    pub name: String,
    pub kind: ServerKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKind {
    /// Listening on loopback, answering these endpoints (404 for any other).
    Listening(Vec<Endpoint>),
    /// An address with nothing listening: connections are refused.
    Closed,
}

impl Server {
    /// `HTTP_SERVER_<NAME>`, the name uppercased.
    pub fn env_var(&self) -> String {
        format!("HTTP_SERVER_{}", self.name.to_uppercase())
    }
}

/// One route of a listening server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Uppercase, one of [`HTTP_METHODS`].
    pub method: String,
    /// The request target, query included, matched exactly.
    pub path: String,
    pub mode: EndpointMode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointMode {
    /// Answer with this response.
    Static(EndpointResponse),
    /// Answer 200 with the request's body.
    EchoBody,
    /// Answer 200 with the request line, headers and trailers as response headers.
    EchoHeaders,
}

/// What a static endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: EndpointBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointBody {
    /// Sent with a `Content-Length`.
    Whole(String),
    /// Sent chunked, one chunk each, then the trailers.
    Chunked {
        chunks: Vec<String>,
        trailers: Vec<(String, String)>,
    },
}

/// A request the runner sends to the guest's HTTP service, and what must come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub response: ExpectedResponse,
}

/// The response a `request` expects: its status, these headers (others
/// may come too), and exactly this body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedResponse {
    /// Any integer, as in the reference runner (one no response has fails the request).
    pub status: i64,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A signal by its name, as Python's `signal.Signals` has them on Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    pub name: &'static str,
    pub number: i32,
}

/// Python's `signal.Signals` members on Linux, aliases included.
const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGIOT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPOLL", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
    ("SIGRTMIN", 34),
    ("SIGRTMAX", 64),
];

impl Signal {
    pub const INT: Signal = Signal {
        name: "SIGINT",
        number: 2,
    };

    /// Whether a process that does not handle it ends (rather than
    /// ignoring it, stopping or continuing).
    pub fn terminates(self) -> bool {
        !matches!(self.number, 17..=23 | 28)
    }
}

/// `servers`: a list of servers with distinct names (ignoring case).
pub fn servers(value: &Value) -> Result<Vec<Server>, String> {
    let Value::Array(list) = value else {
        return Err("`servers` must be a list".to_owned());
    };
    let servers = list
        .iter()
        .enumerate()
        .map(|(i, server)| self::server(server).map_err(|e| format!("server {}: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut names: Vec<String> = servers.iter().map(|s| s.name.to_uppercase()).collect();
    names.sort();
    let mut duplicates: Vec<&str> = names
        .windows(2)
        .filter(|pair| pair[0] == pair[1])
        .map(|pair| pair[0].as_str())
        .collect();
    duplicates.dedup();
    if !duplicates.is_empty() {
        return Err(format!("duplicate server names: {}", duplicates.join(", ")));
    }
    Ok(servers)
}

fn server(value: &Value) -> Result<Server, String> {
    let fields = object(value, "a server")?;
    let name = match fields.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => return Err("a server's `name` must be a non-empty string".to_owned()),
    };
    // The name becomes part of an environment variable's name.
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "server name `{}` must be letters, digits and `_` only",
            name.escape_debug()
        ));
    }
    let kind = match string_or(fields, "kind", "listening")?.as_str() {
        "closed" if fields.contains_key("endpoints") => {
            return Err(format!("server `{name}` is `closed`, which takes no `endpoints`"));
        }
        "closed" => ServerKind::Closed,
        "listening" => ServerKind::Listening(match fields.get("endpoints") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, e)| endpoint(e).map_err(|e| format!("server `{name}`, endpoint {}: {e}", i + 1)))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(format!("server `{name}`: `endpoints` must be a list")),
        }),
        other => {
            return Err(format!(
                "unknown server kind `{}` (listening or closed)",
                other.escape_debug()
            ));
        }
    };
    Ok(Server { name, kind })
}

fn endpoint(value: &Value) -> Result<Endpoint, String> {
    let fields = object(value, "an endpoint")?;
    let method = string_or(fields, "method", "GET")?.to_uppercase();
    if !HTTP_METHODS.contains(&method.as_str()) {
        return Err(format!("unknown method `{}`", method.escape_debug()));
    }
    let path = string_or(fields, "path", "/")?;
    let mode = match string_or(fields, "mode", "static")?.as_str() {
        mode @ ("echo-body" | "echo-headers") if fields.contains_key("response") => {
            return Err(format!("an endpoint in `{mode}` mode takes no `response`"));
        }
        "echo-body" => EndpointMode::EchoBody,
        "echo-headers" => EndpointMode::EchoHeaders,
        "static" => EndpointMode::Static(endpoint_response(fields.get("response"))?),
        other => {
            return Err(format!(
                "unknown endpoint mode `{}` (static, echo-body or echo-headers)",
                other.escape_debug()
            ));
        }
    };
    Ok(Endpoint { method, path, mode })
}

/// A string is the body of a 200; an object gives status, headers, and a
/// `body` or `chunks` (with `trailers`).
fn endpoint_response(value: Option<&Value>) -> Result<EndpointResponse, String> {
    let fields = match value {
        None => return Ok(whole(String::new())),
        Some(Value::String(body)) => return Ok(whole(body.clone())),
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err("an endpoint's `response` must be a string or an object".to_owned()),
    };
    let expected = expected_response(fields)?;
    let status = u16::try_from(expected.status)
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| format!("status {} is not an HTTP status code", expected.status))?;
    let trailers = string_map(fields, "trailers")?;
    let body = match fields.get("chunks") {
        None | Some(Value::Null) if !trailers.is_empty() => {
            return Err("an endpoint's `trailers` need `chunks`".to_owned());
        }
        None | Some(Value::Null) => EndpointBody::Whole(expected.body),
        Some(_) if fields.contains_key("body") => {
            return Err("an endpoint's response takes `body` or `chunks`, not both".to_owned());
        }
        Some(Value::Array(chunks)) => EndpointBody::Chunked {
            chunks: chunks
                .iter()
                .map(|c| c.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or("`chunks` must be a list of strings")?,
            trailers,
        },
        Some(_) => return Err("`chunks` must be a list of strings".to_owned()),
    };
    Ok(EndpointResponse {
        status,
        headers: expected.headers,
        body,
    })
}

fn whole(body: String) -> EndpointResponse {
    EndpointResponse {
        status: 200,
        headers: Vec::new(),
        body: EndpointBody::Whole(body),
    }
}

/// A `request` operation's fields.
pub fn request(fields: &Map<String, Value>) -> Result<Request, String> {
    let response = match fields.get("response") {
        None => ExpectedResponse {
            status: 200,
            headers: Vec::new(),
            body: String::new(),
        },
        Some(value) => expected_response(object(value, "a request's `response`")?)?,
    };
    Ok(Request {
        method: string_or(fields, "method", "GET")?,
        path: string_or(fields, "path", "/")?,
        headers: string_map(fields, "headers")?,
        body: string_or(fields, "body", "")?,
        response,
    })
}

fn expected_response(fields: &Map<String, Value>) -> Result<ExpectedResponse, String> {
    let status = match fields.get("status") {
        None => 200,
        Some(value) => value.as_i64().ok_or("a response's `status` must be an integer")?,
    };
    Ok(ExpectedResponse {
        status,
        headers: string_map(fields, "headers")?,
        body: string_or(fields, "body", "")?,
    })
}

/// A `kill` operation's `signal` (SIGTERM when absent).
pub fn signal(fields: &Map<String, Value>) -> Result<Signal, String> {
    let name = string_or(fields, "signal", "SIGTERM")?;
    SIGNALS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(name, number)| Signal { name, number })
        .ok_or_else(|| format!("unknown signal `{}`", name.escape_debug()))
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    value.as_object().ok_or_else(|| format!("{what} must be a JSON object"))
}

/// The string `name`, or `default` when absent (`null` is not a string).
fn string_or(fields: &Map<String, Value>, name: &str, default: &str) -> Result<String, String> {
    match fields.get(name) {
        None => Ok(default.to_owned()),
        Some(Value::String(value)) => Ok(value.clone()),
        Some(_) => Err(format!("`{name}` must be a string")),
    }
}

/// The object of strings `name`, in the order written; empty when absent.
fn string_map(fields: &Map<String, Value>, name: &str) -> Result<Vec<(String, String)>, String> {
    let invalid = || format!("`{name}` must be an object of string values");
    match fields.get(name) {
        None => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect::<Option<_>>()
            .ok_or_else(invalid),
        Some(_) => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Operation, Run, parse};
    use super::*;

    #[test]
    fn servers_requests_and_kill_are_read_with_the_reference_runners_defaults() {
        let spec = parse(
            r#"{"proposals": ["http"], "world": "wasi:http/service",
                "servers": [
                  {"name": "main", "endpoints": [
                    {"path": "/short", "response": "hi"},
                    {"method": "post", "path": "/echo?x=1", "mode": "echo-body"},
                    {"method": "PUT", "path": "/h", "mode": "echo-headers"},
                    {"path": "/c", "response": {"status": 201, "headers": {"b": "2", "a": "1"},
                                                "chunks": ["x", "y"], "trailers": {"t": "v"}}}]},
                  {"name": "dead", "kind": "closed"}],
                "operations": [{"type": "run"}, {"type": "request"},
                  {"type": "request", "method": "POST", "path": "/p", "headers": {"x-a": "1"}, "body": "b",
                   "response": {"status": 404, "headers": {"content-type": "text/plain"}, "body": "no"}},
                  {"type": "kill", "signal": "SIGINT"}, {"type": "kill"}, {"type": "wait"}]}"#,
        )
        .unwrap()
        .spec;
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(spec.world, "wasi:http/service");
        assert_eq!(spec.servers.len(), 2);
        assert_eq!(spec.servers[0].env_var(), "HTTP_SERVER_MAIN");
        assert_eq!(spec.servers[1].kind, ServerKind::Closed);
        let ServerKind::Listening(endpoints) = &spec.servers[0].kind else {
            panic!("main listens")
        };
        let endpoint = |method: &str, path: &str, mode| Endpoint {
            method: method.into(),
            path: path.into(),
            mode,
        };
        assert_eq!(
            endpoints,
            &[
                endpoint("GET", "/short", EndpointMode::Static(whole("hi".into()))),
                endpoint("POST", "/echo?x=1", EndpointMode::EchoBody),
                endpoint("PUT", "/h", EndpointMode::EchoHeaders),
                endpoint(
                    "GET",
                    "/c",
                    EndpointMode::Static(EndpointResponse {
                        status: 201,
                        headers: pairs(&[("b", "2"), ("a", "1")]),
                        body: EndpointBody::Chunked {
                            chunks: vec!["x".into(), "y".into()],
                            trailers: pairs(&[("t", "v")]),
                        },
                    })
                ),
            ]
        );
        assert_eq!(
            spec.operations,
            [
                Operation::Run(Run::default()),
                Operation::Request(Box::new(Request {
                    method: "GET".into(),
                    path: "/".into(),
                    headers: Vec::new(),
                    body: String::new(),
                    response: ExpectedResponse {
                        status: 200,
                        headers: Vec::new(),
                        body: String::new()
                    },
                })),
                Operation::Request(Box::new(Request {
                    method: "POST".into(),
                    path: "/p".into(),
                    headers: pairs(&[("x-a", "1")]),
                    body: "b".into(),
                    response: ExpectedResponse {
                        status: 404,
                        headers: pairs(&[("content-type", "text/plain")]),
                        body: "no".into()
                    },
                })),
                Operation::Kill(Signal::INT),
                Operation::Kill(Signal {
                    name: "SIGTERM",
                    number: 15
                }),
                Operation::Wait { exit_code: 0 },
            ]
        );
    }

    #[test]
    fn what_the_reference_runner_rejects_is_rejected() {
        let with_servers = |servers: &str| format!(r#"{{"servers": {servers}}}"#);
        let endpoint = |endpoint: &str| with_servers(&format!(r#"[{{"name": "s", "endpoints": [{endpoint}]}}]"#));
        let with_op = |op: &str| format!(r#"{{"operations": [{{"type": "run"}}, {op}, {{"type": "wait"}}]}}"#);
        let cases = [
            (with_servers(r#"{"name": "s"}"#), "`servers` must be a list"),
            (
                with_servers(r#"[{"name": "a"}, {"name": "A"}]"#),
                "duplicate server names: A",
            ),
            (with_servers(r#"[{"name": "a-b"}]"#), "letters, digits and `_` only"),
            (with_servers(r#"[{"name": ""}]"#), "non-empty string"),
            (
                with_servers(r#"[{"name": "a", "kind": "open"}]"#),
                "unknown server kind `open`",
            ),
            (
                with_servers(r#"[{"name": "a", "kind": "closed", "endpoints": []}]"#),
                "takes no `endpoints`",
            ),
            (
                with_servers(r#"[{"name": "a", "endpoints": null}]"#),
                "`endpoints` must be a list",
            ),
            (endpoint(r#"{"method": "FETCH"}"#), "unknown method `FETCH`"),
            (endpoint(r#"{"mode": "echo"}"#), "unknown endpoint mode `echo`"),
            (
                endpoint(r#"{"mode": "echo-body", "response": "x"}"#),
                "`echo-body` mode takes no `response`",
            ),
            (
                endpoint(r#"{"response": {"body": "x", "chunks": []}}"#),
                "`body` or `chunks`, not both",
            ),
            (
                endpoint(r#"{"response": {"trailers": {"t": "v"}}}"#),
                "`trailers` need `chunks`",
            ),
            (
                endpoint(r#"{"response": {"status": "200"}}"#),
                "`status` must be an integer",
            ),
            (
                endpoint(r#"{"response": {"status": 20}}"#),
                "status 20 is not an HTTP status code",
            ),
            (endpoint(r#"{"response": 7}"#), "a string or an object"),
            (
                endpoint(r#"{"response": {"headers": {"a": 1}}}"#),
                "`headers` must be an object",
            ),
            (endpoint(r#"{"path": null}"#), "`path` must be a string"),
            (
                with_op(r#"{"type": "kill", "signal": "SIGNOPE"}"#),
                "unknown signal `SIGNOPE`",
            ),
            (
                with_op(r#"{"type": "request", "method": 1}"#),
                "`method` must be a string",
            ),
            (
                with_op(r#"{"type": "request", "body": null}"#),
                "`body` must be a string",
            ),
            (
                with_op(r#"{"type": "request", "response": []}"#),
                "must be a JSON object",
            ),
            (
                r#"{"operations": [], "world": null}"#.to_owned(),
                "unknown WASI world null",
            ),
            (
                r#"{"operations": [], "world": "wasi:http/proxy"}"#.to_owned(),
                "unknown WASI world `wasi:http/proxy`",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(&text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn a_world_alone_does_not_make_a_specification_operation_based() {
        let parsed = parse(r#"{"world": "wasi:http/service"}"#).unwrap();
        assert_eq!(parsed.spec.world, super::super::CLI_COMMAND);
        assert_eq!(parsed.warnings, ["unknown field `world`"]);
        // Beside a legacy field it is a mix of the two styles.
        let mixed = parse(r#"{"world": "wasi:http/service", "exit_code": 3}"#).unwrap_err();
        assert!(mixed.contains("cannot mix"), "{mixed}");
    }

    #[test]
    fn only_signals_that_end_a_process_are_terminating() {
        let named = |name: &str| signal(&serde_json::from_str(&format!(r#"{{"signal": "{name}"}}"#)).unwrap()).unwrap();
        assert!(named("SIGINT").terminates() && named("SIGKILL").terminates() && named("SIGRTMAX").terminates());
        assert!(!named("SIGCHLD").terminates() && !named("SIGSTOP").terminates() && !named("SIGWINCH").terminates());
        assert_eq!(named("SIGIOT").number, 6);
    }
}
