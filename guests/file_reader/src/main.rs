//! Prints the file named by its first argument, or with
//! `--write PATH TEXT` writes TEXT to PATH (creating it).
//!
//! It talks to WASI preview 1 directly (the `wasi` crate) so that a refusal
//! is reported with the exact errno the host returned, e.g. `NOTCAPABLE`
//! when no granted directory contains the path, or `PERM` on a read-only grant.
//! Failures go to stderr as `error: ...` with exit code 1; they never trap.

use std::process::ExitCode;

use guest_support::find_preopen;

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
    let contents = guest_support::read_to_end(fd);
    // SAFETY: `fd` was opened above and is closed once.
    let _ = unsafe { wasi::fd_close(fd) };
    contents.map_err(fail)
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
