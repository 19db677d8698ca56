//! `cargo xtask test`: build the guests, then run every test the project has.

use std::path::Path;

use anyhow::Result;

use crate::cmd::{cargo, run};

pub const SUBCOMMAND: crate::Subcommand = crate::Subcommand {
    name: "test",
    summary: "Build the guests and run every test (the README's test command)",
    help: "\
Usage: cargo xtask test [ARGS...]

Builds every guest for wasm32-wasip1 (adding that target with rustup if it is
missing), then runs the tests of the host and xtask crates
(`cargo test --workspace`). ARGS are passed to `cargo test`,
e.g. `cargo xtask test -- --nocapture` or `cargo xtask test -p host --test all limits`.
Then runs the guests' own unit tests for each target they are built for,
with wasm-host as cargo's runner (`wasm-host test`). Then runs the conformance suite through wasm-host, in process and through the
legacy adapter, and the adapters' Python tests (see `cargo xtask conformance`).
Exits non-zero if any test fails.
",
    run: run_tests,
};

pub fn run_tests(args: &[String]) -> Result<()> {
    xtask::guests::install_targets_if_missing()?;
    let components = xtask::guests::build_components()?;
    for (name, path) in xtask::guests::build()?.into_iter().chain(components) {
        eprintln!("built {name}: {}", path.display());
    }
    run(cargo(["test", "--workspace"]).args(args))?;
    run_guest_unit_tests(&crate::conformance::build_wasm_host()?)?;
    crate::conformance::run_all()
}

/// The guests' own unit tests, for each target they are built for, each
/// test in an instance of its own through `wasm-host test` as cargo's
/// runner (given as a list in `--config`, so a path with spaces stays whole).
pub fn run_guest_unit_tests(wasm_host: &Path) -> Result<()> {
    let guests = xtask::guests::discover()?;
    for target in [xtask::guests::TARGET, xtask::guests::COMPONENT_TARGET] {
        let runner = format!(
            "target.{target}.runner = [{:?}, \"test\"]",
            wasm_host.display().to_string()
        );
        let mut command = cargo(["test", "--target", target, "--config", &runner, "--manifest-path"]);
        command
            .arg(xtask::guests::manifest_path())
            .arg("--target-dir")
            .arg(xtask::guests::target_dir());
        for guest in guests.iter().filter(|guest| guest.targets.contains(&target)) {
            command.args(["-p", &guest.name]);
        }
        run(command)?;
    }
    Ok(())
}
