//! `cargo xtask build-guests`: build every guest crate for wasm32-wasip1.

use anyhow::{Result, bail};

pub const SUBCOMMAND: crate::Subcommand = crate::Subcommand {
    name: "build-guests",
    summary: "Build every crate under guests/ for wasm32-wasip1 and print the artifacts",
    help: "\
Usage: cargo xtask build-guests

Finds the guest crates with `cargo metadata` on guests/Cargo.toml, builds them
all for wasm32-wasip1 (release profile) and prints `NAME PATH` for each .wasm.
If the wasm32-wasip1 target is missing, installs it with rustup (when rustup is
there; otherwise says what to install).
",
    run,
};

fn run(args: &[String]) -> Result<()> {
    if let Some(extra) = args.first() {
        bail!("build-guests takes no arguments (got `{extra}`)");
    }
    xtask::guests::install_target_if_missing()?;
    for (name, path) in xtask::guests::build()? {
        println!("{name} {}", path.display());
    }
    Ok(())
}
