//! WebAssembly proposals: each off by default, a module that needs one
//! refused naming it, and on with wasmtime's `-W NAME`.

use std::process::Stdio;

use crate::run::{LOAD_ERROR, assert_fails};
use crate::support::{text, wasm_host};

/// One small module per proposal, each using only that proposal.
const MODULES: [(&str, &str); 5] = [
    (
        "gc",
        r#"(module (type $point (struct (field i32)))
             (func (export "_start") (drop (struct.new $point (i32.const 1)))))"#,
    ),
    (
        "exceptions",
        r#"(module (tag $oops)
             (func (export "_start") (block $caught (try_table (catch $oops $caught) (throw $oops)))))"#,
    ),
    (
        "threads",
        r#"(module (memory 1 1 shared)
             (func (export "_start") (drop (i32.atomic.load (i32.const 0)))))"#,
    ),
    (
        "wide-arithmetic",
        r#"(module (func (export "_start")
             i64.const 1 i64.const 0 i64.const 2 i64.const 0 i64.add128 drop drop))"#,
    ),
    (
        "custom-page-sizes",
        r#"(module (memory 1 (pagesize 1)) (func (export "_start")))"#,
    ),
];

#[test]
fn each_proposal_is_off_by_default_named_when_needed_and_on_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    for (proposal, source) in MODULES {
        let path = dir.path().join(format!("{proposal}.wat"));
        std::fs::write(&path, source).unwrap();
        let module = path.to_str().unwrap();
        let run = |extra: &[&str]| {
            wasm_host()
                .arg("run")
                .args(extra)
                .arg(module)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        };
        assert_fails(
            &run(&[]),
            LOAD_ERROR,
            &[
                &format!("{proposal}.wat uses the WebAssembly proposal {proposal}, which is not enabled"),
                &format!("(enable it with -W {proposal})"),
            ],
        );
        let enabled = run(&["-W", proposal]);
        assert_eq!(
            enabled.status.code(),
            Some(0),
            "-W {proposal}: {}",
            text(&enabled.stderr)
        );
        // Streamed and captured runs take different engines.
        let captured = run(&["--capture", "-W", &format!("{proposal}=y")]);
        assert_eq!(
            captured.status.code(),
            Some(0),
            "--capture -W {proposal}: {}",
            text(&captured.stderr)
        );
        let disabled_again = run(&["-W", &format!("{proposal},{proposal}=n")]);
        assert_eq!(
            disabled_again.status.code(),
            Some(LOAD_ERROR),
            "{proposal}=n after {proposal}"
        );
    }
}
