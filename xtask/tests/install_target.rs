//! `cargo xtask test` adds the wasm target with rustup when the pinned
//! toolchain lacks it, so the README's test command works on a bare machine.
//! Fake `rustc` and `rustup` scripts stand in for the real ones.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use xtask::guests::{TARGET, install_target_with};

/// Held by each test: a script written while another thread forks can fail
/// to run with "text file busy", so these tests write and run one at a time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An executable shell script at `dir/name`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A `rustc` whose sysroot is `dir/sysroot`, and where its target library would go.
fn fake_rustc(dir: &Path) -> (PathBuf, PathBuf) {
    let sysroot = dir.join("sysroot");
    let rustc = script(dir, "rustc", &format!("echo '{}'", sysroot.display()));
    (rustc, sysroot.join("lib").join("rustlib").join(TARGET))
}

#[test]
fn a_missing_target_is_added_with_rustup() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (rustc, target_lib) = fake_rustc(dir.path());
    let log = dir.path().join("rustup.log");
    let rustup = script(
        dir.path(),
        "rustup",
        &format!(
            "echo \"$@\" >> '{}'\n[ \"$1\" = target ] && mkdir -p '{}'\nexit 0",
            log.display(),
            target_lib.display()
        ),
    );

    install_target_with(rustc.as_os_str(), rustup.as_os_str(), TARGET).unwrap();

    assert!(target_lib.is_dir());
    let calls = fs::read_to_string(&log).unwrap();
    assert_eq!(calls, format!("--version\ntarget add {TARGET}\n"));
}

#[test]
fn an_installed_target_runs_no_rustup() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (rustc, target_lib) = fake_rustc(dir.path());
    fs::create_dir_all(&target_lib).unwrap();
    let log = dir.path().join("rustup.log");
    let rustup = script(dir.path(), "rustup", &format!("echo \"$@\" >> '{}'", log.display()));

    install_target_with(rustc.as_os_str(), rustup.as_os_str(), TARGET).unwrap();

    assert!(!log.exists(), "rustup ran although the target was there");
}

#[test]
fn without_rustup_nothing_is_installed_and_nothing_fails() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (rustc, target_lib) = fake_rustc(dir.path());

    install_target_with(rustc.as_os_str(), dir.path().join("no-rustup").as_os_str(), TARGET).unwrap();

    assert!(!target_lib.exists());
}

#[test]
fn a_failing_rustup_is_an_error_naming_the_command() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (rustc, _) = fake_rustc(dir.path());
    let rustup = script(dir.path(), "rustup", "[ \"$1\" = --version ] && exit 0\nexit 1");

    let error = install_target_with(rustc.as_os_str(), rustup.as_os_str(), TARGET).unwrap_err();

    assert!(
        format!("{error:#}").contains(&format!("rustup target add {TARGET}")),
        "{error:#}"
    );
}
