//! Keeps the repository honest: no unfinished markers, no ignored tests,
//! every source file says what it is for, the README's commands exist.

use std::fs;
use std::path::{Path, PathBuf};

use xtask::project_root;

/// Every file under the project's source folders with one of `extensions`.
fn source_files(extensions: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = ["host", "xtask", "guests", "tests"]
        .iter()
        .map(|dir| project_root().join(dir))
        .collect();
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "__pycache__" {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| extensions.iter().any(|x| e == *x)) {
                files.push(path);
            }
        }
    }
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(project_root()).unwrap().display().to_string()
}

#[test]
fn no_unfinished_markers_or_ignored_tests() {
    // Spelled in pieces so this file does not trip its own check.
    let markers = [
        concat!("to", "do!("),
        concat!("unimple", "mented!("),
        concat!("db", "g!("),
        concat!("#[ign", "ore"),
    ];
    let mut found = Vec::new();
    for file in source_files(&["rs", "py"]) {
        let text = fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for marker in markers.iter().filter(|m| line.contains(*m)) {
                found.push(format!("{}:{}: {marker}", relative(&file), number + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "unfinished work or ignored tests:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_rust_source_file_starts_with_a_doc_comment() {
    let undocumented: Vec<String> = source_files(&["rs"])
        .into_iter()
        .filter(|file| {
            let text = fs::read_to_string(file).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|file| relative(&file))
        .collect();
    assert!(
        undocumented.is_empty(),
        "files without a `//!` header: {undocumented:?}"
    );
}

#[test]
fn the_readme_shows_the_commands_it_promises() {
    let readme = fs::read_to_string(project_root().join("README.md")).unwrap();
    for command in ["cargo xtask test", "cargo test -p host", "cargo xtask build-guests"] {
        assert!(readme.contains(command), "README.md does not mention `{command}`");
    }
    let ci = fs::read_to_string(project_root().join(".ci/run")).unwrap();
    assert!(
        ci.contains("cargo xtask test"),
        ".ci/run must run the README's test command"
    );
}
