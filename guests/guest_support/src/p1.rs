//! Granted directories and reads, through raw WASI preview 1 calls so that
//! a refusal keeps the exact errno the host returned.

/// The first descriptor after stdin, stdout and stderr: where WASI places
/// the granted (pre-opened) directories.
pub const FIRST_PREOPEN_FD: wasi::Fd = 3;

/// Every granted directory: its descriptor and the path the guest sees.
pub fn preopens() -> Vec<(wasi::Fd, String)> {
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

/// The granted directory whose guest path is the longest prefix of `path`,
/// and `path` relative to it.
pub fn find_preopen(path: &str) -> Option<(wasi::Fd, &str)> {
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

/// Reads `fd` to its end.
pub fn read_to_end(fd: wasi::Fd) -> Result<Vec<u8>, wasi::Errno> {
    let mut contents = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let iov = wasi::Iovec {
            buf: chunk.as_mut_ptr(),
            buf_len: chunk.len(),
        };
        // SAFETY: `iov` points at `chunk`, which outlives the call.
        match unsafe { wasi::fd_read(fd, &[iov]) }? {
            0 => return Ok(contents),
            n => contents.extend_from_slice(&chunk[..n]),
        }
    }
}
