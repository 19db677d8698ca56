//! A guest that attacks its host, one attack per run, chosen by its first
//! argument. The host's tests run each attack and prove it is contained.
//!
//! Attacks that probe capabilities (`fds`, `escape`, `readonly`, `env`) use
//! raw WASI calls and print one line per attempt with the errno the host
//! returned, ending with `opened N` / `changed N`, the attempts that got
//! through; the others try to exhaust a resource or crash the host.
//!
//! ```text
//! hostile loop | sleep | memory-bomb | alloc-bomb | recurse | flood BYTES
//! hostile fds
//! hostile escape PATH...      open each PATH, relative to every granted directory
//! hostile readonly FILE       modify FILE and its directory (granted read-only) every way WASI allows
//! hostile env                 print every environment variable it can see
//! hostile log PTR LEN         call host.log(PTR, LEN); PTR `end` means the end of memory
//! hostile sleep-on CLOCK relative|absolute
//!                             one poll_oneoff on CLOCK (realtime, monotonic, process, thread) a minute ahead
//! hostile open-fifo PATH      open PATH (a FIFO, in the first grant) for reading, then for writing
//! hostile hoard-fds FILE      open FILE (in the first grant) until the host refuses, and keep them all
//! hostile poll-many N         one poll_oneoff on N clock subscriptions, each due at once
//! ```

use std::io::Write;
use std::process::ExitCode;

use guest_support::{FIRST_PREOPEN_FD, preopens, spin};

#[link(wasm_import_module = "host")]
unsafe extern "C" {
    /// The host's `host.log(ptr, len)`, declared with raw integers so any
    /// pointer and length can be passed.
    #[link_name = "log"]
    fn host_log(ptr: i32, len: i32);
}

fn main() -> ExitCode {
    match guest_support::args().as_slice() {
        ["loop"] => spin(),
        ["sleep"] => {
            // A year: only the host's timeout can end this.
            std::thread::sleep(std::time::Duration::from_secs(365 * 24 * 3600));
            println!("woke up");
            ExitCode::SUCCESS
        }
        ["memory-bomb"] => memory_bomb(),
        ["alloc-bomb"] => alloc_bomb(),
        ["recurse"] => {
            println!("depth {}", recurse(0));
            ExitCode::SUCCESS
        }
        ["flood", bytes] => flood(bytes.parse().expect("flood BYTES")),
        ["fds"] => report("opened", probe_fds()),
        ["escape", paths @ ..] => report("opened", escape(paths)),
        ["readonly", file] => report("changed", modify_read_only(file)),
        ["env"] => {
            for (name, value) in std::env::vars() {
                println!("{name}={value}");
            }
            ExitCode::SUCCESS
        }
        ["sleep-on", clock, mode] => sleep_on(clock, mode),
        ["open-fifo", path] => report("opened", open_fifo(path)),
        ["hoard-fds", file] => hoard_fds(file),
        ["poll-many", count] => poll_many(count.parse().expect("poll-many N")),
        ["log", ptr, len] => {
            let ptr = match *ptr {
                "end" => (core::arch::wasm32::memory_size(0) * 65536) as i32,
                ptr => ptr.parse().expect("log PTR LEN"),
            };
            // SAFETY: the host checks the range; that is what is under test.
            unsafe { host_log(ptr, len.parse().expect("log PTR LEN")) };
            println!("host.log returned");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: see the doc comment of guests/hostile/src/main.rs");
            ExitCode::from(2)
        }
    }
}

/// Grows linear memory a page at a time until the host refuses, then shows
/// the guest is still alive: the refusal is a -1 from `memory.grow`, not a crash.
fn memory_bomb() -> ExitCode {
    let mut pages = core::arch::wasm32::memory_size(0);
    while core::arch::wasm32::memory_grow(0, 1) != usize::MAX {
        pages += 1;
    }
    println!("memory.grow refused at {} bytes", pages * 65536);
    let survivor = vec![7u8; 1024];
    println!(
        "still running: {}",
        survivor.iter().map(|&b| usize::from(b)).sum::<usize>()
    );
    ExitCode::SUCCESS
}

/// Allocates until the allocator fails; Rust then aborts the guest.
fn alloc_bomb() -> ExitCode {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

/// Recursion with no base case. `black_box` keeps each frame alive so the
/// compiler cannot turn it into a loop.
#[inline(never)]
#[allow(unconditional_recursion)] // the attack
fn recurse(depth: u64) -> u64 {
    std::hint::black_box(recurse(std::hint::black_box(depth + 1))) ^ depth
}

/// Writes `total` bytes to stdout, then says on stderr how many it wrote.
fn flood(total: usize) -> ExitCode {
    let chunk = [b'x'; 65536];
    let mut stdout = std::io::stdout().lock();
    let mut written = 0;
    while written < total {
        let n = chunk.len().min(total - written);
        stdout.write_all(&chunk[..n]).expect("stdout accepts everything");
        written += n;
    }
    drop(stdout);
    eprintln!("wrote {written} bytes");
    ExitCode::SUCCESS
}

/// Prints the attempts that got through and exits 0 when none did.
fn report(verb: &str, successes: usize) -> ExitCode {
    println!("{verb} {successes}");
    if successes == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every descriptor from 3 to 1023, asked about in every way that needs no
/// buffer of the host's: any answer but BADF is a descriptor the guest holds.
fn probe_fds() -> usize {
    let mut open = 0;
    for fd in FIRST_PREOPEN_FD..1024 {
        let mut byte = [0u8; 1];
        let iov = wasi::Iovec {
            buf: byte.as_mut_ptr(),
            buf_len: 1,
        };
        let ciov = wasi::Ciovec {
            buf: byte.as_ptr(),
            buf_len: 1,
        };
        // SAFETY: each call gets a descriptor number and buffers that outlive it.
        let answers = unsafe {
            [
                ("fdstat_get", wasi::fd_fdstat_get(fd).map(drop)),
                ("prestat_get", wasi::fd_prestat_get(fd).map(drop)),
                ("read", wasi::fd_read(fd, &[iov]).map(drop)),
                ("write", wasi::fd_write(fd, &[ciov]).map(drop)),
                ("seek", wasi::fd_seek(fd, 0, wasi::WHENCE_CUR).map(drop)),
                ("filestat_get", wasi::fd_filestat_get(fd).map(drop)),
            ]
        };
        for (call, answer) in answers {
            if answer != Err(wasi::ERRNO_BADF) {
                println!("fd {fd}: {call} -> {}", describe(answer));
                open += 1;
            }
        }
    }
    open
}

fn describe(result: Result<(), wasi::Errno>) -> &'static str {
    match result {
        Ok(()) => "OK",
        Err(errno) => errno.name(),
    }
}

/// Opens each path, for reading and for writing, relative to every granted
/// directory, following symlinks; prints what the host said and reads
/// whatever opened.
fn escape(paths: &[&str]) -> usize {
    let mut opened = 0;
    for (dir, name) in preopens() {
        for path in paths {
            for (mode, oflags, rights) in [
                ("read", 0, wasi::RIGHTS_FD_READ),
                ("write", wasi::OFLAGS_CREAT, wasi::RIGHTS_FD_WRITE),
            ] {
                // SAFETY: a plain WASI call on a descriptor the host granted.
                let result =
                    unsafe { wasi::path_open(dir, wasi::LOOKUPFLAGS_SYMLINK_FOLLOW, path, oflags, rights, 0, 0) };
                match result {
                    Ok(fd) => {
                        opened += 1;
                        println!(
                            "{name} {path} {mode}: OPENED: {}",
                            String::from_utf8_lossy(&guest_support::read_to_end(fd).unwrap_or_default())
                        );
                        // SAFETY: `fd` was just opened and is closed once.
                        let _ = unsafe { wasi::fd_close(fd) };
                    }
                    Err(errno) => println!("{name} {path} {mode}: {}", errno.name()),
                }
            }
        }
    }
    opened
}

/// Tries to change `file` and the directory holding it every way WASI
/// preview 1 offers; the directory is granted read-only.
fn modify_read_only(file: &str) -> usize {
    let Some((dir, _)) = preopens().into_iter().next() else {
        println!("no granted directory");
        return 1;
    };
    let text = b"changed by the guest";
    let ciov = wasi::Ciovec {
        buf: text.as_ptr(),
        buf_len: text.len(),
    };
    // SAFETY: a plain WASI call on the granted descriptor.
    let open = |oflags, rights, fdflags| unsafe { wasi::path_open(dir, 0, file, oflags, rights, 0, fdflags) };
    let with_fd = |fd: Result<wasi::Fd, wasi::Errno>, action: &dyn Fn(wasi::Fd) -> Result<(), wasi::Errno>| {
        let fd = fd?;
        let result = action(fd);
        // SAFETY: `fd` is ours and closed once.
        let _ = unsafe { wasi::fd_close(fd) };
        result
    };
    let read_fd = || open(0, wasi::RIGHTS_FD_READ, 0);
    // SAFETY (all below): plain WASI calls on the granted descriptor or on
    // descriptors opened from it, with buffers that outlive the calls.
    let attempts: [(&str, Result<(), wasi::Errno>); 14] = unsafe {
        [
            (
                "open for writing",
                with_fd(open(0, wasi::RIGHTS_FD_WRITE, 0), &|_| Ok(())),
            ),
            (
                "write",
                with_fd(open(0, wasi::RIGHTS_FD_WRITE, 0), &|fd| {
                    wasi::fd_write(fd, &[ciov]).map(drop)
                }),
            ),
            ("truncate on open", with_fd(open(wasi::OFLAGS_TRUNC, 0, 0), &|_| Ok(()))),
            (
                "append",
                with_fd(open(0, wasi::RIGHTS_FD_WRITE, wasi::FDFLAGS_APPEND), &|fd| {
                    wasi::fd_write(fd, &[ciov]).map(drop)
                }),
            ),
            (
                "pwrite through a read handle",
                with_fd(read_fd(), &|fd| wasi::fd_pwrite(fd, &[ciov], 0).map(drop)),
            ),
            (
                "write through a read handle",
                with_fd(read_fd(), &|fd| wasi::fd_write(fd, &[ciov]).map(drop)),
            ),
            ("set size", with_fd(read_fd(), &|fd| wasi::fd_filestat_set_size(fd, 0))),
            (
                "set times",
                wasi::path_filestat_set_times(dir, 0, file, 0, 0, wasi::FSTFLAGS_MTIM | wasi::FSTFLAGS_ATIM),
            ),
            ("create", with_fd(open_new(dir, "created.txt"), &|_| Ok(()))),
            ("mkdir", wasi::path_create_directory(dir, "created-dir")),
            ("rename", wasi::path_rename(dir, file, dir, "renamed.txt")),
            ("link", wasi::path_link(dir, 0, file, dir, "linked.txt")),
            ("symlink", wasi::path_symlink(file, dir, "symlinked.txt")),
            ("delete", wasi::path_unlink_file(dir, file)),
        ]
    };
    let mut changed = 0;
    for (attempt, result) in attempts {
        println!("{attempt}: {}", describe(result));
        changed += usize::from(result.is_ok());
    }
    changed
}

fn open_new(dir: wasi::Fd, name: &str) -> Result<wasi::Fd, wasi::Errno> {
    let rights = wasi::RIGHTS_FD_WRITE;
    // SAFETY: a plain WASI call on the granted descriptor.
    unsafe { wasi::path_open(dir, 0, name, wasi::OFLAGS_CREAT | wasi::OFLAGS_EXCL, rights, 0, 0) }
}

/// One `poll_oneoff` subscription a minute ahead on `clock`; prints the
/// errno when the host answers instead of cutting the run.
fn sleep_on(clock: &str, mode: &str) -> ExitCode {
    let id = match clock {
        "realtime" => wasi::CLOCKID_REALTIME,
        "monotonic" => wasi::CLOCKID_MONOTONIC,
        "process" => wasi::CLOCKID_PROCESS_CPUTIME_ID,
        "thread" => wasi::CLOCKID_THREAD_CPUTIME_ID,
        _ => return ExitCode::from(2),
    };
    let minute = 60_000_000_000;
    let (timeout, flags) = match mode {
        "relative" => (minute, 0),
        // SAFETY: a plain WASI call.
        "absolute" => (
            unsafe { wasi::clock_time_get(id, 1) }.unwrap_or(0) + minute,
            wasi::SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME,
        ),
        _ => return ExitCode::from(2),
    };
    let subscription = clock_subscription(id, timeout, flags);
    // SAFETY: an all-zero event is a valid value for the host to overwrite.
    let mut event: wasi::Event = unsafe { std::mem::zeroed() };
    // SAFETY: one subscription and room for one event, both outliving the call.
    let result = unsafe { wasi::poll_oneoff(&subscription, &mut event, 1) };
    println!("woke up: {}", describe(result.map(drop)));
    ExitCode::SUCCESS
}

/// One `poll_oneoff` on `count` subscriptions, all due at once: the host
/// makes something of its own for each, out of the guest's memory.
fn poll_many(count: usize) -> ExitCode {
    let subscriptions = vec![clock_subscription(wasi::CLOCKID_MONOTONIC, 0, 0); count];
    // SAFETY: an all-zero event is a valid value for the host to overwrite.
    let mut events: Vec<wasi::Event> = vec![unsafe { std::mem::zeroed() }; count];
    // SAFETY: `count` subscriptions and room for as many events, outliving the call.
    let result = unsafe { wasi::poll_oneoff(subscriptions.as_ptr(), events.as_mut_ptr(), count) };
    println!("polled {count}: {}", describe(result.map(drop)));
    ExitCode::SUCCESS
}

/// A `poll_oneoff` subscription to `clock` at `timeout` (nanoseconds;
/// `flags` say whether absolute).
fn clock_subscription(id: wasi::Clockid, timeout: u64, flags: wasi::Subclockflags) -> wasi::Subscription {
    wasi::Subscription {
        userdata: 0,
        u: wasi::SubscriptionU {
            tag: wasi::EVENTTYPE_CLOCK.raw(),
            u: wasi::SubscriptionUU {
                clock: wasi::SubscriptionClock {
                    id,
                    timeout,
                    precision: 0,
                    flags,
                },
            },
        },
    }
}

/// Opens `path` for reading and for writing: on a FIFO with no other end,
/// `open(2)` itself waits for one.
fn open_fifo(path: &str) -> usize {
    let Some((dir, _)) = preopens().into_iter().next() else {
        println!("no granted directory");
        return 1;
    };
    let mut opened = 0;
    for (mode, rights) in [("read", wasi::RIGHTS_FD_READ), ("write", wasi::RIGHTS_FD_WRITE)] {
        // SAFETY: a plain WASI call on the granted descriptor.
        let result = unsafe { wasi::path_open(dir, wasi::LOOKUPFLAGS_SYMLINK_FOLLOW, path, 0, rights, 0, 0) };
        if let Ok(fd) = result {
            opened += 1;
            // SAFETY: `fd` was just opened and is closed once.
            let _ = unsafe { wasi::fd_close(fd) };
        }
        println!("{path} {mode}: {}", describe(result.map(drop)));
    }
    opened
}

/// Opens `file` again and again, never closing, until the host refuses.
fn hoard_fds(file: &str) -> ExitCode {
    let Some((dir, _)) = preopens().into_iter().next() else {
        println!("no granted directory");
        return ExitCode::FAILURE;
    };
    let mut held = 0usize;
    let refusal = loop {
        // SAFETY: a plain WASI call on the granted descriptor.
        match unsafe { wasi::path_open(dir, 0, file, 0, wasi::RIGHTS_FD_READ, 0, 0) } {
            Ok(_) => held += 1,
            Err(errno) => break errno,
        }
        if held == 1 << 20 {
            println!("held {held}, never refused");
            return ExitCode::FAILURE;
        }
    };
    println!("held {held}, then {}", refusal.name());
    ExitCode::SUCCESS
}
