//! `wasm-host completions SHELL`: each script completes a subcommand's
//! options in its shell (bash always; zsh and fish where installed, as in
//! CI), as a user pressing Tab after `wasm-host run --ti` would see.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{text, wasm_host};

/// The script for `shell`, written into `dir`.
fn script(dir: &Path, shell: &str) -> String {
    let output = wasm_host().args(["completions", shell]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{shell}: {}", text(&output.stderr));
    let path = dir.join(format!("wasm-host.{shell}"));
    std::fs::write(&path, &output.stdout).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The script for `shell` in `dir`, or `None` (said on stderr) where
/// `shell` is not installed.
fn script_if_installed(dir: &Path, shell: &str) -> Option<String> {
    let installed = Command::new(shell)
        .args(["-c", "exit 0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !installed {
        eprintln!("{shell} is not installed: its script is not checked here (CI installs it)");
        return None;
    }
    Some(script(dir, shell))
}

/// What bash's completion function offers for the last of `words`, as
/// bash calls it: COMP_WORDS, COMP_CWORD, and the command, current and
/// previous words as arguments.
fn complete_in_bash(script: &str, words: &[&str]) -> Vec<String> {
    let program = r#"
        source "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
        _wasm__host "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}""#;
    let output = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", program, "bash", script])
        .args(words)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_a_subcommands_options_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let script = script(dir.path(), "bash");
    assert_eq!(complete_in_bash(&script, &["wasm-host", "run", "--ti"]), ["--timeout"]);
    assert_eq!(complete_in_bash(&script, &["wasm-host", "serve", "--ad"]), ["--addr"]);
    assert_eq!(
        complete_in_bash(&script, &["wasm-host", "conformance", "--jun"]),
        ["--junit"]
    );
    assert_eq!(complete_in_bash(&script, &["wasm-host", "se"]), ["serve"]);
}

#[test]
fn fish_completes_a_subcommands_options_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let Some(script) = script_if_installed(dir.path(), "fish") else {
        return;
    };
    let output = Command::new("fish")
        .args([
            "--no-config",
            "-c",
            "source $argv[1]; complete -C 'wasm-host run --ti'",
            &script,
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let offered: Vec<String> = text(&output.stdout)
        .lines()
        .map(|line| line.split('\t').next().unwrap().to_owned())
        .collect();
    assert_eq!(offered, ["--timeout"]);
}

#[test]
fn zsh_completes_a_subcommands_options_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let Some(script) = script_if_installed(dir.path(), "zsh") else {
        return;
    };
    // zsh completes only inside its line editor: a pseudo-terminal (zpty)
    // runs an interactive zsh, Tab completes the line, and what the
    // terminal shows is read until the completion appears (5 s at most).
    let program = r#"
        zmodload zsh/zpty
        zpty z zsh -f -i
        zpty -w z "PS1=''; autoload -U compinit; compinit -u -D; source $1"
        zpty -w z $'wasm-host run --ti\t'
        local shown line
        for attempt in {1..100}; do
            zpty -r -t z line && shown+=$line || sleep 0.05
            [[ $shown == *--timeout* ]] && break
        done
        zpty -d z
        print -r -- $shown"#;
    let output = Command::new("zsh")
        .args(["-f", "-c", program, "zsh", &script])
        .output()
        .unwrap();
    let shown = text(&output.stdout);
    assert!(shown.contains("run --timeout"), "{shown}{}", text(&output.stderr));
}
