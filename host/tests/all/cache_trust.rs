//! The compiled-module cache against someone who can write files it reads:
//! its entries are native code run outside the sandbox, so a file it did not
//! write, a directory others can write, a planted link or FIFO, or a grant
//! that hands the cache to a guest must never become code that runs.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use host::{CacheMode, DirAccess, Error, Runtime, RuntimeConfig, Sandbox};
use sha2::{Digest, Sha256};

use crate::module_cache::{cache_files, call_n, numbered_module, runtime, the_only_entry};
use crate::support;

fn on_disk(dir: &Path) -> Runtime {
    runtime(CacheMode::OnDisk(dir.to_owned()))
}

/// A runtime caching in `dir` with its key in `key_dir`, for a test that
/// changes the key (the tests' shared key directory stays untouched).
fn on_disk_keyed(dir: &Path, key_dir: &Path) -> Runtime {
    let config = RuntimeConfig::default()
        .cache(CacheMode::OnDisk(dir.to_owned()))
        .cache_key_dir(Some(key_dir.to_owned()));
    Runtime::new(&config).unwrap()
}

/// The entry file module `n` gets in `dir`, left in place.
fn entry_of(dir: &Path, n: u32) -> PathBuf {
    let before = cache_files(dir);
    call_n(&on_disk(dir), &numbered_module(n));
    let mut new = cache_files(dir).into_iter().filter(|f| !before.contains(f));
    let entry = new.next().expect("module n was written to the cache");
    assert!(new.next().is_none());
    entry
}

/// Loads module `n` in a fresh runtime on `dir`: it must answer `n`, after
/// compiling it (the planted file was refused and deleted).
fn assert_rejected_and_rebuilt(dir: &Path, n: u32) {
    let fresh = on_disk(dir);
    assert_eq!(
        call_n(&fresh, &numbered_module(n)),
        n as i32,
        "module {n} runs its own code"
    );
    let stats = fresh.cache_stats();
    assert_eq!(
        (stats.compiled, stats.disk_hits, stats.discarded),
        (1, 0, 1),
        "the planted entry was discarded, not loaded: {stats:?}"
    );
}

/// Fails instead of hanging if `f` does not return within a minute.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || send.send(f()));
    receive
        .recv_timeout(Duration::from_secs(60))
        .expect("the cache blocked on or kept reading a planted file")
}

#[test]
fn an_entry_renamed_to_stand_for_another_module_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let one = entry_of(dir.path(), 1);
    let two = entry_of(dir.path(), 2);
    std::fs::rename(&two, &one).unwrap();
    assert_rejected_and_rebuilt(dir.path(), 1);
}

#[test]
fn a_forged_entry_without_the_right_mac_is_never_deserialized() {
    let dir = tempfile::tempdir().unwrap();
    let target = entry_of(dir.path(), 1);
    // Real machine code for another module, which Wasmtime would accept.
    let engine = runtime(CacheMode::Disabled).engine().clone();
    let forged = wasmtime::Module::from_binary(&engine, &numbered_module(2))
        .unwrap()
        .serialize()
        .unwrap();
    let genuine = std::fs::read(&target).unwrap();
    let magic = &genuine[..8];
    let forgeries: [Vec<u8>; 3] = [
        // The previous layout: magic, SHA-256 of the payload recomputed, payload.
        [magic, &Sha256::digest(&forged)[..], &forged].concat(),
        // The right layout with a wrong MAC.
        [magic, &[0x5a; 32], &forged].concat(),
        // No header at all.
        forged.clone(),
    ];
    for forgery in forgeries {
        std::fs::write(&target, forgery).unwrap();
        assert_rejected_and_rebuilt(dir.path(), 1);
    }
}

#[test]
fn entries_open_to_others_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let entry = entry_of(dir.path(), 1);
    std::fs::set_permissions(&entry, PermissionsExt::from_mode(0o666)).unwrap();
    assert_rejected_and_rebuilt(dir.path(), 1);
}

#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    for mode in [0o777, 0o770, 0o702] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(mode)).unwrap();
        let runtime = on_disk(dir.path());
        assert_eq!(*runtime.cache_mode(), CacheMode::InMemory, "mode {mode:o}");
        call_n(&runtime, &numbered_module(1));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing written into a {mode:o} directory"
        );
    }
}

#[test]
fn a_cache_directory_owned_by_someone_else_is_not_used() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let foreign = if std::fs::metadata(dir.path()).unwrap().uid() == 0 {
        // As root: give the private directory to nobody.
        std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
        dir.path().to_owned()
    } else {
        PathBuf::from("/")
    };
    assert_eq!(*on_disk(&foreign).cache_mode(), CacheMode::InMemory);
}

/// (Where the key is kept, in the keyring or a private file, the unit
/// tests of `host/src/cache/disk.rs` check.)
#[test]
fn a_trusted_directory_is_used_and_new_ones_are_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("new").join("cache");
    let runtime = on_disk(&dir);
    assert_eq!(*runtime.cache_mode(), CacheMode::OnDisk(dir.canonicalize().unwrap()));
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    call_n(&runtime, &numbered_module(1));
    assert!(!dir.join("mac.key").exists(), "no key in the cache directory");
    assert_eq!(mode(&the_only_entry(&dir)), 0o600);
}

/// An earlier version kept the key in the cache directory, where a guest
/// granted it (or granted the project holding it while the run cached
/// elsewhere) could read it, then rewrite an entry and its MAC. Such a key
/// is deleted and never used: the forged entry is rejected.
#[test]
fn a_key_left_in_a_cache_directory_is_never_used_and_entries_forged_with_it_fail() {
    let (dir, key_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dir = dir.path();
    on_disk_keyed(dir, key_dir.path());
    let target = {
        let before = cache_files(dir);
        call_n(&on_disk_keyed(dir, key_dir.path()), &numbered_module(1));
        let after = cache_files(dir);
        after.difference(&before).next().unwrap().clone()
    };
    // What the guest read, and what it writes: module 2's machine code
    // under module 1's name, with a MAC under that key.
    let old_key = [0x42; 32];
    let old_key_file = dir.join("mac.key");
    std::fs::write(&old_key_file, old_key).unwrap();
    std::fs::set_permissions(&old_key_file, PermissionsExt::from_mode(0o600)).unwrap();
    let engine = runtime(CacheMode::Disabled).engine().clone();
    let payload = wasmtime::Module::from_binary(&engine, &numbered_module(2))
        .unwrap()
        .serialize()
        .unwrap();
    let entry_key: Vec<u8> = {
        let hex = target.file_stem().unwrap().to_str().unwrap();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    };
    let magic = b"WHCACHE4";
    let mac = blake3::Hasher::new_keyed(&old_key)
        .update(magic)
        .update(&entry_key)
        .update(&payload)
        .finalize();
    std::fs::write(&target, [&payload[..], magic, mac.as_bytes()].concat()).unwrap();

    let fresh = on_disk_keyed(dir, key_dir.path());
    assert_eq!(call_n(&fresh, &numbered_module(1)), 1, "module 1 runs its own code");
    let stats = fresh.cache_stats();
    assert_eq!(
        (stats.compiled, stats.disk_hits, stats.discarded),
        (1, 0, 1),
        "{stats:?}"
    );
    assert!(!old_key_file.exists(), "the old key is deleted");
}

#[test]
fn a_link_planted_at_an_entry_is_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    let precious = outside.path().join("precious");
    std::fs::write(&precious, "keep me").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let entry = entry_of(dir.path(), 1);
    std::fs::remove_file(&entry).unwrap();
    symlink(&precious, &entry).unwrap();

    assert_rejected_and_rebuilt(dir.path(), 1);
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "keep me",
        "not written through"
    );
    assert!(
        std::fs::symlink_metadata(&entry).unwrap().is_file(),
        "the link was replaced by a real entry"
    );

    // Not even to a genuine entry moved out of the directory.
    let moved = outside.path().join("genuine");
    std::fs::rename(&entry, &moved).unwrap();
    symlink(&moved, &entry).unwrap();
    assert_rejected_and_rebuilt(dir.path(), 1);
}

#[test]
fn a_fifo_or_a_link_to_an_endless_device_neither_blocks_nor_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let entry = entry_of(dir.path(), 1);
    std::fs::remove_file(&entry).unwrap();
    support::mkfifo(&entry);
    let path = dir.path().to_owned();
    within_a_minute(move || assert_rejected_and_rebuilt(&path, 1));

    std::fs::remove_file(&entry).unwrap();
    symlink("/dev/zero", &entry).unwrap();
    let path = dir.path().to_owned();
    within_a_minute(move || assert_rejected_and_rebuilt(&path, 1));
}

#[test]
fn a_grant_overlapping_the_cache_directory_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let cache_dir = parent.path().join("cache");
    let sibling = parent.path().join("data");
    std::fs::create_dir_all(cache_dir.join("inside")).unwrap();
    std::fs::create_dir(&sibling).unwrap();
    let alias = parent.path().join("alias");
    symlink(parent.path(), &alias).unwrap();
    let module = on_disk(&cache_dir)
        .load_bytes("noop", r#"(module (func (export "_start")))"#)
        .unwrap();
    let grant = |host: &Path| Sandbox::new().dir(host, "/data", DirAccess::ReadOnly).run(&module);

    for refused in [
        parent.path().to_owned(),
        cache_dir.clone(),
        cache_dir.join("inside"),
        alias,
    ] {
        match grant(&refused) {
            Err(error @ Error::GrantCoversCache { .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains(&refused.display().to_string())
                        && message.contains(&cache_dir.canonicalize().unwrap().display().to_string())
                        && message.contains("native code"),
                    "names both paths and why: {message}"
                );
                assert_suggests_no_weaker_mode(&message);
            }
            other => panic!("granting {} gave {other:?}", refused.display()),
        }
    }
    grant(&sibling).expect("a directory beside the cache is granted");
    let memory = runtime(CacheMode::InMemory);
    let module = memory
        .load_bytes("noop", r#"(module (func (export "_start")))"#)
        .unwrap();
    Sandbox::new()
        .dir(parent.path(), "/data", DirAccess::ReadOnly)
        .run(&module)
        .expect("a cache directory neither this runtime nor the environment names is not protected");
}

/// A protected directory reached through a symbolic link (a project whose
/// `target` links to another disk): the directory holding the link is
/// refused too, not only where the link leads. A guest granted it could
/// replace the link with a directory of its own, and the runs that name
/// the path would then keep their key (where there is no keyring) and
/// their cache there.
#[test]
fn a_grant_of_a_directory_the_protected_path_passes_through_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (project, build, key_build) = (
        root.path().join("project"),
        root.path().join("build"),
        root.path().join("key-build"),
    );
    for dir in [&project.join("src"), &build, &key_build.join("key")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    symlink(&build, project.join("target")).unwrap();
    symlink(key_build.join("key"), project.join("key")).unwrap();
    let module = on_disk_keyed(&project.join("target").join("cache"), &project.join("key"))
        .load_bytes("noop", r#"(module (func (export "_start")))"#)
        .unwrap();
    assert!(build.join("cache").is_dir(), "the cache is where the link leads");
    let grant = |dir: &Path| Sandbox::new().dir(dir, "/data", DirAccess::ReadWrite).run(&module);
    match grant(&project) {
        Err(error @ Error::GrantCoversCache { .. }) => assert_suggests_no_weaker_mode(&error.to_string()),
        other => panic!("granting the project gave {other:?}"),
    }
    grant(&project.join("src")).expect("a directory the paths do not pass through is granted");
    let only_the_key = on_disk_keyed(&root.path().join("elsewhere"), &project.join("key"))
        .load_bytes("noop", r#"(module (func (export "_start")))"#)
        .unwrap();
    assert!(
        matches!(
            Sandbox::new()
                .dir(&project, "/data", DirAccess::ReadOnly)
                .run(&only_the_key),
            Err(Error::GrantCoversCache { .. })
        ),
        "the link to the key directory alone"
    );
}

/// The refusal names no way around it that would hand the key to a guest.
fn assert_suggests_no_weaker_mode(message: &str) {
    for weaker in ["WASM_HOST_CACHE", "memory", "no-cache", "off"] {
        assert!(!message.contains(weaker), "suggests {weaker}: {message}");
    }
}

/// Tells the child process of the test below where its home is.
const HOME_ENV: &str = "CACHE_TRUST_HOME";

/// The key's directory and every cache directory this user's runs trust
/// (the default one, the one `WASM_HOST_CACHE_DIR` names, this runtime's)
/// are refused to every grant, read-only too, in every cache mode: no
/// guest reads the key. In a child process whose home and variables point
/// into a temporary directory.
#[test]
fn no_grant_reaches_the_key_or_a_trusted_cache_in_any_mode() {
    let Some(home) = std::env::var_os(HOME_ENV).map(PathBuf::from) else {
        let home = tempfile::tempdir().unwrap();
        let home_path = home.path().canonicalize().unwrap();
        let project_cache = home_path.join("project").join("target").join("cache");
        support::run_test_in_child_process(
            "cache_trust::no_grant_reaches_the_key_or_a_trusted_cache_in_any_mode",
            &[
                (HOME_ENV, home_path.as_os_str()),
                ("HOME", home_path.as_os_str()),
                ("XDG_CACHE_HOME", "".as_ref()),
                ("XDG_STATE_HOME", "".as_ref()),
                (host::KEY_DIR_ENV, "".as_ref()),
                (host::CACHE_ENV, "".as_ref()),
                (host::CACHE_DIR_ENV, project_cache.as_os_str()),
            ],
        );
        return;
    };
    let key_dir = home.join(".local").join("state").join("wasm-host");
    let project = home.join("project");
    let other_cache = home.join("elsewhere").join("cache");
    assert_eq!(host::key_dir_from_env(), Some(key_dir.clone()));
    let default_config = || RuntimeConfig::default();
    // Created by a run caching in the project, as the user's last run did.
    assert!(matches!(
        Runtime::new(&default_config()).unwrap().cache_mode(),
        CacheMode::OnDisk(_)
    ));
    // As a run without a keyring leaves it (with one, it holds no key).
    std::fs::create_dir_all(&key_dir).unwrap();
    std::fs::create_dir_all(project.join("target").join("cache").join("inside")).unwrap();
    std::fs::create_dir_all(home.join("data")).unwrap();
    std::fs::create_dir_all(&other_cache).unwrap();
    symlink(home.join(".local"), home.join("data").join("link")).unwrap();

    let refused = [
        key_dir.clone(),
        key_dir.parent().unwrap().to_owned(),
        home.clone(),
        home.join("data").join("link"),
        home.join("data").join("link").join("state").join("wasm-host"),
        project.clone(),
        project.join("target").join("cache").join("inside"),
        // The default cache directory does not exist yet: what would hold it.
        home.join(".cache"),
        other_cache.clone(),
    ];
    std::fs::create_dir_all(home.join(".cache")).unwrap();
    for mode in [
        CacheMode::Disabled,
        CacheMode::InMemory,
        CacheMode::OnDisk(other_cache.clone()),
        CacheMode::from_env(),
    ] {
        let runtime = Runtime::new(&default_config().cache(mode.clone())).unwrap();
        let module = runtime
            .load_bytes("noop", r#"(module (func (export "_start")))"#)
            .unwrap();
        for access in [DirAccess::ReadOnly, DirAccess::ReadWrite] {
            let grant = |dir: &Path| Sandbox::new().dir(dir, "/data", access).run(&module);
            for dir in &refused {
                if *dir == other_cache && mode != CacheMode::OnDisk(other_cache.clone()) {
                    // Only this runtime's own cache names it.
                    grant(dir).unwrap();
                    continue;
                }
                match grant(dir) {
                    Err(error @ Error::GrantCoversCache { .. }) => assert_suggests_no_weaker_mode(&error.to_string()),
                    other => panic!("{mode:?}, {access:?}: granting {} gave {other:?}", dir.display()),
                }
            }
            grant(&home.join("data")).expect("a directory beside them is granted");
        }
    }
}

/// Tells the child process of the test below where its home is.
const MOVED_HOME_ENV: &str = "CACHE_TRUST_MOVED_HOME";

/// A run whose environment moves the key and the cache elsewhere
/// (`WASM_HOST_KEY_DIR`, `XDG_STATE_HOME`, `XDG_CACHE_HOME`) still refuses
/// the default ones: the user's other runs, without those variables, keep
/// their key and trust their cache there, so a guest of this run reading
/// that key could forge entries those runs execute.
#[test]
fn the_default_key_and_cache_stay_refused_when_the_environment_moves_them() {
    let Some(home) = std::env::var_os(MOVED_HOME_ENV).map(PathBuf::from) else {
        let home = tempfile::tempdir().unwrap();
        let home_path = home.path().canonicalize().unwrap();
        support::run_test_in_child_process(
            "cache_trust::the_default_key_and_cache_stay_refused_when_the_environment_moves_them",
            &[
                (MOVED_HOME_ENV, home_path.as_os_str()),
                ("HOME", home_path.as_os_str()),
                ("XDG_CACHE_HOME", home_path.join("xdg").join("cache").as_os_str()),
                ("XDG_STATE_HOME", home_path.join("xdg").join("state").as_os_str()),
                (host::KEY_DIR_ENV, home_path.join("moved-key").as_os_str()),
                (host::CACHE_ENV, "memory".as_ref()),
                (host::CACHE_DIR_ENV, "".as_ref()),
            ],
        );
        return;
    };
    // The user's ordinary runs, under their home alone, then under XDG.
    for (cache, key) in [
        (home.join(".cache"), home.join(".local").join("state")),
        (home.join("xdg").join("cache"), home.join("xdg").join("state")),
    ] {
        let config = RuntimeConfig::default()
            .cache(CacheMode::OnDisk(cache.join("wasm-host")))
            .cache_key_dir(Some(key.join("wasm-host")));
        Runtime::new(&config).unwrap();
        // As a run without a keyring leaves it (with one, it holds no key).
        std::fs::create_dir_all(key.join("wasm-host")).unwrap();
    }
    std::fs::create_dir_all(home.join("data")).unwrap();
    let module = Runtime::new(&RuntimeConfig::default())
        .unwrap()
        .load_bytes("noop", r#"(module (func (export "_start")))"#)
        .unwrap();
    for refused in [
        home.join(".local").join("state"),
        home.join(".local").join("state").join("wasm-host"),
        home.join(".cache").join("wasm-host"),
        home.join("xdg").join("state"),
    ] {
        match Sandbox::new().dir(&refused, "/data", DirAccess::ReadOnly).run(&module) {
            Err(Error::GrantCoversCache { .. }) => {}
            other => panic!("granting {} gave {other:?}", refused.display()),
        }
    }
    Sandbox::new()
        .dir(home.join("data"), "/data", DirAccess::ReadOnly)
        .run(&module)
        .expect("a directory beside them is granted");
}
