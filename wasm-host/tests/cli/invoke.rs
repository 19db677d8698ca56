//! `wasm-host run --invoke`: one export called with arguments from the
//! command line (WAVE for a component, numbers for a core module), its
//! results printed, and every way the call can fail given its own status.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::components::component;
use crate::run::{LOAD_ERROR, TIMEOUT, TRAP, USAGE, assert_fails};
use crate::support::{text, wasm_host};

fn invoke(call: &str, module: &std::path::Path, extra: &[&str]) -> Output {
    wasm_host()
        .args(["run", "--invoke", call])
        .arg(module)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_components_export_is_called_with_wave_arguments_and_its_results_printed_in_wave() {
    let text_component = component("text_component");
    let output = invoke(r#"process("héllo, wörld")"#, &text_component, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "\"HéLLO, WöRLD\"\n");

    let output = invoke(r#"count("banana", "an")"#, &text_component, &[]);
    assert_eq!(text(&output.stdout), "2\n");
}

#[test]
fn a_call_that_does_not_fit_the_export_is_refused_before_the_guest_runs() {
    let text_component = component("text_component");
    let missing_argument = invoke(r#"count("banana")"#, &text_component, &[]);
    assert_fails(&missing_argument, USAGE, &["count(\"banana\")"]);
    let wrong_type = invoke("count(1, 2)", &text_component, &[]);
    assert_fails(&wrong_type, USAGE, &["count(1, 2)"]);
    let not_wave = invoke("process(", &text_component, &[]);
    assert_fails(&not_wave, USAGE, &["not a WAVE function call"]);
    let unknown = invoke("nope()", &text_component, &[]);
    assert_fails(&unknown, LOAD_ERROR, &["does not export `nope`"]);
    let arguments_outside = invoke("process", &text_component, &["abc"]);
    assert_fails(&arguments_outside, USAGE, &["inside the --invoke call"]);
}

#[test]
fn an_invoked_export_that_traps_or_spins_ends_as_a_run_would() {
    let text_component = component("text_component");
    let output = invoke("fail()", &text_component, &[]);
    assert_eq!(output.status.code(), Some(TRAP), "{}", text(&output.stderr));
    assert!(output.stdout.is_empty());

    let started = Instant::now();
    let output = wasm_host()
        .args(["run", "--timeout", "300ms", "--invoke", "spin()"])
        .arg(&text_component)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(TIMEOUT), "{}", text(&output.stderr));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn a_core_export_takes_numeric_arguments_and_prints_one_result_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("math.wat");
    std::fs::write(
        &module,
        r#"(module
             (func (export "add") (param i32 i64) (result i64)
               local.get 1 local.get 0 i64.extend_i32_s i64.add)
             (func (export "pair") (result i32 f64) i32.const -1 f64.const 2.5)
             (func (export "crash") unreachable))"#,
    )
    .unwrap();
    let output = invoke("add", &module, &["0x10", "-3"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "13\n");
    assert_eq!(text(&invoke("pair", &module, &[]).stdout), "-1\n2.5\n");

    assert_fails(
        &invoke("add", &module, &["1"]),
        USAGE,
        &["takes 2 argument(s), 1 given"],
    );
    assert_fails(&invoke("add", &module, &["1", "x"]), USAGE, &["`x` is not a valid i64"]);
    assert_fails(&invoke("sub", &module, &[]), LOAD_ERROR, &["does not export `sub`"]);
    assert_eq!(invoke("crash", &module, &[]).status.code(), Some(TRAP));
}

#[test]
fn an_export_returning_a_handle_is_refused_before_it_is_called() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("handles.wasm");
    // Each export traps if called: a refusal before the call is the only way to exit 2.
    let component = r#"(component
      (type $r (resource (rep i32)))
      (export $exported "r" (type $r))
      (core module $m
        (memory (export "memory") 1)
        (func (export "make") (result i32) unreachable)
        (func (export "maybe") (result i32) unreachable))
      (core instance $i (instantiate $m))
      (alias core export $i "memory" (core memory $memory))
      (func $make (result (own $exported)) (canon lift (core func $i "make")))
      (func $maybe (result (option (own $exported))) (canon lift (core func $i "maybe") (memory $memory)))
      (export "make" (func $make))
      (export "maybe" (func $maybe)))"#;
    std::fs::write(&module, wat::parse_str(component).unwrap()).unwrap();
    for call in ["make()", "maybe()"] {
        let output = invoke(call, &module, &[]);
        assert_fails(&output, USAGE, &["returns a resource, which has no WAVE text to print"]);
        assert!(output.stdout.is_empty());
    }
}
