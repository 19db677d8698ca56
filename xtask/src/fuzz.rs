//! `cargo xtask fuzz`: the libFuzzer target in fuzz/ (the property of
//! host/src/fuzzing.rs), run for a given time with cargo-fuzz.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cmd::run;

pub const SUBCOMMAND: crate::Subcommand = crate::Subcommand {
    name: "fuzz",
    summary: "Fuzz the sandbox with libFuzzer and wasm-smith modules for a given time",
    help: "\
Usage: cargo xtask fuzz [--seconds N] [-- LIBFUZZER_ARGS...]

Runs the cargo-fuzz target `sandbox` (fuzz/fuzz_targets/sandbox.rs) for N
seconds (default 300): every input becomes a wasm-smith module (or raw bytes)
run under tight limits, and a host panic, a call past its timeout or memory
past the limit is a crash. Needs cargo-fuzz: `cargo install cargo-fuzz`.

On stable Rust it sets RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags) and
builds without a sanitizer (--sanitizer none): AddressSanitizer adds little
for a safe-Rust host and slows every run. Everything it writes goes under
target/fuzz/: the build, the corpus (corpus/sandbox) and crashing inputs
(artifacts/sandbox/). Reproduce a crash with
`cargo xtask fuzz -- target/fuzz/artifacts/sandbox/crash-...`.
",
    run: run_fuzz,
};

fn run_fuzz(args: &[String]) -> Result<()> {
    let (ours, libfuzzer) = match args.iter().position(|a| a == "--") {
        Some(split) => (&args[..split], &args[split + 1..]),
        None => (args, &[][..]),
    };
    let seconds: u64 = match ours {
        [] => 300,
        [flag, n] if flag == "--seconds" => n
            .parse()
            .with_context(|| format!("--seconds takes a number, got `{n}`"))?,
        _ => bail!("usage: cargo xtask fuzz [--seconds N] [-- LIBFUZZER_ARGS...]"),
    };
    let installed = std::process::Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        bail!("cargo-fuzz is not installed; install it with:\n\n    cargo install cargo-fuzz\n");
    }
    let root = xtask::project_root();
    let out = xtask::target_dir().join("fuzz");
    let corpus = out.join("corpus").join("sandbox");
    let artifacts = out.join("artifacts").join("sandbox");
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut command = std::process::Command::new("cargo");
    command
        .current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "fuzz",
            "run",
            "--fuzz-dir",
            "fuzz",
            "--sanitizer",
            "none",
            "--target-dir",
        ])
        .arg(&out)
        .arg("sandbox")
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        // The property allows 5 s past a 50 ms timeout; libFuzzer's own
        // watchdog catches anything that hangs outright.
        .arg("-timeout=20")
        .arg("-rss_limit_mb=4096")
        .arg("-max_len=16384")
        // wasm-smith needs bytes to build anything interesting: start with
        // long inputs instead of growing from a few bytes.
        .arg("-len_control=0")
        .arg(format!("-artifact_prefix={}/", path_arg(&artifacts)?))
        .args(libfuzzer);
    run(command)
}

fn path_arg(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}
