//! The project's conformance suite: sources under `tests/conformance/`, one
//! folder per suite, built into runnable suites in the WASI test suite's
//! format (`NAME.wasm` beside `NAME.json`, `manifest.json`, data folders).
//!
//! A suite folder holds only:
//! - `NAME.wat`: a test program, compiled to `NAME.wasm`;
//! - `NAME.guest`: the name of a crate under `guests/` whose build becomes
//!   `NAME.wasm` (its component, in a suite whose manifest gives the
//!   `version` `wasm32-wasip2` or `wasm32-wasip3`);
//! - `NAME.json`: the test's specification, copied as is;
//! - `manifest.json`: the suite's name, and its WASI version;
//! - `*.dir` folders: directories the tests are granted, copied as they are.
//!
//! No `.wasm` is committed: every build starts from these sources.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::project_root;

/// Where the suite sources live.
pub fn source_dir() -> PathBuf {
    project_root().join("tests").join("conformance")
}

/// Where `cargo xtask` builds the suites (one folder per suite).
pub fn build_dir() -> PathBuf {
    crate::target_dir().join("conformance")
}

/// Builds every suite into a folder of `dest` named as its source folder,
/// replacing what an earlier build left there, and returns those folders.
pub fn build_into(dest: &Path) -> Result<Vec<PathBuf>> {
    let mut built = Vec::new();
    for source in sorted_entries(&source_dir())? {
        if !source.is_dir() {
            continue;
        }
        let out = dest.join(source.file_name().unwrap_or_default());
        if out.exists() {
            fs::remove_dir_all(&out).with_context(|| format!("removing the old build {}", out.display()))?;
        }
        build_suite(&source, &out).with_context(|| format!("building the suite {}", source.display()))?;
        built.push(out);
    }
    if built.is_empty() {
        bail!("no suite folders under {}", source_dir().display());
    }
    Ok(built)
}

fn build_suite(source: &Path, out: &Path) -> Result<()> {
    let manifest = source.join("manifest.json");
    if !manifest.is_file() {
        bail!("{} has no manifest.json naming the suite", source.display());
    }
    let manifest: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?,
    )
    .with_context(|| format!("parsing {}", manifest.display()))?;
    let components = matches!(manifest["version"].as_str(), Some("wasm32-wasip2" | "wasm32-wasip3"));
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut programs = BTreeSet::new();
    let mut specs = Vec::new();
    for path in sorted_entries(source)? {
        let file_name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let extension = path.extension().map(|e| e.to_string_lossy().into_owned());
        match extension.as_deref() {
            Some("dir") if path.is_dir() => copy_dir(&path, &out.join(&file_name))?,
            Some("wat") => {
                let wasm = wat::parse_file(&path).with_context(|| format!("compiling {}", path.display()))?;
                write_program(out, &stem, &wasm, &mut programs)?;
            }
            Some("guest") => {
                let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                let built = match components {
                    true => crate::guests::component(text.trim()),
                    false => crate::guests::artifact(text.trim()),
                };
                let artifact = built.with_context(|| format!("{}", path.display()))?;
                let wasm = fs::read(&artifact).with_context(|| format!("reading {}", artifact.display()))?;
                write_program(out, &stem, &wasm, &mut programs)?;
            }
            Some("json") => {
                fs::copy(&path, out.join(&file_name)).with_context(|| format!("copying {}", path.display()))?;
                if file_name != "manifest.json" {
                    specs.push(stem);
                }
            }
            _ => bail!(
                "{} does not belong in a suite folder: it holds NAME.wat, NAME.guest, NAME.json, \
                 manifest.json and *.dir folders",
                path.display()
            ),
        }
    }
    if let Some(orphan) = specs.iter().find(|spec| !programs.contains(*spec)) {
        bail!("{orphan}.json has no {orphan}.wat or {orphan}.guest beside it");
    }
    Ok(())
}

/// Writes `NAME.wasm`, refusing a second program of the same name.
fn write_program(out: &Path, name: &str, wasm: &[u8], programs: &mut BTreeSet<String>) -> Result<()> {
    if !programs.insert(name.to_owned()) {
        bail!("two programs are named {name} (a .wat and a .guest)");
    }
    let path = out.join(format!("{name}.wasm"));
    fs::write(&path, wasm).with_context(|| format!("writing {}", path.display()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for path in sorted_entries(from)? {
        let target = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            fs::copy(&path, &target).with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    paths.sort();
    Ok(paths)
}
