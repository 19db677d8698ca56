//! Compile once: a second process loading an already-compiled guest takes it
//! from the disk cache without running Cranelift, and a corrupt or stale
//! cache entry is detected, discarded and rebuilt.
//!
//! The "second process" is this test binary run again on one test,
//! `cache_probe`, which reports its runtime's cache statistics.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use host::{
    CACHE_DIR_ENV, CACHE_ENV, CACHE_MAX_MIB_ENV, CacheLimits, CacheMode, CacheStats, Runtime, RuntimeConfig, Sandbox,
};

use crate::support;

/// Tells `cache_probe` which cache directory to use (and that it runs as a child).
const PROBE_DIR_ENV: &str = "MODULE_CACHE_PROBE_DIR";

pub(crate) fn runtime(cache: CacheMode) -> Runtime {
    Runtime::new(&RuntimeConfig::default().cache(cache)).unwrap()
}

/// Loads csv_processor twice through a fresh runtime, checks it runs, and
/// prints the cache statistics of the first load for the parent to read.
#[test]
fn cache_probe() {
    let dir = std::env::var_os(PROBE_DIR_ENV).map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let runtime = runtime(CacheMode::OnDisk(dir.unwrap_or_else(|| temp.path().to_owned())));
    let path = xtask::guests::artifact("csv_processor").unwrap();

    let module = runtime.load_file(&path).unwrap();
    let first = runtime.cache_stats();
    let outcome = Sandbox::new().stdin("1,2,3,4,5\n").run(&module).unwrap();
    assert_eq!(outcome.stdout_text().trim(), "15");

    runtime.load_file(&path).unwrap();
    assert_eq!(
        runtime.cache_stats().memory_hits,
        first.memory_hits + 1,
        "a second load in-process hits memory"
    );
    println!(
        "CACHE_STATS compiled={} disk_hits={} discarded={}",
        first.compiled, first.disk_hits, first.discarded
    );
}

/// Runs `cache_probe` in a new process with its cache in `dir`.
fn probe_in_new_process(dir: &Path) -> CacheStats {
    let stdout = support::run_test_in_child_process("module_cache::cache_probe", &[(PROBE_DIR_ENV, dir)]);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("CACHE_STATS ").map(|(_, stats)| stats))
        .unwrap_or_else(|| panic!("no stats in:\n{stdout}"));
    let field = |name: &str| -> u64 {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    CacheStats {
        compiled: field("compiled"),
        disk_hits: field("disk_hits"),
        discarded: field("discarded"),
        ..CacheStats::default()
    }
}

pub(crate) fn the_only_entry(dir: &Path) -> PathBuf {
    let entries = cache_files(dir);
    assert_eq!(entries.len(), 1, "one cache file per module: {entries:?}");
    entries.into_iter().next().unwrap()
}

fn stats(compiled: u64, disk_hits: u64, discarded: u64) -> CacheStats {
    CacheStats {
        compiled,
        disk_hits,
        discarded,
        ..CacheStats::default()
    }
}

#[test]
fn a_second_process_does_not_invoke_the_compiler() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(probe_in_new_process(dir.path()), stats(1, 0, 0), "cold: compiled once");
    assert_eq!(
        probe_in_new_process(dir.path()),
        stats(0, 1, 0),
        "warm: loaded from disk"
    );
}

/// A guest granted a directory that holds another run's cache (a
/// project's `target/wasm-host-cache`, which a run without that setting
/// does not protect) rewrites an entry in place, as the user it runs as:
/// a runtime that loaded the entry before the write must not run what the
/// guest wrote (here a memory's initial image, which Wasmtime maps from
/// the same file as the code).
#[cfg(target_os = "linux")]
#[test]
fn an_entry_rewritten_in_place_by_a_guest_changes_nothing_already_loaded() {
    const IMAGE: usize = 1 << 16;
    let project = tempfile::tempdir().unwrap();
    let cache = CacheMode::OnDisk(project.path().join("cache"));
    let probe = format!(
        r#"(module (memory 2) (data (i32.const {IMAGE}) "{}")
             (func (export "probe") (result i32) (i32.load8_u (i32.const {IMAGE}))))"#,
        "A".repeat(IMAGE)
    );
    runtime(cache.clone()).load_bytes("probe", &probe).unwrap();
    let victim = runtime(cache);
    let module = victim.load_bytes("probe", &probe).unwrap();
    assert_eq!(victim.cache_stats().disk_hits, 1, "loaded from disk");

    let entry = the_only_entry(&project.path().join("cache"));
    let bytes = std::fs::read(&entry).unwrap();
    let image = vec![b'A'; IMAGE];
    let offsets: Vec<usize> = (0..=bytes.len() - IMAGE)
        .filter(|&at| bytes[at..at + IMAGE] == image[..])
        .collect();
    assert!(!offsets.is_empty(), "the image is in the entry");
    let name = format!("cache/{}", entry.file_name().unwrap().to_str().unwrap());
    // path_open(3, name) for writing, no truncation; then fd_pwrite of
    // "B"s over each copy of the image; exits with the first errno.
    let writes: String = offsets
        .iter()
        .map(|at| {
            format!(
                "(br_if $out (local.tee $errno (call $pwrite (i32.load (i32.const 16)) (i32.const 32) (i32.const 1) \
                 (i64.const {at}) (i32.const 24))))"
            )
        })
        .collect();
    let writer = format!(
        r#"(module
          (import "wasi_snapshot_preview1" "path_open"
            (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_pwrite"
            (func $pwrite (param i32 i32 i32 i64 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 3)
          (data (i32.const 32) "\00\00\01\00\00\00\01\00")
          (data (i32.const 256) "{name}")
          (data (i32.const {IMAGE}) "{}")
          (func (export "_start") (local $errno i32)
            (block $out
              (br_if $out (local.tee $errno (call $open (i32.const 3) (i32.const 0) (i32.const 256)
                (i32.const {}) (i32.const 0) (i64.const 0x46) (i64.const 0) (i32.const 0) (i32.const 16))))
              {writes})
            (call $exit (local.get $errno))))"#,
        "B".repeat(IMAGE),
        name.len()
    );
    let writer = runtime(CacheMode::InMemory).load_bytes("writer", &writer).unwrap();
    let outcome = Sandbox::new()
        .dir(project.path(), "/", host::DirAccess::ReadWrite)
        .run(&writer)
        .unwrap();
    assert_eq!(
        outcome.termination,
        host::Termination::Exited(0),
        "the guest wrote the entry"
    );
    assert!(std::fs::read(&entry).unwrap().windows(4).any(|w| w == b"BBBB"));

    let first = Sandbox::new()
        .instantiate(&module)
        .unwrap()
        .call::<(), i32>("probe", ())
        .unwrap();
    assert_eq!(first, i32::from(b'A'), "the loaded module is what was checked");
}

/// An entry with a second name (a hard link, which could sit in a
/// directory a guest was granted and let it rewrite the code) is copied,
/// never run from the file.
#[cfg(target_os = "linux")]
#[test]
fn an_entry_with_another_name_is_copied_not_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let entry = warm_cache_entry(dir.path());
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::hard_link(&entry, elsewhere.path().join("granted-name")).unwrap();
    let warm = runtime(CacheMode::OnDisk(dir.path().to_owned()));
    let module = warm.load_file(csv_processor()).unwrap();
    assert_eq!(warm.cache_stats().disk_hits, 1, "still loaded from disk");
    assert!(!mapped_executable(&entry), "{} is mapped", entry.display());
    let outcome = Sandbox::new().stdin("1,2,3,4,5\n").run(&module).unwrap();
    assert_eq!(outcome.stdout_text().trim(), "15");
}

#[cfg(target_os = "linux")]
fn csv_processor() -> PathBuf {
    xtask::guests::artifact("csv_processor").unwrap()
}

/// Compiles csv_processor into the disk cache in `dir`; its entry's path.
#[cfg(target_os = "linux")]
fn warm_cache_entry(dir: &Path) -> PathBuf {
    runtime(CacheMode::OnDisk(dir.to_owned()))
        .load_file(csv_processor())
        .unwrap();
    the_only_entry(dir).canonicalize().unwrap()
}

/// Whether this process maps `file` (by its full path: other tests' cache
/// entries for the same module have the same name) executable.
#[cfg(target_os = "linux")]
fn mapped_executable(file: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let file = file.to_str().unwrap();
    maps.lines()
        .filter(|line| line.ends_with(file))
        .any(|line| line.split_whitespace().nth(1) == Some("r-xp"))
}

#[test]
fn a_corrupt_entry_is_discarded_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    probe_in_new_process(dir.path());
    let entry = the_only_entry(dir.path());
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();

    assert_eq!(
        probe_in_new_process(dir.path()),
        stats(1, 0, 1),
        "detected, discarded, recompiled"
    );
    assert_eq!(
        probe_in_new_process(dir.path()),
        stats(0, 1, 0),
        "and the rebuilt entry is good"
    );
}

#[test]
fn truncated_and_foreign_entries_are_discarded() {
    let dir = tempfile::tempdir().unwrap();
    probe_in_new_process(dir.path());
    let entry = the_only_entry(dir.path());
    let original = std::fs::read(&entry).unwrap();

    std::fs::write(&entry, &original[..original.len() / 3]).unwrap();
    assert_eq!(probe_in_new_process(dir.path()), stats(1, 0, 1), "truncated");

    std::fs::write(&entry, b"not a cache entry at all").unwrap();
    assert_eq!(probe_in_new_process(dir.path()), stats(1, 0, 1), "foreign");
}

#[test]
fn a_disabled_cache_compiles_every_time() {
    let runtime = runtime(CacheMode::Disabled);
    let path = xtask::guests::artifact("config_reader").unwrap();
    runtime.load_file(&path).unwrap();
    runtime.load_file(&path).unwrap();
    assert_eq!(runtime.cache_stats(), stats(2, 0, 0));
}

#[test]
fn the_cache_key_covers_the_module_bytes() {
    let runtime = runtime(CacheMode::InMemory);
    runtime
        .load_bytes("one", "(module (func (export \"f\") (result i32) i32.const 1))")
        .unwrap();
    let mut guest = Sandbox::new()
        .instantiate(
            &runtime
                .load_bytes("two", "(module (func (export \"f\") (result i32) i32.const 2))")
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        guest.call::<(), i32>("f", ()).unwrap(),
        2,
        "a different module is never served from the cache"
    );
    assert_eq!(runtime.cache_stats().compiled, 2);
}

/// A distinct small module for each `n`, so each is its own cache entry.
pub(crate) fn numbered_module(n: u32) -> Vec<u8> {
    wat::parse_str(format!(r#"(module (func (export "n") (result i32) i32.const {n}))"#)).unwrap()
}

fn bounded_runtime(cache: CacheMode, limits: CacheLimits) -> Runtime {
    Runtime::new(&RuntimeConfig::default().cache(cache).cache_limits(limits)).unwrap()
}

/// The cache's entries in `dir` (not its key, nor temporary files).
pub(crate) fn cache_files(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

fn set_last_use(entry: &Path, ago: Duration) {
    let file = std::fs::File::options().write(true).open(entry).unwrap();
    file.set_modified(SystemTime::now() - ago).unwrap();
}

#[test]
fn memory_keeps_the_most_recently_used_modules() {
    const KEPT: u32 = 8;
    let limits = CacheLimits {
        memory_modules: KEPT as usize,
        ..CacheLimits::default()
    };
    // Three rounds, each with its own modules: an eviction that ignored the
    // order of use would pick the right one by chance one time in nine.
    for round in 0..3 {
        let runtime = bounded_runtime(CacheMode::InMemory, limits);
        let module = |n: u32| numbered_module(round * 100 + n);
        let load = |n: u32| drop(runtime.load_bytes("numbered", module(n)).unwrap());
        (0..KEPT).for_each(load);
        // Every module but the last is used again: the last is now the oldest.
        (0..KEPT - 1).for_each(load);
        load(KEPT);
        let stats = runtime.cache_stats();
        assert_eq!(
            (stats.compiled, stats.memory_hits, stats.evicted),
            (KEPT as u64 + 1, KEPT as u64 - 1, 1)
        );
        (0..KEPT - 1).chain([KEPT]).for_each(load);
        assert_eq!(
            runtime.cache_stats().memory_hits,
            2 * KEPT as u64 - 1,
            "the recently used stayed"
        );
        load(KEPT - 1);
        assert_eq!(
            runtime.cache_stats().compiled,
            KEPT as u64 + 2,
            "the least recently used was dropped"
        );
    }
}

#[test]
fn disk_keeps_the_most_recently_used_entries_within_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let unbounded = CacheLimits {
        disk_bytes: u64::MAX,
        ..CacheLimits::default()
    };
    let [a, b, c] = [1, 2, 3].map(numbered_module);
    let first = bounded_runtime(CacheMode::OnDisk(dir.path().to_owned()), unbounded);
    first.load_bytes("a", &a).unwrap();
    let a_file = the_only_entry(dir.path());
    first.load_bytes("b", &b).unwrap();
    let b_file = cache_files(dir.path()).into_iter().find(|f| *f != a_file).unwrap();
    set_last_use(&a_file, Duration::from_secs(7200));
    set_last_use(&b_file, Duration::from_secs(3600));

    // Room for about two entries; a second process uses a, then compiles c.
    let len = |f: &Path| std::fs::metadata(f).unwrap().len();
    let limits = CacheLimits {
        disk_bytes: len(&a_file) + len(&b_file) + len(&a_file) / 2,
        ..CacheLimits::default()
    };
    let second = bounded_runtime(CacheMode::OnDisk(dir.path().to_owned()), limits);
    second.load_bytes("a", &a).unwrap();
    second.load_bytes("c", &c).unwrap();
    let stats = second.cache_stats();
    assert_eq!((stats.disk_hits, stats.compiled, stats.evicted), (1, 1, 1));
    let files = cache_files(dir.path());
    assert!(
        files.contains(&a_file) && !files.contains(&b_file) && files.len() == 2,
        "b, the least recently used, was deleted: {files:?}"
    );
    assert!(files.iter().map(|f| len(f)).sum::<u64>() <= limits.disk_bytes);

    let third = bounded_runtime(CacheMode::OnDisk(dir.path().to_owned()), limits);
    third.load_bytes("b", &b).unwrap();
    assert_eq!(third.cache_stats().compiled, 1, "b is compiled again");
}

#[test]
fn the_disk_limit_can_be_set_from_the_environment() {
    // Set in a child process, so no other test sees the variable.
    if std::env::var(CACHE_MAX_MIB_ENV).as_deref() != Ok("3") {
        support::run_test_in_child_process(
            "module_cache::the_disk_limit_can_be_set_from_the_environment",
            &[(CACHE_MAX_MIB_ENV, "3")],
        );
        return;
    }
    assert_eq!(CacheLimits::default().disk_bytes, 3 * 1024 * 1024);
}

/// Calls the export `n` of a module made by [`numbered_module`].
pub(crate) fn call_n(runtime: &Runtime, bytes: &[u8]) -> i32 {
    n_of(&runtime.load_bytes("numbered", bytes).unwrap())
}

#[test]
fn concurrent_writers_each_leave_a_whole_entry() {
    let dir = tempfile::tempdir().unwrap();
    let writer = runtime(CacheMode::OnDisk(dir.path().to_owned()));
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let writer = &writer;
            scope.spawn(move || {
                for n in 0..25 {
                    call_n(writer, &numbered_module(thread * 100 + n));
                }
            });
        }
    });
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !names.iter().any(|name| name.to_string_lossy().ends_with(".tmp")),
        "no temporary file left: {names:?}"
    );
    let reader = runtime(CacheMode::OnDisk(dir.path().to_owned()));
    for thread in 0..4 {
        for n in 0..25 {
            assert_eq!(
                call_n(&reader, &numbered_module(thread * 100 + n)),
                (thread * 100 + n) as i32
            );
        }
    }
    assert_eq!(reader.cache_stats(), stats(0, 100, 0), "every entry was written whole");
}

/// What `CacheMode::from_env` should say in a child process, as `{:?}`.
const EXPECTED_MODE_ENV: &str = "MODULE_CACHE_EXPECTED_MODE";

#[test]
fn the_environment_chooses_the_cache_mode() {
    // Each case in a child process, so no other test sees the variables.
    if let Ok(expected) = std::env::var(EXPECTED_MODE_ENV) {
        assert_eq!(format!("{:?}", CacheMode::from_env()), expected);
        return;
    }
    let on_disk = |dir: &str| format!("{:?}", CacheMode::OnDisk(dir.into()));
    let cases: [(&[(&str, &str)], String); 6] = [
        (&[(CACHE_ENV, "off")], format!("{:?}", CacheMode::Disabled)),
        (&[(CACHE_ENV, "memory")], format!("{:?}", CacheMode::InMemory)),
        (&[(CACHE_DIR_ENV, "/cache/here")], on_disk("/cache/here")),
        (
            &[(CACHE_DIR_ENV, ""), ("XDG_CACHE_HOME", "/xdg")],
            on_disk("/xdg/wasm-host"),
        ),
        (
            &[(CACHE_DIR_ENV, ""), ("XDG_CACHE_HOME", "relative"), ("HOME", "/home/u")],
            on_disk("/home/u/.cache/wasm-host"),
        ),
        (
            &[(CACHE_DIR_ENV, ""), ("XDG_CACHE_HOME", ""), ("HOME", "")],
            format!("{:?}", CacheMode::InMemory),
        ),
    ];
    for (envs, expected) in cases {
        let mut envs = envs.to_vec();
        envs.push((EXPECTED_MODE_ENV, &expected));
        support::run_test_in_child_process("module_cache::the_environment_chooses_the_cache_mode", &envs);
    }
}

#[test]
fn tests_keep_the_cache_and_its_key_inside_target() {
    let CacheMode::OnDisk(dir) = Runtime::shared().cache_mode() else {
        panic!("the tests' shared runtime caches on disk");
    };
    let target = xtask::project_root().join("target").canonicalize().unwrap();
    let key_dir = host::key_dir_from_env().expect("cargo sets WASM_HOST_KEY_DIR");
    for dir in [dir, &key_dir] {
        assert!(
            dir.starts_with(&target),
            "{} is outside {}",
            dir.display(),
            target.display()
        );
    }
}

#[test]
fn the_disk_bound_is_kept_by_counting_and_evicting_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let unbounded = CacheLimits {
        disk_bytes: u64::MAX,
        ..CacheLimits::default()
    };
    let first = bounded_runtime(CacheMode::OnDisk(dir.path().to_owned()), unbounded);
    for n in 0..10 {
        first.load_bytes("numbered", numbered_module(n)).unwrap();
    }
    let sizes: BTreeSet<u64> = cache_files(dir.path())
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .collect();
    let [entry] = sizes.into_iter().collect::<Vec<_>>()[..] else {
        panic!("numbered modules should make entries of one size");
    };
    for (age, file) in cache_files(dir.path()).iter().enumerate() {
        set_last_use(file, Duration::from_secs(1000 - age as u64));
    }
    let oldest: Vec<PathBuf> = cache_files(dir.path()).into_iter().take(3).collect();

    // Room for exactly 11 entries: this process's first write finds 10 on
    // disk (one scan) and fills the bound; its second passes it and evicts
    // down to 90% (9.9 entries), so the three oldest go at once.
    let limits = CacheLimits {
        disk_bytes: entry * 11,
        ..CacheLimits::default()
    };
    let second = bounded_runtime(CacheMode::OnDisk(dir.path().to_owned()), limits);
    second.load_bytes("numbered", numbered_module(10)).unwrap();
    assert_eq!(second.cache_stats().evicted, 0, "11 entries fit");
    second.load_bytes("numbered", numbered_module(11)).unwrap();
    assert_eq!(second.cache_stats().evicted, 3, "12 do not: down to 9");
    let files = cache_files(dir.path());
    assert_eq!(files.len(), 9);
    assert!(
        oldest.iter().all(|f| !files.contains(f)),
        "the least recently used went"
    );
    for n in [12, 13] {
        second.load_bytes("numbered", numbered_module(n)).unwrap();
    }
    assert_eq!(
        second.cache_stats().evicted,
        3,
        "the count after eviction is what is left: 11 entries fit again"
    );
    assert_eq!(cache_files(dir.path()).len(), 11);
}

#[test]
fn temporary_files_left_by_a_dead_writer_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join(format!(".{}.tmp", "d".repeat(32)));
    let live = dir.path().join(format!(".{}.tmp", "e".repeat(32)));
    std::fs::write(&dead, "half an entry").unwrap();
    std::fs::write(&live, "being written").unwrap();
    set_last_use(&dead, Duration::from_secs(7200));
    runtime(CacheMode::OnDisk(dir.path().to_owned()))
        .load_bytes("numbered", numbered_module(1))
        .unwrap();
    assert!(!dead.exists(), "an hour-old temporary file is a dead writer's");
    assert!(live.exists(), "a recent one may still be written");
}

/// A guest granted a project in a run that does not protect its cache may
/// replace the cache directory with a link (relative: WASI makes those)
/// to any directory of the user's; the next run caching there trusts it
/// (the user's, closed to others). What that run deletes there is only
/// what a cache writes: the user's own files stay, whatever their names end with.
#[test]
fn a_cache_directory_linked_elsewhere_deletes_only_files_a_cache_writes() {
    let root = tempfile::tempdir().unwrap();
    let (project, documents) = (root.path().join("project"), root.path().join("documents"));
    std::fs::create_dir_all(project.join("target")).unwrap();
    std::fs::create_dir(&documents).unwrap();
    std::fs::set_permissions(&documents, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let kept = ["draft.tmp", "notes.cwasm", "list.alias"].map(|name| documents.join(name));
    for file in &kept {
        std::fs::write(file, "the user's").unwrap();
        set_last_use(file, Duration::from_secs(7200));
    }
    std::os::unix::fs::symlink("../../documents", project.join("target").join("cache")).unwrap();
    // Bound so small that the first write evicts all it may.
    let limits = CacheLimits {
        disk_bytes: 1,
        ..CacheLimits::default()
    };
    bounded_runtime(CacheMode::OnDisk(project.join("target").join("cache")), limits)
        .load_bytes("numbered", numbered_module(1))
        .unwrap();
    for file in &kept {
        assert!(file.exists(), "{} deleted", file.display());
    }
}

/// Writes `module` to `path` and waits until the cache can tell a later
/// change of the file from its metadata (its last change two seconds past).
fn write_and_settle(path: &Path, module: &[u8]) {
    std::fs::write(path, module).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
}

/// What a [`numbered_module`]'s export `n` returns.
fn n_of(module: &host::GuestModule) -> i32 {
    Sandbox::new()
        .instantiate(module)
        .unwrap()
        .call::<(), i32>("n", ())
        .unwrap()
}

#[test]
fn a_file_unchanged_since_its_last_load_is_not_read_and_a_changed_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheMode::OnDisk(dir.path().join("cache"));
    let path = dir.path().join("n.wasm");
    write_and_settle(&path, &numbered_module(1));
    assert_eq!(n_of(&runtime(cache.clone()).load_file(&path).unwrap()), 1);

    let second = runtime(cache.clone());
    assert_eq!(n_of(&second.load_file(&path).unwrap()), 1);
    assert_eq!(
        (second.cache_stats().unread_files, second.cache_stats().disk_hits),
        (1, 1),
        "found by the file's identity, neither read nor hashed"
    );

    // Rewritten in place: the same inode and size, other code.
    write_and_settle(&path, &numbered_module(2));
    let third = runtime(cache);
    assert_eq!(n_of(&third.load_file(&path).unwrap()), 2, "never the old code");
    assert_eq!((third.cache_stats().unread_files, third.cache_stats().compiled), (0, 1));
}

/// A file changed moments ago may change again within one tick of the
/// file clock, its times unchanged: until it has been left alone for two
/// seconds it is read and hashed on every load, never found by its
/// metadata.
#[test]
fn a_file_changed_moments_ago_is_read_on_every_load() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheMode::OnDisk(dir.path().join("cache"));
    let path = dir.path().join("n.wasm");
    std::fs::write(&path, numbered_module(1)).unwrap();
    runtime(cache.clone()).load_file(&path).unwrap();
    let second = runtime(cache);
    assert_eq!(n_of(&second.load_file(&path).unwrap()), 1);
    assert_eq!(
        (second.cache_stats().unread_files, second.cache_stats().disk_hits),
        (0, 1),
        "read and found by its content's hash"
    );
}

#[test]
fn a_file_changed_after_a_load_that_did_not_read_it_is_refused_when_compiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheMode::OnDisk(dir.path().join("cache"));
    let path = dir.path().join("n.wasm");
    write_and_settle(&path, &numbered_module(1));
    runtime(cache.clone()).load_file(&path).unwrap();
    let module = runtime(cache).load_file(&path).unwrap();
    std::fs::write(&path, numbered_module(2)).unwrap();
    // A run with a fuel budget needs the module compiled for the metered engine.
    let metered = Sandbox::new().limits(host::Limits::default().fuel(Some(1_000_000)));
    let error = metered.instantiate(&module).expect_err("the file changed");
    assert!(
        matches!(&error, host::Error::ReadModule { path: p, .. } if *p == path)
            && std::error::Error::source(&error)
                .is_some_and(|cause| cause.to_string().contains("changed since it was loaded")),
        "{error:?}"
    );
}
