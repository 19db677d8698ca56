//! Prints the file named by its first argument, or with
//! `--write PATH TEXT` writes TEXT to PATH (creating it).
//!
//! It talks to WASI preview 1 directly (the `wasi` crate) so that a refusal
//! is reported with the exact errno the host returned, e.g. `NOTCAPABLE`
//! when no granted directory contains the path, or `PERM` on a read-only grant.
//! Failures go to stderr as `error: ...` with exit code 1; they never trap.

use std::process::ExitCode;

/// The first file descriptor after stdin, stdout and stderr: where WASI
/// places the granted (pre-opened) directories.
const FIRST_PREOPEN_FD: wasi::Fd = 3;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [path] => read(path).map(|contents| write_all(1, &contents)),
        [flag, path, text] if flag == "--write" => write(path, text.as_bytes()),
        _ => {
            eprintln!("usage: file_reader PATH | file_reader --write PATH TEXT");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// What went wrong, and the errno WASI gave for it.
struct Failure {
    action: &'static str,
    path: String,
    errno: wasi::Errno,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot {} {}: {} ({})",
            self.action,
            self.path,
            self.errno.name(),
            self.errno.message()
        )
    }
}

fn read(path: &str) -> Result<Vec<u8>, Failure> {
    let fail = |errno| Failure {
        action: "read",
        path: path.to_owned(),
        errno,
    };
    let fd = open(path, 0, wasi::RIGHTS_FD_READ).map_err(fail)?;
    let mut contents = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let iov = wasi::Iovec {
            buf: chunk.as_mut_ptr(),
            buf_len: chunk.len(),
        };
        // SAFETY: `iov` points at `chunk`, which outlives the call.
        match unsafe { wasi::fd_read(fd, &[iov]) } {
            Ok(0) => break,
            Ok(n) => contents.extend_from_slice(&chunk[..n]),
            Err(errno) => return Err(fail(errno)),
        }
    }
    // SAFETY: `fd` was opened above and is closed once.
    let _ = unsafe { wasi::fd_close(fd) };
    Ok(contents)
}

fn write(path: &str, text: &[u8]) -> Result<(), Failure> {
    let fail = |errno| Failure {
        action: "write",
        path: path.to_owned(),
        errno,
    };
    let oflags = wasi::OFLAGS_CREAT | wasi::OFLAGS_TRUNC;
    let fd = open(path, oflags, wasi::RIGHTS_FD_WRITE).map_err(fail)?;
    let ciov = wasi::Ciovec {
        buf: text.as_ptr(),
        buf_len: text.len(),
    };
    // SAFETY: `ciov` points at `text`, which outlives the call; `fd` is ours.
    let written = unsafe { wasi::fd_write(fd, &[ciov]) };
    let _ = unsafe { wasi::fd_close(fd) };
    written.map(drop).map_err(fail)
}

/// Opens `path` relative to the granted directory that contains it.
fn open(path: &str, oflags: wasi::Oflags, rights: wasi::Rights) -> Result<wasi::Fd, wasi::Errno> {
    let (dir, relative) = find_preopen(path).ok_or(wasi::ERRNO_NOTCAPABLE)?;
    // SAFETY: plain WASI call on a descriptor the host gave us.
    unsafe { wasi::path_open(dir, 0, relative, oflags, rights, 0, 0) }
}

/// The granted directory whose guest path is the longest prefix of `path`,
/// and `path` relative to it.
fn find_preopen(path: &str) -> Option<(wasi::Fd, &str)> {
    let mut best: Option<(wasi::Fd, &str, usize)> = None;
    for (fd, name) in preopens() {
        let name = name.trim_end_matches('/');
        let relative = if name.is_empty() || name == "." {
            (!path.starts_with('/')).then_some(path)
        } else {
            path.strip_prefix(name).and_then(|rest| rest.strip_prefix('/'))
        };
        if let Some(relative) = relative
            && best.is_none_or(|(_, _, len)| name.len() > len)
        {
            best = Some((fd, relative, name.len()));
        }
    }
    best.map(|(fd, relative, _)| (fd, relative))
}

/// Every granted directory: its descriptor and the path the guest sees.
fn preopens() -> Vec<(wasi::Fd, String)> {
    let mut found = Vec::new();
    for fd in FIRST_PREOPEN_FD.. {
        // SAFETY: querying a descriptor has no side effects; BADF ends the list.
        let Ok(prestat) = (unsafe { wasi::fd_prestat_get(fd) }) else {
            break;
        };
        if prestat.tag != wasi::PREOPENTYPE_DIR.raw() {
            continue;
        }
        // SAFETY: the tag says this is a directory.
        let mut name = vec![0u8; unsafe { prestat.u.dir.pr_name_len }];
        // SAFETY: `name` has exactly the length the host reported.
        if unsafe { wasi::fd_prestat_dir_name(fd, name.as_mut_ptr(), name.len()) }.is_ok() {
            found.push((fd, String::from_utf8_lossy(&name).into_owned()));
        }
    }
    found
}

fn write_all(fd: wasi::Fd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let ciov = wasi::Ciovec {
            buf: bytes.as_ptr(),
            buf_len: bytes.len(),
        };
        // SAFETY: `ciov` points at `bytes`, which outlives the call.
        match unsafe { wasi::fd_write(fd, &[ciov]) } {
            Ok(n) if n > 0 => bytes = &bytes[n..],
            _ => return,
        }
    }
}
