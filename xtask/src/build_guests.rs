//! `cargo xtask build-guests`: build every guest crate for its targets.

use anyhow::{Result, bail};

pub const SUBCOMMAND: crate::Subcommand = crate::Subcommand {
    name: "build-guests",
    summary: "Build every crate under guests/ for its targets (wasm32-wasip1, wasm32-wasip2) and print the artifacts",
    help: "\
Usage: cargo xtask build-guests

Finds the guest crates with `cargo metadata` on guests/Cargo.toml, builds each
for its targets (release profile): wasm32-wasip1, or what its
[package.metadata.guest] `targets` lists (wasm32-wasip2 makes a component).
Prints `NAME PATH` for each .wasm. A missing target is installed with rustup
(when rustup is there; otherwise says what to install).
",
    run,
};

fn run(args: &[String]) -> Result<()> {
    if let Some(extra) = args.first() {
        bail!("build-guests takes no arguments (got `{extra}`)");
    }
    xtask::guests::install_targets_if_missing()?;
    let components = xtask::guests::build_components()?;
    for (name, path) in xtask::guests::build()?.into_iter().chain(components) {
        println!("{name} {}", path.display());
    }
    Ok(())
}
