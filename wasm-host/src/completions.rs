//! `wasm-host completions SHELL`: clap_complete's script for SHELL, bash's
//! repaired.

use std::io::Write;

use clap_complete::Shell;

/// Writes the completion script for `shell` to stdout.
pub fn print(shell: Shell, command: &mut clap::Command) {
    let mut script = Vec::new();
    clap_complete::generate(shell, command, BIN, &mut script);
    if shell == Shell::Bash {
        script = repair_bash(&String::from_utf8_lossy(&script)).into_bytes();
    }
    // A closed stdout is the reader's choice; nothing to report to.
    let _ = std::io::stdout().write_all(&script);
}

const BIN: &str = "wasm-host";

/// clap_complete 4.6 spells a subcommand's state two ways when the binary's
/// name has a hyphen: its loop sets `wasm__host__subcmd__run`, its case
/// arms test `wasm__subcmd__host__subcmd__run` (clap-rs/clap#6421, #6529;
/// unfixed in 4.6.11), so nothing completes after a subcommand. The arms
/// are rewritten as the loop spells them.
fn repair_bash(script: &str) -> String {
    script.replace("wasm__subcmd__host__", "wasm__host__")
}
