//! `cargo xtask test`: build the guests, then run every test the project has.

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
Then runs the conformance suite through wasm-host, in process and through the
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
    crate::conformance::run_all()
}
