//! A test suite directory in the WASI test suite's format
//! (`doc/specification.md` of WebAssembly/wasi-testsuite): every `*.wasm`
//! in it is a test, `NAME.json` beside `NAME.wasm` is its specification
//! (defaults when absent), `manifest.json` names the suite, and `*.cleanup`
//! files anywhere below are test output to remove.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

/// One suite directory and its tests, sorted by name.
#[derive(Debug)]
pub struct Suite {
    /// From `manifest.json`, else the directory as given.
    pub name: String,
    /// The directory; test directories are relative to it.
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
    /// The specification, or why `NAME.json` could not be read (the test then fails with that reason).
    pub spec: Result<Spec, String>,
}

/// What a test is given and what it must produce. Every field is optional.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Spec {
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// The guest's whole environment, in the order written.
    #[serde(deserialize_with = "ordered_env")]
    pub env: Vec<(String, String)>,
    /// Directories (relative to the suite) preopened under the same name, read-write.
    pub dirs: Vec<String>,
    /// The exit code expected, 0 by default.
    pub exit_code: i32,
    /// The exact stdout expected, when given.
    pub stdout: Option<String>,
    /// The exact stderr expected, when given.
    pub stderr: Option<String>,
}

impl Suite {
    /// Reads the suite in `dir`. A directory without any `*.wasm` is an
    /// error: it is most likely the wrong directory (or an unbuilt one).
    pub fn load(dir: &Path) -> Result<Suite> {
        let entries = fs::read_dir(dir).with_context(|| format!("cannot read suite directory {}", dir.display()))?;
        let mut tests = Vec::new();
        for entry in entries {
            let path = entry.with_context(|| format!("listing {}", dir.display()))?.path();
            if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
                let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                let spec = Spec::for_test(&path);
                tests.push(TestCase { name, wasm: path, spec });
            }
        }
        if tests.is_empty() {
            bail!("{} holds no *.wasm tests", dir.display());
        }
        tests.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Suite {
            name: read_manifest(dir)?,
            dir: dir.to_owned(),
            tests,
        })
    }
}

impl Spec {
    /// The specification beside `wasm`, or the defaults when there is none.
    fn for_test(wasm: &Path) -> Result<Spec, String> {
        let path = wasm.with_extension("json");
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| format!("invalid {}: {e}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Spec::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// The suite's name from `manifest.json`, or the directory when there is none.
fn read_manifest(dir: &Path) -> Result<String> {
    #[derive(Deserialize)]
    struct Manifest {
        name: String,
    }
    let path = dir.join("manifest.json");
    match fs::read_to_string(&path) {
        Ok(text) => {
            let manifest: Manifest =
                serde_json::from_str(&text).with_context(|| format!("invalid {}", path.display()))?;
            Ok(manifest.name)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(dir.display().to_string()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
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

/// `env` as written: JSON objects are ordered in the file, and the guest
/// sees its variables in that order (as the reference runner passes them).
fn ordered_env<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, String)>, D::Error> {
    struct EnvVisitor;
    impl<'de> Visitor<'de> for EnvVisitor {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of string values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut env = Vec::new();
            while let Some(entry) = map.next_entry()? {
                env.push(entry);
            }
            Ok(env)
        }
    }
    deserializer.deserialize_map(EnvVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_take_the_specified_defaults() {
        let spec: Spec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec, Spec::default());
        assert_eq!(spec.exit_code, 0);
        assert_eq!(spec.stdout, None, "stdout is only checked when given");
    }

    #[test]
    fn env_keeps_the_order_of_the_file() {
        let spec: Spec = serde_json::from_str(r#"{"env": {"Z": "1", "A": "2"}, "args": ["x"]}"#).unwrap();
        assert_eq!(spec.env, [("Z".into(), "1".into()), ("A".into(), "2".into())]);
        assert_eq!(spec.args, ["x"]);
        assert!(serde_json::from_str::<Spec>(r#"{"env": {"A": 1}}"#).is_err());
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
}
