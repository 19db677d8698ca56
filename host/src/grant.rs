//! Granting a host directory: it is opened once, that open directory is
//! checked against the directories no guest may have (the compiled-module
//! cache's key and entries, `Runtime::protected_dirs`), and the same open
//! directory is what WASI is given. Nothing is looked up by the grant's
//! path after the open, so a symbolic link swapped between the check and
//! the preopen changes nothing.
//!
//! wasmtime-wasi 48 preopens only a path (`WasiCtxBuilder::preopened_dir`),
//! so the path it is given names the open descriptor itself: on Linux
//! `/proc/self/fd/N`, a link the kernel resolves to the very directory the
//! descriptor holds, wherever it has been moved since; elsewhere on unix
//! `/dev/fd/N`, whose open is a `dup` of the descriptor (fd(4)).

use std::path::{Path, PathBuf};

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::Error;

/// Grants the directory `host_path` names to the guest at `guest_path`,
/// unless it is, contains or lies inside one of `protected`.
pub(crate) fn preopen(
    wasi: &mut WasiCtxBuilder,
    host_path: &Path,
    guest_path: &str,
    perms: FsPerms,
    protected: &Protected,
) -> Result<(), Error> {
    let preopen_error = |source: std::io::Error| Error::Preopen {
        host_path: host_path.to_owned(),
        source,
    };
    #[cfg(unix)]
    let (path, _open) = {
        // Links in the path are followed, once: the grant is what they
        // named at this moment.
        let dir = os::open_dir(host_path).map_err(preopen_error)?;
        // Named through a process file system too (`/proc/PID/root/...`,
        // another mount namespace's root, whose own `proc` no mount table
        // of ours lists).
        #[cfg(target_os = "linux")]
        if os::is_process_fs(&dir).map_err(preopen_error)? || os::named_through_process_fs(host_path) {
            return Err(preopen_error(std::io::Error::other(
                "it is in a process file system (/proc), whose `self/mem` is the host process's own memory",
            )));
        }
        let ancestry = os::ancestry(&dir).map_err(preopen_error)?;
        // `/` (or another name of it), or a directory holding a process
        // file system mounted elsewhere: nothing else may refuse it (a run
        // with no cache or key directory to protect).
        #[cfg(target_os = "linux")]
        if os::holds_process_fs(&ancestry).map_err(preopen_error)? {
            return Err(preopen_error(std::io::Error::other(
                "it holds a process file system (/proc), whose `self/mem` is the host process's own memory",
            )));
        }
        if let Some(covered) = protected.covered_by(&ancestry) {
            return Err(Error::GrantCoversCache {
                host_path: host_path.to_owned(),
                protected_dir: covered.to_owned(),
            });
        }
        #[cfg(test)]
        hook::run();
        (os::descriptor_path(&dir), dir)
    };
    #[cfg(not(unix))]
    let (path, _open) = {
        // No descriptor to hand over: checked by canonical path, then
        // opened by its path again.
        let grant = std::fs::canonicalize(host_path).map_err(preopen_error)?;
        if let Some(covered) = protected.covered_by(&grant) {
            return Err(Error::GrantCoversCache {
                host_path: host_path.to_owned(),
                protected_dir: covered.to_owned(),
            });
        }
        (host_path.to_owned(), ())
    };
    // `_open`, the open directory, lives until WASI has opened its own.
    wasi.preopened_dir(&path, guest_path, perms).map_err(|e| {
        preopen_error(
            e.downcast::<std::io::Error>()
                .unwrap_or_else(|e| std::io::Error::other(format!("{e:#}"))),
        )
    })?;
    Ok(())
}

/// The directories no guest may be granted, as they are now: for each, the
/// identity (device, inode) of the directory itself if it exists, and of
/// every existing directory its path names on the way to it (links
/// followed) and all their ancestors (a grant of any of those contains it,
/// the place it will be created, or a link on the way a guest could replace).
pub(crate) struct Protected {
    dirs: Vec<ProtectedDir>,
}

struct ProtectedDir {
    path: PathBuf,
    #[cfg(unix)]
    itself: Option<os::Id>,
    #[cfg(unix)]
    containers: Vec<os::Id>,
    #[cfg(not(unix))]
    canonical: Option<PathBuf>,
}

impl Protected {
    /// Looks `paths` up. One this process cannot look at, a guest of it
    /// cannot reach either.
    pub(crate) fn of(paths: &[PathBuf]) -> Self {
        Self {
            dirs: paths.iter().map(|path| ProtectedDir::of(path)).collect(),
        }
    }

    /// The protected directory a grant overlaps, given the identities of
    /// the granted directory and its ancestors (itself first): one it is or
    /// contains, or one it lies inside.
    #[cfg(unix)]
    fn covered_by(&self, ancestry: &[os::Id]) -> Option<&Path> {
        let granted = ancestry.first()?;
        self.dirs
            .iter()
            .find(|dir| dir.containers.contains(granted) || dir.itself.is_some_and(|id| ancestry.contains(&id)))
            .map(|dir| dir.path.as_path())
    }

    /// As on unix, by canonical paths.
    #[cfg(not(unix))]
    fn covered_by(&self, grant: &Path) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|dir| {
                let target = dir.canonical.as_deref().unwrap_or(&dir.path);
                target.starts_with(grant) || grant.starts_with(target)
            })
            .map(|dir| dir.path.as_path())
    }
}

impl ProtectedDir {
    #[cfg(unix)]
    fn of(path: &Path) -> Self {
        // Every directory the path passes through as it is spelled, not
        // only where its links lead: a guest granted the one holding a
        // link could put its own directory in the link's place.
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let (mut itself, mut containers) = (None, Vec::new());
        for (depth, dir) in absolute.ancestors().enumerate() {
            let Ok(dir) = os::open_dir(dir) else { continue };
            let Ok(id) = os::id(&dir) else { continue };
            if depth == 0 {
                itself = Some(id);
            }
            // Found through `..` from a deeper one: its ancestors are in too.
            if !containers.contains(&id) {
                containers.extend(os::ancestry(&dir).unwrap_or_default());
            }
        }
        Self {
            path: path.to_owned(),
            itself,
            containers,
        }
    }

    #[cfg(not(unix))]
    fn of(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            canonical: std::fs::canonicalize(path).ok(),
        }
    }
}

#[cfg(unix)]
mod os {
    use std::ffi::CString;
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    use std::path::{Path, PathBuf};

    /// A directory's device and inode.
    pub(super) type Id = (u64, u64);

    /// Opens the directory `path` names, following links; as wasmtime-wasi
    /// opens a preopen (`O_PATH` where there is one: search permission
    /// suffices).
    pub(super) fn open_dir(path: &Path) -> io::Result<File> {
        #[cfg(target_os = "linux")]
        const LOOKUP_ONLY: libc::c_int = libc::O_PATH;
        #[cfg(not(target_os = "linux"))]
        const LOOKUP_ONLY: libc::c_int = 0;
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | LOOKUP_ONLY)
            .open(path)
    }

    pub(super) fn id(dir: &File) -> io::Result<Id> {
        let meta = dir.metadata()?;
        Ok((meta.dev(), meta.ino()))
    }

    /// The identities of `dir` and of each of its ancestors up to the root,
    /// itself first: each found through `..` from the open directory (so
    /// from where it is now, whatever path named it), never by a path.
    pub(super) fn ancestry(dir: &File) -> io::Result<Vec<Id>> {
        let mut ids = vec![id(dir)?];
        let mut up = String::new();
        loop {
            up.push_str("../");
            let relative = CString::new(up.as_str()).expect("no NUL in `../`");
            let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: a valid descriptor, a NUL-terminated path and room
            // for one `stat`, which the call fills when it returns 0.
            let stat = unsafe {
                if libc::fstatat(dir.as_raw_fd(), relative.as_ptr(), stat.as_mut_ptr(), 0) != 0 {
                    // Past PATH_MAX, ENAMETOOLONG: no directory is that deep.
                    return Err(io::Error::last_os_error());
                }
                stat.assume_init()
            };
            #[allow(clippy::unnecessary_cast, reason = "the fields' types differ between platforms")]
            let parent = (stat.st_dev as u64, stat.st_ino as u64);
            // The root is its own parent.
            if ids.last() == Some(&parent) {
                return Ok(ids);
            }
            ids.push(parent);
        }
    }

    /// True when `dir` lies in a process file system (`/proc`, however
    /// reached: `/dev/fd` and links to it included).
    #[cfg(target_os = "linux")]
    pub(super) fn is_process_fs(dir: &File) -> io::Result<bool> {
        let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
        // SAFETY: a valid descriptor and room for one `statfs`, which the
        // call fills when it returns 0.
        let stat = unsafe {
            if libc::fstatfs(dir.as_raw_fd(), stat.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            stat.assume_init()
        };
        Ok(stat.f_type == libc::PROC_SUPER_MAGIC)
    }

    /// True when a directory `path` names on the way to its last component
    /// lies in a process file system (links followed as a lookup would).
    #[cfg(target_os = "linux")]
    pub(super) fn named_through_process_fs(path: &Path) -> bool {
        (path.ancestors().skip(1))
            .filter(|ancestor| !ancestor.as_os_str().is_empty())
            .any(|ancestor| open_dir(ancestor).is_ok_and(|dir| is_process_fs(&dir).unwrap_or(true)))
    }

    /// True when the directory whose ancestry (itself first) is `ancestry`
    /// holds a process file system: `/proc`, or one mounted anywhere below
    /// it (a bind mount of `/proc`, a chroot's `proc`), which a guest's
    /// lookups would reach across the mount.
    #[cfg(target_os = "linux")]
    pub(super) fn holds_process_fs(ancestry: &[Id]) -> io::Result<bool> {
        let Some(granted) = ancestry.first() else {
            return Ok(false);
        };
        for mount_point in process_fs_mounts() {
            let Ok(mounted) = open_dir(&mount_point) else {
                continue;
            };
            if is_process_fs(&mounted)? && self::ancestry(&mounted).is_ok_and(|ids| ids.contains(granted)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Where process file systems are mounted: `/proc`, and every mount of
    /// type `proc` the mount table lists.
    #[cfg(target_os = "linux")]
    fn process_fs_mounts() -> Vec<PathBuf> {
        let mut mounts = vec![PathBuf::from("/proc")];
        // This thread's: a mount namespace can be a thread's own, and it is
        // the one this thread's lookups go through.
        let table = std::fs::read_to_string("/proc/thread-self/mountinfo")
            .or_else(|_| std::fs::read_to_string("/proc/self/mountinfo"))
            .unwrap_or_default();
        for line in table.lines() {
            // `ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [TAGS...] - TYPE SOURCE OPTIONS`
            let Some((fields, after)) = line.split_once(" - ") else {
                continue;
            };
            if after.split(' ').next() == Some("proc")
                && let Some(point) = fields.split(' ').nth(4)
            {
                mounts.push(PathBuf::from(unescape_mount_point(point)));
            }
        }
        mounts
    }

    /// A mount point as the mount table writes it, its space, tab, newline
    /// and backslash as octal escapes (`\040`).
    #[cfg(target_os = "linux")]
    pub(super) fn unescape_mount_point(escaped: &str) -> std::ffi::OsString {
        use std::os::unix::ffi::OsStringExt;
        let bytes = escaped.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let octal = bytes
                .get(i + 1..i + 4)
                .filter(|digits| digits.iter().all(|d| (b'0'..=b'7').contains(d)));
            match (bytes[i], octal) {
                (b'\\', Some(digits)) => {
                    out.push(digits.iter().fold(0u8, |n, d| n.wrapping_mul(8).wrapping_add(d - b'0')));
                    i += 4;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        std::ffi::OsString::from_vec(out)
    }

    /// A path that names the directory `dir` holds, wherever it now is.
    pub(super) fn descriptor_path(dir: &File) -> PathBuf {
        #[cfg(target_os = "linux")]
        const FD_DIR: &str = "/proc/self/fd";
        #[cfg(not(target_os = "linux"))]
        const FD_DIR: &str = "/dev/fd";
        PathBuf::from(format!("{FD_DIR}/{}", dir.as_raw_fd()))
    }
}

/// What a test makes happen between a grant's check and its preopen (the
/// test is `launch.rs`'s, which may use `Sandbox`).
#[cfg(all(test, unix))]
pub(crate) mod hook {
    use std::cell::RefCell;

    thread_local! {
        static BETWEEN_CHECK_AND_PREOPEN: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
    }

    /// Runs `action` once, on this thread, after the next grant is checked
    /// and before it is preopened.
    pub(crate) fn between_check_and_preopen(action: impl FnOnce() + 'static) {
        BETWEEN_CHECK_AND_PREOPEN.with(|hook| *hook.borrow_mut() = Some(Box::new(action)));
    }

    /// True while an action waits for a grant.
    pub(crate) fn pending() -> bool {
        BETWEEN_CHECK_AND_PREOPEN.with(|hook| hook.borrow().is_some())
    }

    pub(super) fn run() {
        if let Some(action) = BETWEEN_CHECK_AND_PREOPEN.with(|hook| hook.borrow_mut().take()) {
            action();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::os::unescape_mount_point;

    #[test]
    fn mount_points_are_read_as_the_mount_table_escapes_them() {
        assert_eq!(unescape_mount_point("/proc"), "/proc");
        assert_eq!(unescape_mount_point(r"/a\040b/c\011d\012e\134f"), "/a b/c\td\ne\\f");
        // Not an escape: kept as written.
        assert_eq!(unescape_mount_point(r"/x\09y\"), r"/x\09y\");
    }
}
