//! Running the tools the subcommands drive (cargo, python), echoing each
//! command so a failing step is easy to reproduce by hand.

use std::borrow::BorrowMut;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A `cargo` command run from the project root with the current toolchain.
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.args(args).current_dir(xtask::project_root());
    command
}

/// Runs `command`, failing with its command line if it does not succeed.
pub fn run(mut command: impl BorrowMut<Command>) -> Result<()> {
    let command = command.borrow_mut();
    let line = format!("{command:?}");
    eprintln!("$ {line}");
    let status = command.status().with_context(|| format!("starting {line}"))?;
    if !status.success() {
        bail!("{line} failed ({status})");
    }
    Ok(())
}
