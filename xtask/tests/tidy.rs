//! Keeps the repository honest: no unfinished markers, no ignored tests,
//! every source file says what it is for, the README's commands exist.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use xtask::project_root;

/// Every file under the project's source folders with one of `extensions`.
fn source_files(extensions: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = ["host", "conformance", "wasm-host", "xtask", "guests", "tests"]
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
    const IGNORE: &str = concat!("#[ign", "ore");
    let markers = [
        concat!("to", "do!("),
        concat!("unimple", "mented!("),
        concat!("db", "g!("),
        IGNORE,
    ];
    // The fixture of `wasm-host test` has ignored tests to report as libtest does.
    let ignored_on_purpose = Path::new("guests/test_fixture");
    let mut found = Vec::new();
    for file in source_files(&["rs", "py"]) {
        let text = fs::read_to_string(&file).unwrap();
        let ignores_on_purpose = Path::new(&relative(&file)).starts_with(ignored_on_purpose);
        for (number, line) in text.lines().enumerate() {
            for marker in markers.iter().filter(|m| line.contains(*m)) {
                if ignores_on_purpose && *marker == IGNORE {
                    continue;
                }
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

/// The first path segment of each item a path starting with one of
/// `roots` names in `code` (`crate::a::B` gives `a`, `crate::{A, b::C}`
/// gives `A` and `b`).
fn root_paths(code: &str, roots: &[&str]) -> Vec<String> {
    let segment = |text: &str| -> String {
        let text = text.trim_start();
        text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
    };
    let mut code = code.to_owned();
    for root in roots {
        code = code.replace(root, "crate::");
    }
    code.split("crate::")
        .skip(1)
        .flat_map(|rest| match rest.strip_prefix('{') {
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or_default()
                .split(',')
                .map(segment)
                .collect(),
            None => vec![segment(rest)],
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// A cycle among the top-level modules of the crate in `src`, if there is
/// one: a module reaches another through a path starting with one of
/// `roots`, or a name `lib.rs` re-exports from it (`pub use module::Name`).
fn module_cycle(src: &Path, roots: &[&str], with_tests: bool) -> Option<Vec<String>> {
    let without_comments = |text: &str| -> String {
        let text = match with_tests {
            true => text,
            false => text.split("#[cfg(test)]").next().unwrap_or_default(),
        };
        text.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // `pub use module::{Name, ...}` in lib.rs: which module a root name comes from.
    let lib = without_comments(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut home: BTreeMap<String, String> = BTreeMap::new();
    for statement in lib.split(';') {
        if let Some(rest) = statement.trim().strip_prefix("pub use ") {
            let (module, names) = rest.split_once("::").unwrap_or((rest, ""));
            for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
                home.insert(name.trim().to_owned(), module.to_owned());
            }
        }
    }
    // Module -> the modules it uses.
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|e| e != "rs") || module == "lib" {
            continue;
        }
        let code = without_comments(&fs::read_to_string(&path).unwrap());
        let used = root_paths(&code, roots)
            .into_iter()
            .filter_map(|name| match name.chars().next() {
                Some(c) if c.is_uppercase() => home.get(&name).cloned(),
                _ => Some(name),
            })
            .filter(|used| *used != module);
        uses.entry(module.clone()).or_default().extend(used);
    }
    assert!(uses.len() >= 10, "read the crate in {}: {uses:?}", src.display());
    // Depth-first search for a module that reaches itself.
    fn cycle<'a>(
        module: &'a str,
        uses: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| *m == module) {
            return Some(path[at..].iter().chain([&module]).map(|m| m.to_string()).collect());
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        let found = uses
            .get(module)
            .into_iter()
            .flatten()
            .find_map(|next| cycle(next, uses, path, done));
        path.pop();
        found
    }
    let mut done = BTreeSet::new();
    uses.keys()
        .find_map(|module| cycle(module, &uses, &mut Vec::new(), &mut done))
}

#[test]
fn the_library_modules_form_no_cycle() {
    let src = project_root().join("host/src");
    if let Some(found) = module_cycle(&src, &["crate::"], true) {
        panic!("host/src modules form a cycle: {}", found.join(" -> "));
    }
}

/// The runner's modules name each other as `super::` (the crate root, from
/// a top-level module); its test modules are left out, where `super::` is
/// the module under test.
#[test]
fn the_conformance_runner_modules_form_no_cycle() {
    let src = project_root().join("conformance/src");
    if let Some(found) = module_cycle(&src, &["crate::", "super::"], false) {
        panic!("conformance/src modules form a cycle: {}", found.join(" -> "));
    }
}

/// Embedders of the `host` library compile its dependencies, not the CLI's:
/// no argument parser, and no JSON (wasmtime's `wave` feature, which brings
/// wit-parser and serde_json, is enabled by `wasm-host` alone), nor the
/// conformance runner's reports, globs and TOML.
#[test]
fn the_library_does_not_depend_on_the_clis_crates() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "host",
            "-e",
            "normal,no-proc-macro",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(project_root())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).unwrap();
    assert!(tree.contains("wasmtime v"), "not host's tree:\n{tree}");
    for cli_only in [
        "clap",
        "serde_json",
        "wasm-wave",
        "wasm-host-conformance",
        "quick-junit",
        "globset",
        "toml",
    ] {
        assert!(
            !tree.lines().any(|line| line.starts_with(&format!("{cli_only} v"))),
            "host depends on {cli_only}:\n{tree}"
        );
    }
}
