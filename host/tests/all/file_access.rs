//! Scenario 5: files are reachable only through a granted directory, and a
//! read-only grant refuses writes.

use host::{DirAccess, Sandbox, Termination};

use crate::support;

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello from the host\n").unwrap();
    dir
}

#[test]
fn without_a_granted_directory_the_failure_is_reported_gracefully() {
    let dir = data_dir();
    let path = dir.path().join("hello.txt");
    let outcome = Sandbox::new()
        .arg(path.to_str().unwrap())
        .run(&support::modules::file_reader())
        .unwrap();
    assert_eq!(outcome.termination, Termination::Exited(1), "a clean exit, not a trap");
    let stderr = outcome.stderr_text();
    assert!(stderr.contains("error"), "{stderr}");
    assert!(stderr.contains("NOTCAPABLE"), "the WASI errno is named: {stderr}");
    assert!(
        outcome.stdout.is_empty(),
        "nothing of the file leaked: {}",
        outcome.stdout_text()
    );

    // The host is unharmed: the next run works.
    let again = Sandbox::new()
        .dir(dir.path(), "/data", DirAccess::ReadOnly)
        .arg("/data/hello.txt")
        .run(&support::modules::file_reader())
        .unwrap();
    assert!(again.success());
}

#[test]
fn a_read_only_grant_lets_the_guest_read() {
    let dir = data_dir();
    let outcome = Sandbox::new()
        .dir(dir.path(), "/data", DirAccess::ReadOnly)
        .arg("/data/hello.txt")
        .run(&support::modules::file_reader())
        .unwrap();
    assert!(outcome.success(), "stderr: {}", outcome.stderr_text());
    assert_eq!(outcome.stdout_text(), "hello from the host\n");
}

#[test]
fn a_missing_file_in_a_granted_directory_is_noent() {
    let dir = data_dir();
    let outcome = Sandbox::new()
        .dir(dir.path(), "/data", DirAccess::ReadOnly)
        .arg("/data/absent.txt")
        .run(&support::modules::file_reader())
        .unwrap();
    assert_eq!(outcome.exit_code(), Some(1));
    assert!(outcome.stderr_text().contains("NOENT"), "{}", outcome.stderr_text());
}

#[test]
fn writing_through_a_read_only_grant_is_refused() {
    let dir = data_dir();
    let outcome = Sandbox::new()
        .dir(dir.path(), "/data", DirAccess::ReadOnly)
        .args(["--write", "/data/hello.txt", "overwritten"])
        .run(&support::modules::file_reader())
        .unwrap();
    assert_eq!(outcome.exit_code(), Some(1));
    assert!(
        outcome.stderr_text().contains("error: cannot write"),
        "{}",
        outcome.stderr_text()
    );
    let on_disk = std::fs::read_to_string(dir.path().join("hello.txt")).unwrap();
    assert_eq!(on_disk, "hello from the host\n", "the file is unchanged");

    let created = Sandbox::new()
        .dir(dir.path(), "/data", DirAccess::ReadOnly)
        .args(["--write", "/data/new.txt", "x"])
        .run(&support::modules::file_reader())
        .unwrap();
    assert_eq!(created.exit_code(), Some(1));
    assert!(!dir.path().join("new.txt").exists(), "no file was created");
}

#[test]
fn a_read_write_grant_lets_the_guest_write() {
    let dir = data_dir();
    let outcome = Sandbox::new()
        .dir(dir.path(), "/data", DirAccess::ReadWrite)
        .args(["--write", "/data/new.txt", "written by the guest"])
        .run(&support::modules::file_reader())
        .unwrap();
    assert!(outcome.success(), "stderr: {}", outcome.stderr_text());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.txt")).unwrap(),
        "written by the guest"
    );
}

#[test]
fn granting_a_directory_that_does_not_exist_is_a_typed_error() {
    let dir = data_dir();
    let missing = dir.path().join("no-such-dir");
    let error = Sandbox::new()
        .dir(&missing, "/data", DirAccess::ReadOnly)
        .run(&support::modules::file_reader())
        .unwrap_err();
    assert!(
        matches!(&error, host::Error::Preopen { host_path, .. } if *host_path == missing),
        "{error:?}"
    );
}

/// A grant is opened as a directory: a FIFO (whose `open` would wait for
/// a writer) or a file is refused at once.
#[test]
fn granting_a_fifo_or_a_file_is_refused_at_once() {
    let dir = data_dir();
    let fifo = dir.path().join("fifo");
    support::mkfifo(&fifo);
    for path in [fifo, dir.path().join("hello.txt")] {
        let (send, receive) = std::sync::mpsc::channel();
        let asked = path.clone();
        std::thread::spawn(move || {
            let run = Sandbox::new()
                .dir(&asked, "/data", DirAccess::ReadOnly)
                .run(&support::modules::file_reader());
            send.send(run.map(|_| ()))
        });
        let result = receive
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("granting {} waited in open(2)", path.display()));
        assert!(
            matches!(&result, Err(host::Error::Preopen { host_path, .. }) if *host_path == path),
            "{result:?}"
        );
    }
}

/// Tells the child process of the test below the guest to run.
const NO_HOME_READER_ENV: &str = "FILE_ACCESS_NO_HOME_READER";

/// A grant of `/` holds `/proc`, whose `self/mem` is the host process's
/// memory: refused even in a run with no cache or key directory to
/// protect (no `HOME`, no `XDG_*`, the cache in memory), where nothing else
/// refuses it. In a child process with that environment.
#[cfg(target_os = "linux")]
#[test]
fn a_grant_holding_the_process_file_system_is_refused() {
    let Some(reader) = std::env::var_os(NO_HOME_READER_ENV) else {
        let reader = xtask::guests::artifact("file_reader").unwrap();
        support::run_test_in_child_process(
            "file_access::a_grant_holding_the_process_file_system_is_refused",
            &[
                (NO_HOME_READER_ENV, reader.as_os_str()),
                ("HOME", "".as_ref()),
                ("XDG_CACHE_HOME", "".as_ref()),
                ("XDG_STATE_HOME", "".as_ref()),
                (host::KEY_DIR_ENV, "".as_ref()),
                (host::CACHE_DIR_ENV, "".as_ref()),
                (host::CACHE_ENV, "memory".as_ref()),
            ],
        );
        return;
    };
    let runtime = host::Runtime::new(&host::RuntimeConfig::default().cache(host::CacheMode::InMemory)).unwrap();
    let reader = runtime.load_file(reader).unwrap();
    for access in [DirAccess::ReadOnly, DirAccess::ReadWrite] {
        let run = Sandbox::new()
            .dir("/", "/data", access)
            .args(["/data/proc/self/maps"])
            .run(&reader);
        match run {
            Err(host::Error::Preopen { source, .. }) => {
                assert!(source.to_string().contains("host process"), "says why: {source}")
            }
            other => panic!(
                "granting / gave {:?}",
                other.map(|outcome| format!("{} bytes of the host's memory map", outcome.stdout.len()))
            ),
        }
    }
}

/// No grant opens into a process file system: `/proc/self/mem` there is
/// the host process's own memory (the cache's key in it, its code
/// writable through a read-write grant), whichever spelling reaches it.
#[cfg(target_os = "linux")]
#[test]
fn a_grant_in_the_process_file_system_is_refused() {
    let link = tempfile::tempdir().unwrap();
    let alias = link.path().join("proc");
    std::os::unix::fs::symlink("/proc", &alias).unwrap();
    // A directory outside /proc named through it: as `/proc/PID/root/...`
    // names another mount namespace's tree, whose own `proc` no mount table
    // of this process lists.
    let through_proc = std::path::Path::new("/proc/self/root").join(link.path().strip_prefix("/").unwrap());
    for refused in [
        std::path::PathBuf::from("/proc"),
        "/proc/self".into(),
        "/dev/fd".into(),
        alias,
        through_proc,
    ] {
        for access in [DirAccess::ReadOnly, DirAccess::ReadWrite] {
            let run = Sandbox::new()
                .dir(&refused, "/data", access)
                .args(["/data/self/maps"])
                .run(&support::modules::file_reader());
            match run {
                Err(host::Error::Preopen { source, .. }) => {
                    assert!(source.to_string().contains("host process"), "says why: {source}")
                }
                other => panic!("granting {} gave {:?}", refused.display(), other.map(|_| "a run")),
            }
        }
    }
}

/// A grant that holds a process file system mounted anywhere, not only at
/// `/proc` (a chroot's or a container root's `proc`, a bind mount of
/// `/proc`), is refused, read-only or not: the guest's lookups would cross
/// the mount, to this boot's identity (what the keyless cache key is mixed
/// with) and, read-write, to the host's `self/mem`. Needs CAP_SYS_ADMIN (a
/// private mount namespace of a child process, nothing outside it
/// changes); says it is skipped without it.
#[cfg(target_os = "linux")]
#[test]
fn a_grant_holding_a_process_file_system_mounted_elsewhere_is_refused() {
    const CHILD: &str = "PROC_MOUNT_CHILD";
    if std::env::var_os(CHILD).is_none() {
        support::run_test_in_child_process(
            "file_access::a_grant_holding_a_process_file_system_mounted_elsewhere_is_refused",
            &[(CHILD, "1")],
        );
        return;
    }
    let grant = tempfile::tempdir().unwrap();
    let proc_mount = grant.path().join("chroot/proc");
    std::fs::create_dir_all(&proc_mount).unwrap();
    let c = |s: &str| std::ffi::CString::new(s).unwrap();
    // SAFETY: plain system calls on NUL-terminated strings.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            eprintln!("skipped: no mount namespace ({})", std::io::Error::last_os_error());
            return;
        }
        let none = std::ptr::null();
        assert_eq!(
            libc::mount(
                none,
                c("/").as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null()
            ),
            0
        );
        let target = c(proc_mount.to_str().unwrap());
        assert_eq!(
            libc::mount(
                c("/proc").as_ptr(),
                target.as_ptr(),
                none,
                libc::MS_BIND,
                std::ptr::null()
            ),
            0,
            "{}",
            std::io::Error::last_os_error()
        );
    }
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    for access in [DirAccess::ReadOnly, DirAccess::ReadWrite] {
        let run = Sandbox::new()
            .dir(grant.path(), "/data", access)
            .args(["/data/chroot/proc/sys/kernel/random/boot_id"])
            .run(&support::modules::file_reader());
        match run {
            Err(host::Error::Preopen { .. }) => {}
            Ok(outcome) => panic!(
                "granted ({access:?}); the guest read {:?} (this boot's identity is {boot_id:?})",
                outcome.stdout_text()
            ),
            Err(other) => panic!("{other}"),
        }
    }
}
