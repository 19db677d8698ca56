//! A crate's grants and limits for its own tests, committed with it:
//! `[package.metadata.wasm-host.test]` of the package whose tests run,
//! found through CARGO_MANIFEST_DIR, which cargo (and cargo-nextest) sets
//! for the runner. Nothing is granted unless it says so.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
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
    /// for tests makes it natively (each as spelt and as real: `guest_paths`).
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
            let (host_path, guest_paths) = guest_paths(&self.package_dir, dir)?;
            for guest_path in guest_paths {
                sandbox = sandbox.dir(host_path.clone(), guest_path, access);
            }
        }
        Ok(sandbox)
    }
}

/// The directory `dir` of the package in `package_dir` names (its real
/// path), and each path the guest sees it at: every one a test could name
/// it by natively, absolute and, as cargo runs a test in its package
/// directory, relative to the package ("." for the package itself,
/// `../data` for a directory beside it as the manifest spells it); as
/// the manifest spells it (through a link, or the package directory as
/// cargo gave it) and by its real path. A spelling is kept only where
/// the host resolves it to the same directory (`deep/..` through a link
/// is not the package's "."), so no name shows one directory for another.
fn guest_paths(package_dir: &Path, dir: &Path) -> Result<(PathBuf, Vec<String>)> {
    let host_path = package_dir.join(dir);
    let host_path = host_path
        .canonicalize()
        .with_context(|| format!("granting {}", host_path.display()))?;
    let Some(real) = host_path.to_str().map(str::to_owned) else {
        bail!("granting {}: the path is not UTF-8", host_path.display());
    };
    let real_package = (package_dir.canonicalize()).with_context(|| format!("granting {}", package_dir.display()))?;
    let relative = [
        Some(lexical(dir)).filter(|_| dir.is_relative()),
        host_path.strip_prefix(&real_package).ok().map(Path::to_owned),
    ];
    let absolute = [Some(lexical(&package_dir.join(dir))), Some(host_path.clone())];
    let mut paths: Vec<String> = Vec::new();
    for path in relative.into_iter().chain(absolute).flatten() {
        let same = package_dir.join(&path).canonicalize().is_ok_and(|it| it == host_path);
        let path = match path.to_str() {
            Some("") => ".",
            Some(path) => path,
            None => continue,
        };
        if same && !paths.iter().any(|seen| seen == path) {
            paths.push(path.to_owned());
        }
    }
    if !paths.contains(&real) {
        paths.push(real);
    }
    Ok((host_path, paths))
}

/// `path` with its `.` parts left out and each `..` taking the part
/// before it, as written (links are not followed): a relative path keeps
/// the `..`s it starts with (`../data`), an absolute one stays at its root.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match (part, out.components().next_back()) {
            (Component::CurDir, _) | (Component::ParentDir, Some(Component::RootDir | Component::Prefix(_))) => {}
            (Component::ParentDir, Some(Component::Normal(_))) => {
                out.pop();
            }
            (part, _) => out.push(part),
        }
    }
    out
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

    /// The section's variables are granted, and its directories, each as
    /// it says (read-only or read-write) at every path `guest_paths` gives.
    #[test]
    fn the_section_grants_its_variables_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let package = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(package.join("data")).unwrap();
        std::fs::create_dir_all(package.join("out")).unwrap();
        write_manifest(
            &package,
            "[package]\nname = \"a\"\n[package.metadata.wasm-host.test]\n\
             dirs-ro = [\"data\"]\ndirs = [\"out\"]\nenv = { A = \"1\" }\n",
        );
        let granted = TestMetadata::read(&package).unwrap().grant(Sandbox::new()).unwrap();
        let at = |name: &str| package.join(name).to_str().unwrap().to_owned();
        let expected = Sandbox::new()
            .env("A", "1")
            .dir(package.join("data"), "data", DirAccess::ReadOnly)
            .dir(package.join("data"), at("data"), DirAccess::ReadOnly)
            .dir(package.join("out"), "out", DirAccess::ReadWrite)
            .dir(package.join("out"), at("out"), DirAccess::ReadWrite);
        assert_eq!(format!("{granted:?}"), format!("{expected:?}"));
    }

    /// A directory is seen by every path a test could name it by natively:
    /// as the manifest spells it (through a link, or the package directory
    /// as cargo gave it) and by its real path, absolute and relative to the
    /// package; never by a spelling that names another directory.
    #[test]
    fn a_granted_directory_is_seen_by_its_spellings_and_its_real_path() {
        let root = tempfile::tempdir().unwrap();
        let root_path = root.path().canonicalize().unwrap();
        let package = root_path.join("package");
        std::fs::create_dir_all(package.join("real/inner")).unwrap();
        std::fs::create_dir_all(root_path.join("outside")).unwrap();
        std::os::unix::fs::symlink("real", package.join("link")).unwrap();
        std::os::unix::fs::symlink(root_path.join("outside"), package.join("out")).unwrap();
        std::os::unix::fs::symlink("real/inner", package.join("deep")).unwrap();
        std::os::unix::fs::symlink(&package, root_path.join("package-link")).unwrap();
        let seen = |package: &Path, dir: &str| {
            let (host, mut paths) = guest_paths(package, Path::new(dir)).unwrap();
            paths.sort();
            (host, paths)
        };
        let at = |path: &Path| path.to_str().unwrap().to_owned();
        let sorted = |mut paths: Vec<String>| {
            paths.sort();
            paths
        };
        let expected = sorted(vec![
            "link".to_owned(),
            "real".to_owned(),
            at(&package.join("link")),
            at(&package.join("real")),
        ]);
        assert_eq!(seen(&package, "link"), (package.join("real"), expected.clone()));
        assert_eq!(seen(&package, "./link/"), (package.join("real"), expected));
        let expected = sorted(vec![
            "out".to_owned(),
            at(&package.join("out")),
            at(&root_path.join("outside")),
        ]);
        assert_eq!(seen(&package, "out"), (root_path.join("outside"), expected));
        // `deep/..` is `real` on disk, not the package: never seen as ".".
        let expected = sorted(vec!["real".to_owned(), at(&package.join("real"))]);
        assert_eq!(seen(&package, "deep/.."), (package.join("real"), expected));
        let expected = sorted(vec![
            "real".to_owned(),
            at(&package.join("real")),
            at(&root_path.join("package-link/real")),
        ]);
        assert_eq!(
            seen(&root_path.join("package-link"), "real"),
            (package.join("real"), expected)
        );
        // Outside the package, as natively from the package directory:
        // `../outside`, never a spelling that goes above the root.
        let expected = sorted(vec!["../outside".to_owned(), at(&root_path.join("outside"))]);
        assert_eq!(
            seen(&package, "../outside"),
            (root_path.join("outside"), expected.clone())
        );
        assert_eq!(
            seen(&package, "real/../../outside/"),
            (root_path.join("outside"), expected)
        );
        let expected = sorted(vec!["..".to_owned(), at(&root_path)]);
        assert_eq!(seen(&package, ".."), (root_path.clone(), expected));
    }
}
