//! A crate's grants and limits for its own tests, committed with it:
//! `[package.metadata.wasm-host.test]` of the package whose tests run,
//! found through CARGO_MANIFEST_DIR, which cargo (and cargo-nextest) sets
//! for the runner. Nothing is granted unless it says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use host::{DirAccess, Limits, Sandbox};
use serde::Deserialize;

/// `[package.metadata.wasm-host.test]`; `docs/guests-and-tests.md` describes it.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestMetadata {
    /// Directories granted read-only, relative to the package directory;
    /// the guest sees each at its absolute host path, so a test's
    /// `env!("CARGO_MANIFEST_DIR")` paths work unchanged, and one inside
    /// the package at its relative path too, as cargo's working directory
    /// for tests makes it natively.
    #[serde(default)]
    dirs_ro: Vec<PathBuf>,
    /// Directories granted read-write, likewise.
    #[serde(default)]
    dirs: Vec<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Each test's wall-clock limit, e.g. `"30s"`.
    #[serde(default, with = "humantime_serde_option")]
    timeout: Option<Duration>,
    /// Each test's largest linear memory, e.g. `"256M"`.
    max_memory: Option<String>,
    /// Where the directories are relative to: the package directory.
    #[serde(skip)]
    package_dir: PathBuf,
}

/// The package's own Cargo.toml, the part of it this reads.
#[derive(Deserialize)]
struct Manifest {
    package: Option<Package>,
}

#[derive(Deserialize)]
struct Package {
    metadata: Option<toml::Table>,
}

impl TestMetadata {
    /// The metadata of the package in `package_dir`, empty when it has none.
    pub fn read(package_dir: &Path) -> Result<TestMetadata> {
        let path = package_dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let manifest: Manifest = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let section = manifest
            .package
            .and_then(|package| package.metadata)
            .and_then(|mut metadata| metadata.remove("wasm-host"))
            .and_then(|wasm_host| wasm_host.as_table().and_then(|table| table.get("test")).cloned());
        let Some(section) = section else {
            return Ok(TestMetadata::default());
        };
        let mut metadata: TestMetadata = section
            .try_into()
            .with_context(|| format!("[package.metadata.wasm-host.test] of {}", path.display()))?;
        metadata.package_dir = package_dir.to_owned();
        Ok(metadata)
    }

    /// `limits` with the package's own limits in place (the runner's flags
    /// are applied over these, so a flag given wins: `LimitArgs::limits_over`).
    pub fn limits(&self, mut limits: Limits) -> Result<Limits> {
        if let Some(timeout) = self.timeout {
            limits.timeout = Some(timeout);
        }
        if let Some(text) = &self.max_memory {
            let bytes = parse_size::Config::new()
                .with_binary()
                .parse_size(text)
                .map_err(|error| anyhow::anyhow!("max-memory = {text:?}: {error}"))?;
            limits.max_memory_bytes = usize::try_from(bytes).context("max-memory is too large")?;
        }
        Ok(limits)
    }

    /// `sandbox` with the metadata's directories and variables granted.
    pub fn grant(&self, mut sandbox: Sandbox) -> Result<Sandbox> {
        sandbox = sandbox.envs(self.env.clone());
        let dirs = (self.dirs_ro.iter().map(|dir| (dir, DirAccess::ReadOnly)))
            .chain(self.dirs.iter().map(|dir| (dir, DirAccess::ReadWrite)));
        for (dir, access) in dirs {
            let host_path = self.package_dir.join(dir);
            let host_path = host_path
                .canonicalize()
                .with_context(|| format!("granting {}", host_path.display()))?;
            let Some(guest_path) = host_path.to_str().map(str::to_owned) else {
                bail!("granting {}: the path is not UTF-8", host_path.display());
            };
            // cargo runs a test in its package directory, so natively a
            // relative path is relative to that: a directory inside the
            // package is seen at its relative path too ("." for the
            // package itself), the same directory with the same access.
            let package_dir = (self.package_dir.canonicalize())
                .with_context(|| format!("granting {}", self.package_dir.display()))?;
            if let Ok(relative) = host_path.strip_prefix(&package_dir) {
                let relative = relative.to_str().expect("a part of a UTF-8 path");
                let relative = if relative.is_empty() { "." } else { relative };
                sandbox = sandbox.dir(host_path.clone(), relative, access);
            }
            sandbox = sandbox.dir(host_path, guest_path, access);
        }
        Ok(sandbox)
    }
}

/// `timeout = "30s"` through humantime, as `--timeout` reads it.
mod humantime_serde_option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(Some)
            .map_err(|error| serde::de::Error::custom(format!("timeout = {text:?}: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_manifest(dir: &Path, text: &str) {
        std::fs::write(dir.join("Cargo.toml"), text).unwrap();
    }

    #[test]
    fn a_package_without_the_section_is_granted_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(dir.path(), "[package]\nname = \"a\"\n");
        assert_eq!(TestMetadata::read(dir.path()).unwrap(), TestMetadata::default());
    }

    #[test]
    fn the_section_gives_limits() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(
            dir.path(),
            "[package]\nname = \"a\"\n[package.metadata.wasm-host.test]\ntimeout = \"3s\"\nmax-memory = \"1M\"\n",
        );
        let metadata = TestMetadata::read(dir.path()).unwrap();
        let limits = metadata.limits(Limits::default()).unwrap();
        assert_eq!(
            (limits.timeout, limits.max_memory_bytes),
            (Some(Duration::from_secs(3)), 1 << 20)
        );
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_the_section() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(
            dir.path(),
            "[package]\nname = \"a\"\n[package.metadata.wasm-host.test]\ndir-ro = [\".\"]\n",
        );
        let error = format!("{:#}", TestMetadata::read(dir.path()).unwrap_err());
        assert!(
            error.contains("[package.metadata.wasm-host.test]") && error.contains("dir-ro"),
            "{error}"
        );
    }
}
