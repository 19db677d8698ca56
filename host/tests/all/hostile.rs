//! The hostile guest's attacks, each run against a real tree on disk: every
//! test asserts how the run ended and that nothing on disk changed, inside
//! or outside the grant, and the host process survives them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use host::{DirAccess, GuestModule, Limits, RunOutcome, Sandbox, Termination, TrapKind};

use crate::support;

/// A temporary tree: `grant/` is what a test grants the guest, at
/// `/sandbox`; `secret.txt` beside it must stay out of reach.
pub(crate) struct Fence {
    root: tempfile::TempDir,
}

const SECRET: &str = "host secret, not for guests";

impl Fence {
    pub(crate) fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("grant")).unwrap();
        std::fs::write(root.path().join("grant/inner.txt"), "inside the grant\n").unwrap();
        std::fs::write(root.path().join("secret.txt"), SECRET).unwrap();
        Self { root }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    pub(crate) fn grant(&self) -> PathBuf {
        self.root().join("grant")
    }

    /// Every entry under the root with its kind, contents or link target,
    /// and modification time: equal snapshots mean nothing changed on disk.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut entries = BTreeMap::new();
        let mut pending = vec![self.root().to_owned()];
        while let Some(path) = pending.pop() {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_symlink() {
                format!("symlink to {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                "dir".to_owned()
            } else if !meta.is_file() {
                // A FIFO: reading one would wait for a writer.
                "special file".to_owned()
            } else {
                format!("file {:?}", std::fs::read_to_string(&path).unwrap())
            };
            let relative = path.strip_prefix(self.root()).unwrap().to_owned();
            entries.insert(relative, format!("{what}, modified {:?}", meta.modified().unwrap()));
        }
        entries
    }

    /// Runs the hostile guest with `args` in `sandbox` plus the grant (with
    /// `access`), and checks that the tree on disk is exactly as before.
    fn attack(&self, sandbox: Sandbox, access: DirAccess, args: &[&str]) -> RunOutcome {
        self.attack_with(&support::modules::hostile(), sandbox, access, args)
    }

    /// [`Fence::attack`] by another guest: a module or a component.
    pub(crate) fn attack_with(
        &self,
        guest: &GuestModule,
        sandbox: Sandbox,
        access: DirAccess,
        args: &[&str],
    ) -> RunOutcome {
        let before = self.snapshot();
        let outcome = sandbox
            .dir(self.grant(), "/sandbox", access)
            .args(args.iter().copied())
            .run(guest)
            .unwrap();
        assert_eq!(self.snapshot(), before, "the attack {args:?} changed the disk");
        outcome
    }
}

fn limited(limits: Limits) -> Sandbox {
    Sandbox::new().limits(limits)
}

#[test]
fn an_infinite_loop_and_an_endless_sleep_time_out() {
    let fence = Fence::new();
    let timeout = Duration::from_millis(300);
    for attack in ["loop", "sleep"] {
        let limits = Limits::default().timeout(Some(timeout));
        let outcome = fence.attack(limited(limits), DirAccess::ReadWrite, &[attack]);
        assert_eq!(support::trap_kind(&outcome), TrapKind::Timeout, "{attack}");
        assert!(
            outcome.duration < timeout + support::SLACK,
            "{attack}: {:?}",
            outcome.duration
        );
        assert!(!outcome.stdout_text().contains("woke up"));
    }
    let after = fence.attack(Sandbox::new(), DirAccess::ReadOnly, &["escape", "inner.txt"]);
    assert!(after.stdout_text().contains("OPENED"), "the host runs guests as before");
}

#[test]
fn a_memory_bomb_is_refused_at_the_limit_and_the_guest_goes_on() {
    let fence = Fence::new();
    let limits = Limits::default().max_memory_bytes(4 << 20);
    let outcome = fence.attack(limited(limits), DirAccess::ReadWrite, &["memory-bomb"]);
    assert_eq!(outcome.termination, Termination::Exited(0), "{}", outcome.stderr_text());
    assert_eq!(
        outcome.stdout_text(),
        "memory.grow refused at 4194304 bytes\nstill running: 7168\n"
    );
}

#[test]
fn an_allocation_bomb_aborts_the_guest_only() {
    let fence = Fence::new();
    let limits = Limits::default().max_memory_bytes(8 << 20);
    let outcome = fence.attack(limited(limits), DirAccess::ReadWrite, &["alloc-bomb"]);
    assert_eq!(
        support::trap_kind(&outcome),
        TrapKind::Unreachable,
        "Rust aborts when allocation fails"
    );
    assert!(
        outcome.stderr_text().contains("memory allocation of"),
        "{}",
        outcome.stderr_text()
    );
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    let fence = Fence::new();
    let outcome = fence.attack(Sandbox::new(), DirAccess::ReadWrite, &["recurse"]);
    assert_eq!(support::trap_kind(&outcome), TrapKind::StackOverflow);
    assert!(outcome.stdout.is_empty());
}

#[test]
fn a_stdout_flood_is_cut_at_the_cap() {
    let fence = Fence::new();
    let flood = 64 << 20;
    let limits = Limits::default().max_output_bytes(1 << 20);
    let outcome = fence.attack(limited(limits), DirAccess::ReadWrite, &["flood", &flood.to_string()]);
    assert_eq!(
        outcome.termination,
        Termination::Exited(0),
        "the guest was not failed for writing"
    );
    assert_eq!(outcome.stderr_text(), format!("wrote {flood} bytes\n"));
    assert_eq!(outcome.stdout.len(), 1 << 20, "only the cap is kept in memory");
    assert!(outcome.stdout.iter().all(|&b| b == b'x'));
    assert!(outcome.stdout_truncated);
}

#[test]
fn without_grants_descriptors_3_to_1023_are_all_closed() {
    let outcome = Sandbox::new().arg("fds").run(&support::modules::hostile()).unwrap();
    assert_eq!(outcome.stdout_text(), "opened 0\n");
    assert_eq!(outcome.termination, Termination::Exited(0));

    // The probe does see a descriptor that is there: the granted directory.
    let fence = Fence::new();
    let granted = fence.attack(Sandbox::new(), DirAccess::ReadOnly, &["fds"]);
    let stdout = granted.stdout_text();
    assert!(stdout.contains("fd 3: fdstat_get -> OK"), "{stdout}");
    assert!(!stdout.contains("fd 4:"), "only the one grant: {stdout}");
    assert_eq!(granted.exit_code(), Some(1));
}

#[test]
fn paths_that_escape_the_grant_are_refused() {
    let fence = Fence::new();
    let secret = fence.root().join("secret.txt");
    // Windows lets only privileged users make links; there the link paths
    // below are simply absent.
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(fence.root(), fence.grant().join("link-to-root")).unwrap();
        symlink("../secret.txt", fence.grant().join("link-to-secret")).unwrap();
        symlink(&secret, fence.grant().join("absolute-link-to-secret")).unwrap();
    }
    std::fs::create_dir(fence.grant().join("sub")).unwrap();
    let secret_path = secret.to_str().unwrap();
    let escapes = [
        "..",
        "../secret.txt",
        "./../secret.txt",
        "sub/../../secret.txt",
        "../grant/../secret.txt",
        "../created-outside.txt",
        "/etc/passwd",
        secret_path,
        "link-to-root/secret.txt",
        "link-to-root",
        "link-to-secret",
        "absolute-link-to-secret",
    ];
    let mut args = vec!["escape"];
    args.extend(escapes);
    let outcome = fence.attack(Sandbox::new(), DirAccess::ReadWrite, &args);
    let stdout = outcome.stdout_text();
    assert!(stdout.ends_with("opened 0\n"), "{stdout}");
    assert_eq!(outcome.termination, Termination::Exited(0));
    assert!(!stdout.contains(SECRET), "{stdout}");
    for escape in escapes {
        for mode in ["read", "write"] {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&format!("/sandbox {escape} {mode}: ")))
                .unwrap_or_else(|| panic!("no attempt at {escape} ({mode}): {stdout}"));
            assert!(
                line.ends_with("NOTCAPABLE") || line.ends_with("PERM"),
                "refused as outside the grant: {line}"
            );
        }
    }
    assert!(!fence.root().join("created-outside.txt").exists());
}

#[test]
fn the_escape_probe_does_open_what_is_inside_the_grant() {
    let fence = Fence::new();
    let outcome = fence.attack(Sandbox::new(), DirAccess::ReadWrite, &["escape", "inner.txt"]);
    let stdout = outcome.stdout_text();
    assert!(
        stdout.contains("/sandbox inner.txt read: OPENED: inside the grant"),
        "{stdout}"
    );
    assert!(stdout.ends_with("opened 2\n"), "read and write both open: {stdout}");
}

#[test]
fn a_read_only_grant_refuses_every_change() {
    let fence = Fence::new();
    let outcome = fence.attack(Sandbox::new(), DirAccess::ReadOnly, &["readonly", "inner.txt"]);
    let stdout = outcome.stdout_text();
    assert_eq!(outcome.termination, Termination::Exited(0), "{stdout}");
    assert!(stdout.ends_with("changed 0\n"), "{stdout}");
    for attempt in [
        "open for writing",
        "write",
        "truncate on open",
        "append",
        "set size",
        "set times",
        "create",
        "mkdir",
        "rename",
        "link",
        "symlink",
        "delete",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{attempt}: ")))
            .unwrap_or_else(|| panic!("no attempt to {attempt}: {stdout}"));
        assert!(!line.ends_with(" OK"), "{line}");
    }
}

#[test]
fn the_read_only_probe_does_change_a_writable_grant() {
    let fence = Fence::new();
    let outcome = Sandbox::new()
        .dir(fence.grant(), "/sandbox", DirAccess::ReadWrite)
        .args(["readonly", "inner.txt"])
        .run(&support::modules::hostile())
        .unwrap();
    let stdout = outcome.stdout_text();
    assert!(stdout.contains("create: OK"), "{stdout}");
    assert!(stdout.contains("rename: OK"), "{stdout}");
    assert!(fence.grant().join("created.txt").exists());
    assert!(fence.grant().join("renamed.txt").exists());
    assert_eq!(
        std::fs::read_to_string(fence.root().join("secret.txt")).unwrap(),
        SECRET
    );
}

#[test]
fn host_environment_variables_are_invisible_unless_granted() {
    let fence = Fence::new();
    let outcome = fence.attack(Sandbox::new().env("APP_MODE", "test"), DirAccess::ReadOnly, &["env"]);
    assert_eq!(outcome.termination, Termination::Exited(0));
    assert_eq!(outcome.stdout_text(), "APP_MODE=test\n");
    let host_vars: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
    assert!(
        host_vars.iter().any(|name| name == "PATH"),
        "the host has variables to leak"
    );

    let none = fence.attack(Sandbox::new(), DirAccess::ReadOnly, &["env"]);
    assert_eq!(none.stdout_text(), "", "nothing granted, nothing seen");
}

#[test]
fn host_log_with_a_range_outside_memory_traps_without_reading_it() {
    let fence = Fence::new();
    // -1 as a length is 0xFFFF_FFFF: 4 GiB less a byte, the most a wasm32 guest can ask for.
    for (ptr, len) in [
        ("end", "1"),
        ("-1", "1"),
        ("0", "-5"),
        ("0", "-1"),
        ("16", "2147483647"),
    ] {
        let outcome = fence.attack(Sandbox::new(), DirAccess::ReadOnly, &["log", ptr, len]);
        assert_eq!(support::trap_kind(&outcome), TrapKind::HostError, "({ptr}, {len})");
        let message = &outcome.trap().unwrap().message;
        assert!(message.contains("out of bounds"), "({ptr}, {len}): {message}");
        assert!(outcome.host_log.is_empty(), "nothing was logged");
        assert!(!outcome.stdout_text().contains("host.log returned"));
    }
    let edge = fence.attack(Sandbox::new(), DirAccess::ReadOnly, &["log", "end", "0"]);
    assert_eq!(
        edge.termination,
        Termination::Exited(0),
        "an empty range at the end is inside"
    );
    assert_eq!(edge.host_log, [""]);
}

#[test]
fn a_poll_on_any_clock_relative_or_absolute_ends_at_the_timeout() {
    let fence = Fence::new();
    let timeout = Duration::from_millis(300);
    let limits = Limits::default().timeout(Some(timeout));
    for clock in ["realtime", "monotonic", "process", "thread"] {
        for mode in ["relative", "absolute"] {
            let outcome = fence.attack(
                limited(limits.clone()),
                DirAccess::ReadWrite,
                &["sleep-on", clock, mode],
            );
            assert!(
                outcome.duration < timeout + support::SLACK,
                "{clock} {mode}: {:?}",
                outcome.duration
            );
            let stdout = outcome.stdout_text();
            match (clock, mode) {
                // Preview 1 has no absolute wait on a CPU-time clock.
                ("process" | "thread", "absolute") => assert_eq!(stdout, "woke up: INVAL\n"),
                _ => {
                    assert_eq!(support::trap_kind(&outcome), TrapKind::Timeout, "{clock} {mode}");
                    assert_eq!(stdout, "", "{clock} {mode}");
                }
            }
        }
    }
}

#[test]
#[cfg(unix)]
fn a_fifo_in_a_grant_is_refused_at_once_not_waited_on() {
    let fence = Fence::new();
    support::mkfifo(&fence.grant().join("fifo"));
    std::fs::create_dir(fence.grant().join("sub")).unwrap();
    support::mkfifo(&fence.grant().join("sub/fifo"));
    std::os::unix::fs::symlink("fifo", fence.grant().join("link-to-fifo")).unwrap();
    let timeout = Duration::from_secs(2);
    let limits = Limits::default().timeout(Some(timeout));
    // Should an open wait after all, this opens the other ends so the test
    // fails instead of hanging (on Linux, opening a FIFO read-write never waits).
    let fifos = [fence.grant().join("fifo"), fence.grant().join("sub/fifo")];
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let rescuer = std::thread::spawn(move || {
        if finished.recv_timeout(timeout * 2).is_err() {
            let ends: Vec<_> = fifos
                .iter()
                .map(|fifo| std::fs::OpenOptions::new().read(true).write(true).open(fifo).unwrap())
                .collect();
            let _ = finished.recv();
            drop(ends);
        }
    });
    for path in ["fifo", "sub/fifo", "link-to-fifo"] {
        for access in [DirAccess::ReadWrite, DirAccess::ReadOnly] {
            let outcome = fence.attack(limited(limits.clone()), access, &["open-fifo", path]);
            assert_eq!(
                outcome.termination,
                Termination::Exited(0),
                "{path}: {}",
                outcome.stdout_text()
            );
            assert!(outcome.duration < timeout, "{path}: {:?}", outcome.duration);
            let stdout = outcome.stdout_text();
            assert!(stdout.contains(&format!("{path} read: ACCES")), "{stdout}");
            assert!(stdout.ends_with("opened 0\n"), "{stdout}");
        }
    }
    drop(done);
    rescuer.join().unwrap();
    let file = fence.attack(limited(limits), DirAccess::ReadOnly, &["open-fifo", "inner.txt"]);
    assert!(
        file.stdout_text().contains("inner.txt read: OK"),
        "a file still opens: {}",
        file.stdout_text()
    );
}

#[test]
fn a_poll_on_more_subscriptions_than_the_resource_limit_traps() {
    let fence = Fence::new();
    let limits = Limits::default().max_resources(64);
    // The host makes a pollable for each subscription: without the limit,
    // a guest's memory could make it hold millions of them.
    let poll = |count: &str| fence.attack(limited(limits.clone()), DirAccess::ReadOnly, &["poll-many", count]);
    assert_eq!(poll("32").stdout_text(), "polled 32: OK\n");
    let outcome = poll("100");
    assert_eq!(support::trap_kind(&outcome), TrapKind::HostError, "{outcome}");
    assert_eq!(outcome.stdout_text(), "");
}

#[test]
fn a_guest_hoarding_descriptors_is_refused_at_its_limit_and_others_run_on() {
    let fence = Fence::new();
    let limits = Limits::default().max_descriptors(16);
    let outcome = fence.attack(limited(limits), DirAccess::ReadOnly, &["hoard-fds", "inner.txt"]);
    assert_eq!(outcome.termination, Termination::Exited(0), "{}", outcome.stdout_text());
    // Three standard streams and the grant count too.
    assert_eq!(outcome.stdout_text(), "held 12, then MFILE\n");
    let default = fence.attack(Sandbox::new(), DirAccess::ReadOnly, &["hoard-fds", "inner.txt"]);
    assert_eq!(default.stdout_text(), "held 252, then MFILE\n", "256 by default");

    let beside = fence.attack(Sandbox::new(), DirAccess::ReadOnly, &["escape", "inner.txt"]);
    assert!(beside.stdout_text().contains("OPENED"), "{}", beside.stdout_text());
}
