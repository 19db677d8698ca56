//! A test suite directory in the WASI test suite's format
//! (`doc/specification.md` of WebAssembly/wasi-testsuite): every `*.wasm`
//! in it is a test, `NAME.json` beside `NAME.wasm` is its specification
//! (defaults when absent), `manifest.json` names the suite, and `*.cleanup`
//! files anywhere below are test output to remove.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::spec::{self, Spec};

/// The WASI version a suite is for when neither its manifest nor its
/// directory's name says otherwise.
pub const DEFAULT_WASI_VERSION: &str = "wasm32-wasip1";
const WASI_VERSIONS: &[&str] = &["wasm32-wasip1", "wasm32-wasip2", "wasm32-wasip3"];

/// One suite directory and its tests, sorted by name.
#[derive(Debug)]
pub struct Suite {
    /// From `manifest.json`, else as the reference runner names it.
    pub name: String,
    /// The WASI version its tests are built for (`wasm32-wasip1`, ...).
    pub wasi_version: String,
    /// The directory, canonical: test directories must stay inside it.
    pub dir: PathBuf,
    /// Every `*.wasm` directly in `dir`.
    pub tests: Vec<TestCase>,
}

/// One `*.wasm` test and its specification.
#[derive(Debug)]
pub struct TestCase {
    /// The file name without `.wasm`.
    pub name: String,
    /// The module.
    pub wasm: PathBuf,
    /// The specification, or why `NAME.json` could not be used (the test then fails with that reason).
    pub spec: Result<Spec, String>,
    /// Fields of `NAME.json` the specification does not define.
    pub warnings: Vec<String>,
}

impl Suite {
    /// Reads the suite in `dir`. A directory without any `*.wasm` is an
    /// error: it is most likely the wrong directory (or an unbuilt one).
    pub fn load(dir: &Path) -> Result<Suite> {
        let canonical = dir
            .canonicalize()
            .with_context(|| format!("cannot read suite directory {}", dir.display()))?;
        let entries =
            fs::read_dir(&canonical).with_context(|| format!("cannot read suite directory {}", dir.display()))?;
        let mut tests = Vec::new();
        for entry in entries {
            let path = entry.with_context(|| format!("listing {}", dir.display()))?.path();
            if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
                let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                let (spec, warnings) = match read_spec(&path) {
                    Ok(parsed) => (Ok(parsed.spec), parsed.warnings),
                    Err(reason) => (Err(reason), Vec::new()),
                };
                tests.push(TestCase {
                    name,
                    wasm: path,
                    spec,
                    warnings,
                });
            }
        }
        if tests.is_empty() {
            bail!("{} holds no *.wasm tests", dir.display());
        }
        tests.sort_by(|a, b| a.name.cmp(&b.name));
        let (name, wasi_version) = read_manifest(dir)?;
        Ok(Suite {
            name,
            wasi_version,
            dir: canonical,
            tests,
        })
    }
}

/// The specification beside `wasm`, or the default one when there is none.
fn read_spec(wasm: &Path) -> Result<spec::Parsed, String> {
    let path = wasm.with_extension("json");
    let file = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
    match fs::read_to_string(&path) {
        Ok(text) => spec::parse(&text).map_err(|e| format!("invalid {file}: {e}")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(spec::Parsed {
            spec: Spec::default(),
            warnings: Vec::new(),
        }),
        Err(e) => Err(format!("cannot read {file}: {e}")),
    }
}

/// The suite's name and WASI version, as the reference runner finds them:
/// `manifest.json` (`name`, `version`), else a directory named after a WASI
/// version gives the version and its parent the name, else the directory
/// is the name and the version is wasm32-wasip1.
fn read_manifest(dir: &Path) -> Result<(String, String)> {
    let base = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let (mut name, mut version) = match WASI_VERSIONS.contains(&base.as_str()) {
        true => (dir.parent().unwrap_or(dir).display().to_string(), base),
        false => (dir.display().to_string(), DEFAULT_WASI_VERSION.to_owned()),
    };
    let path = dir.join("manifest.json");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((name, version)),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let manifest: serde_json::Map<String, Value> =
        serde_json::from_str(&text).with_context(|| format!("invalid {}: not a JSON object", path.display()))?;
    for (key, value) in manifest {
        match (key.as_str(), value) {
            ("name", Value::String(value)) => name = value,
            ("version", Value::String(value)) if WASI_VERSIONS.contains(&value.as_str()) => version = value,
            (key, value) => bail!(
                "invalid {}: unexpected manifest entry `{}` = {} (it holds a `name` and a WASI `version`)",
                path.display(),
                key.escape_debug(),
                value.to_string().escape_debug()
            ),
        }
    }
    Ok((name, version))
}

/// Removes every `*.cleanup` file or directory below `dir`: what earlier
/// runs of the tests left behind.
pub fn remove_cleanup_files(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let is_dir = fs::symlink_metadata(&path)?.is_dir();
        match (path.extension().is_some_and(|e| e == "cleanup"), is_dir) {
            (true, true) => fs::remove_dir_all(&path)?,
            (true, false) => fs::remove_file(&path)?,
            (false, true) => remove_cleanup_files(&path)?,
            (false, false) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_or_the_directory_names_the_suite_and_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let p3 = dir.path().join("rust").join("wasm32-wasip3");
        fs::create_dir_all(&p3).unwrap();
        assert_eq!(
            read_manifest(&p3).unwrap(),
            (
                dir.path().join("rust").display().to_string(),
                "wasm32-wasip3".to_owned()
            )
        );
        fs::write(
            p3.join("manifest.json"),
            r#"{"name": "P3", "version": "wasm32-wasip1"}"#,
        )
        .unwrap();
        assert_eq!(
            read_manifest(&p3).unwrap(),
            ("P3".to_owned(), "wasm32-wasip1".to_owned())
        );
        fs::write(p3.join("manifest.json"), r#"{"name": "P3", "colour": "red"}"#).unwrap();
        let error = read_manifest(&p3).unwrap_err().to_string();
        assert!(error.contains("unexpected manifest entry `colour`"), "{error}");
    }

    #[test]
    fn cleanup_files_and_directories_are_removed_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("fs.dir");
        fs::create_dir_all(nested.join("made.cleanup/inner")).unwrap();
        fs::write(nested.join("out.cleanup"), "x").unwrap();
        fs::write(nested.join("keep.txt"), "x").unwrap();
        fs::write(dir.path().join("top.cleanup"), "x").unwrap();
        remove_cleanup_files(dir.path()).unwrap();
        assert!(!nested.join("made.cleanup").exists());
        assert!(!nested.join("out.cleanup").exists());
        assert!(!dir.path().join("top.cleanup").exists());
        assert!(nested.join("keep.txt").exists());
    }

    #[cfg(unix)]
    #[test]
    fn cleanup_never_follows_a_symlink_out_of_the_suite() {
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(outside.path().join("victim.cleanup")).unwrap();
        fs::write(outside.path().join("victim.cleanup/data"), "keep").unwrap();
        fs::write(outside.path().join("file.cleanup"), "keep").unwrap();
        let suite = tempfile::tempdir().unwrap();
        // A link named *.cleanup is removed as a link; a link to a directory is not entered.
        std::os::unix::fs::symlink(outside.path().join("victim.cleanup"), suite.path().join("link.cleanup")).unwrap();
        std::os::unix::fs::symlink(outside.path(), suite.path().join("out.dir")).unwrap();
        remove_cleanup_files(suite.path()).unwrap();
        assert!(!suite.path().join("link.cleanup").exists());
        assert_eq!(
            fs::read_to_string(outside.path().join("victim.cleanup/data")).unwrap(),
            "keep"
        );
        assert_eq!(fs::read_to_string(outside.path().join("file.cleanup")).unwrap(), "keep");
    }
}
