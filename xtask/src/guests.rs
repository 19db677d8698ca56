//! The wasm guests: discovered from the guest workspace's metadata (never
//! listed by hand) and built with escargot for `wasm32-wasip1` (core
//! modules) and, where a crate asks for it, `wasm32-wasip2` (components).
//!
//! A crate chooses its targets in its manifest; without this it is built
//! for `wasm32-wasip1` only:
//!
//! ```toml
//! [package.metadata.guest]
//! targets = ["wasm32-wasip1", "wasm32-wasip2"]
//! ```
//!
//! `targets = []` makes a crate no guest but code the guests share
//! (`guests/guest_support`): it is built only as their dependency and
//! needs no test of its own.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use escargot::format::Message;

use crate::project_root;

pub use crate::guest_targets::{COMPONENT_TARGET, TARGET};

/// One guest crate of the guest workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestCrate {
    /// The package name, which is also the artifact's name.
    pub name: String,
    /// The crate's folder.
    pub dir: PathBuf,
    /// What it is built for: [`TARGET`], [`COMPONENT_TARGET`] or both.
    pub targets: Vec<&'static str>,
}

/// The guest workspace's manifest.
pub fn manifest_path() -> PathBuf {
    project_root().join("guests").join("Cargo.toml")
}

/// Where guests are built: a folder of the host workspace's target directory,
/// so one `target/` holds everything and `cargo clean` removes it.
pub fn target_dir() -> PathBuf {
    crate::target_dir().join("wasm-guests")
}

/// Every guest crate, from `cargo metadata` of the guest workspace (crates
/// built for no target are shared code, not guests).
pub fn discover() -> Result<Vec<GuestCrate>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(manifest_path())
        .no_deps()
        .exec()
        .context("reading the guest workspace's metadata")?;
    let mut guests = metadata
        .workspace_packages()
        .into_iter()
        .map(|package| {
            Ok(GuestCrate {
                name: package.name.to_string(),
                dir: package
                    .manifest_path
                    .parent()
                    .map(|dir| dir.as_std_path().to_owned())
                    .unwrap_or_default(),
                targets: crate::guest_targets::targets(&package.metadata)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("reading [package.metadata.guest] of {}", package.manifest_path))?,
            })
        })
        .collect::<Result<Vec<GuestCrate>>>()?;
    guests.retain(|guest| !guest.targets.is_empty());
    guests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(guests)
}

/// Builds every core-module guest (release, `wasm32-wasip1`) and returns
/// each artifact by name. Cargo decides what is stale, so an up-to-date tree
/// costs one quick cargo invocation.
pub fn build() -> Result<BTreeMap<String, PathBuf>> {
    build_for(TARGET)
}

/// Builds every guest that asks for `wasm32-wasip2` and returns each
/// component by name.
pub fn build_components() -> Result<BTreeMap<String, PathBuf>> {
    build_for(COMPONENT_TARGET)
}

fn build_for(target: &'static str) -> Result<BTreeMap<String, PathBuf>> {
    let guests = discover()?;
    let (built, not_built): (Vec<_>, Vec<_>) = guests.iter().partition(|g| g.targets.contains(&target));
    if built.is_empty() {
        return Ok(BTreeMap::new());
    }
    ensure_target_installed(target)?;
    let mut build = escargot::CargoBuild::new()
        .manifest_path(manifest_path())
        .target(target)
        .release()
        .target_dir(target_dir())
        .arg("--workspace");
    for guest in not_built {
        build = build.arg("--exclude").arg(&guest.name);
    }
    let messages = build.exec().context("starting cargo to build the guests")?;

    let mut artifacts = BTreeMap::new();
    let mut diagnostics = String::new();
    for message in messages {
        let message = message
            .map_err(|e| anyhow::anyhow!("{e}\n{diagnostics}"))
            .context("building the guests")?;
        match message.decode().context("reading cargo's build messages")? {
            Message::CompilerArtifact(artifact) => {
                let wasm = artifact
                    .filenames
                    .iter()
                    .find(|f| f.extension().is_some_and(|e| e == "wasm"));
                if let Some(wasm) = wasm {
                    artifacts.insert(artifact.target.name.replace('-', "_"), wasm.to_path_buf());
                }
            }
            Message::CompilerMessage(message) => {
                if let Some(rendered) = message.message.rendered {
                    eprint!("{rendered}");
                    diagnostics.push_str(&rendered);
                }
            }
            Message::BuildFinished(finished) if !finished.success => {
                bail!("building the guests failed:\n{diagnostics}");
            }
            _ => {}
        }
    }
    Ok(artifacts)
}

/// The path of the core-module guest `name`, building every guest the
/// first time this is called in a process, so that tests always load fresh
/// artifacts.
pub fn artifact(name: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<Result<BTreeMap<String, PathBuf>, String>> = OnceLock::new();
    find(&BUILT, build, name)
}

/// The path of the component guest `name` (built for `wasm32-wasip2`), as
/// [`artifact`] finds a core module.
pub fn component(name: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<Result<BTreeMap<String, PathBuf>, String>> = OnceLock::new();
    find(&BUILT, build_components, name)
}

fn find(
    built: &OnceLock<Result<BTreeMap<String, PathBuf>, String>>,
    build: fn() -> Result<BTreeMap<String, PathBuf>>,
    name: &str,
) -> Result<PathBuf> {
    let built = built
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    built.get(name).cloned().with_context(|| {
        let known: Vec<&str> = built.keys().map(String::as_str).collect();
        format!("no guest named `{name}`; the guests are: {}", known.join(", "))
    })
}

/// Stops with the exact command to run when the wasm target's standard
/// library is missing, instead of cargo's "can't find crate for `std`".
fn ensure_target_installed(target: &str) -> Result<()> {
    let sysroot = sysroot(&rustc())?;
    if !has_target(&sysroot, target) {
        bail!(
            "the {target} target is not installed for the toolchain at {}.\n\
             Install it with:\n\n    rustup target add {target}\n\
             (`cargo xtask test` and `cargo xtask build-guests` do it for you)\n",
            sysroot.display()
        );
    }
    Ok(())
}

/// Adds the wasm targets to the project's toolchain with `rustup` when they
/// are missing (rustup adds a pinned toolchain's targets only when it
/// installs the toolchain itself). Without rustup, [`build`] says what to install.
pub fn install_targets_if_missing() -> Result<()> {
    for target in [TARGET, COMPONENT_TARGET] {
        install_target_with(&rustc(), OsStr::new("rustup"), target)?;
    }
    Ok(())
}

/// Adds `target` as [`install_targets_if_missing`] does, with the `rustc`
/// and `rustup` to run named.
pub fn install_target_with(rustc: &OsStr, rustup: &OsStr, target: &str) -> Result<()> {
    if has_target(&sysroot(rustc)?, target) {
        return Ok(());
    }
    let has_rustup = Command::new(rustup)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !has_rustup {
        return Ok(());
    }
    eprintln!("the {target} target is missing; installing it: rustup target add {target}");
    // From the project root, so rustup picks the toolchain rust-toolchain.toml pins.
    let status = Command::new(rustup)
        .args(["target", "add", target])
        .current_dir(project_root())
        .status()
        .context("running rustup target add")?;
    if !status.success() {
        bail!("rustup target add {target} failed ({status})");
    }
    Ok(())
}

fn rustc() -> OsString {
    std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into())
}

/// The sysroot of the toolchain `rustc` runs from the project root.
fn sysroot(rustc: &OsStr) -> Result<PathBuf> {
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .current_dir(project_root())
        .output()
        .with_context(|| format!("running {} --print sysroot", Path::new(rustc).display()))?;
    if !output.status.success() {
        bail!(
            "{} --print sysroot failed ({})",
            Path::new(rustc).display(),
            output.status
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

fn has_target(sysroot: &Path, target: &str) -> bool {
    sysroot.join("lib").join("rustlib").join(target).exists()
}
