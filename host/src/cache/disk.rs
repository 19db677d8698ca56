//! The on-disk level of the compiled-module cache, and why it can be trusted.
//!
//! An entry is native code that runs outside the sandbox, so the directory
//! must be one only the running user can write (owned by them, not writable
//! by group or others), and every entry carries a keyed BLAKE3 MAC under a
//! per-user secret key, so a guest that could reach a cache still cannot
//! forge an entry: a file this cache did not write, or one renamed to stand
//! for another module, is deleted unread. The key is kept where no grant
//! reaches, the kernel's user keyring ([`keyring`]); without one, in a
//! private directory of its own, never inside a cache directory
//! (docs/security.md says what that leaves open).
//! No file operation here follows a symbolic link or waits on a FIFO, and
//! nothing is read past a size cap.

use std::ffi::CStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

mod keyring;

pub(super) use keyring::USER_KEY;

/// Marks a cache file as ours, in this layout: payload, magic, BLAKE3 keyed
/// with the per-user secret of (magic, entry key, payload). (Version 3 put
/// the magic and MAC first; version 2 was HMAC-SHA256, slower to check on
/// every hit: docs/performance.md.)
const MAGIC: &[u8; 8] = b"WHCACHE4";
const TAG_LEN: usize = 32;
const TRAILER_LEN: usize = MAGIC.len() + TAG_LEN;
/// No entry is read (or written) past this size: a planted huge file, or a
/// link to `/dev/zero`, is refused before it is read.
const MAX_ENTRY_BYTES: u64 = 1 << 30;
/// The name every cache entry's file ends with.
const ENTRY_EXTENSION: &str = "cwasm";
/// Marks a file identity's alias, in the entries' layout: content hash,
/// magic, MAC of (magic, identity, content hash).
const ALIAS_MAGIC: &[u8; 8] = b"WHALIAS2";
/// The name every alias file ends with; aliases are evicted with entries.
const ALIAS_EXTENSION: &str = "alias";
/// Temporary files, while an entry or the key is being written.
const TEMP_EXTENSION: &str = "tmp";
/// A temporary file this old belongs to a writer that died.
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// The per-user secret the entries are authenticated with, in the key's
/// directory, where there is no keyring. Earlier versions kept it in the
/// cache directory: one found there is deleted, never used.
const KEY_FILE: &str = "mac.key";
const KEY_LEN: usize = 32;

/// Why a cache directory, the key file or an entry is not trusted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Untrusted {
    #[error("cannot use {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a {expected}", path.display())]
    WrongType { path: PathBuf, expected: &'static str },
    #[cfg(unix)]
    #[error("{} is owned by user {owner}, not by the running user ({uid})", path.display())]
    Owner { path: PathBuf, owner: u32, uid: u32 },
    #[cfg(unix)]
    #[error("{} is open to group or others (mode {mode:o})", path.display())]
    Mode { path: PathBuf, mode: u32 },
    #[error("{} is {len} bytes, more than {max}", path.display())]
    TooLarge { path: PathBuf, len: u64, max: u64 },
    #[error("{} has {links} names: another could be in a directory a guest is granted", path.display())]
    Linked { path: PathBuf, links: u64 },
    #[error("cannot use the key {description:?} in the user keyring: {source}")]
    Keyring {
        description: String,
        #[source]
        source: io::Error,
    },
    #[error("no directory for its key (set WASM_HOST_KEY_DIR, XDG_STATE_HOME or HOME)")]
    NoKeyDir,
    #[error("the key's directory {} and the cache directory {} overlap", key_dir.display(), cache_dir.display())]
    KeyInCache { key_dir: PathBuf, cache_dir: PathBuf },
}

/// What reading an entry found.
pub(super) enum Entry {
    Missing,
    /// Not a file this cache wrote for this key: already deleted.
    Rejected,
    /// The file, authenticated.
    Verified(Verified),
}

/// An authenticated file's bytes, read into memory: a copy no one can
/// change after its check. (A file mapped instead would not be: a guest
/// granted a directory holding a cache its own run does not protect, such
/// as a project's, can write an entry in place, as the user it runs as,
/// and a mapping, Wasmtime's included, shows the new bytes.)
pub(super) struct Verified {
    contents: Vec<u8>,
}

impl Verified {
    /// What the cache wrote: for an entry, what `Module::serialize` wrote.
    pub(super) fn payload(&self) -> &[u8] {
        &self.contents[..self.contents.len() - TRAILER_LEN]
    }
}

/// A trusted cache directory and its key.
pub(super) struct DiskCache {
    /// Canonical, so grants can be compared with it.
    dir: PathBuf,
    key: [u8; KEY_LEN],
    /// Bytes of entries in the directory as this process knows it: seeded by
    /// one scan at the first write, then kept by adding what it writes, so a
    /// write costs no directory scan until the bound is passed.
    usage: Mutex<Option<u64>>,
    max_bytes: u64,
    /// [`MAX_ENTRY_BYTES`]; smaller in tests of the cap's edge.
    max_entry_bytes: u64,
}

impl DiskCache {
    /// Opens `dir` (created, private, if missing) and the key: the one
    /// described `keyring` in the user keyring where this process has one
    /// ([`keyring::user_key`]), else the file in `key_dir` (created,
    /// private, if missing; the key on first use), a directory that must
    /// not overlap `dir`. Or says why they cannot be trusted.
    pub(super) fn open(
        dir: &Path,
        key_dir: Option<&Path>,
        keyring: Option<&CStr>,
        max_bytes: u64,
    ) -> Result<Self, Untrusted> {
        let dir = private_dir(dir)?;
        let in_keyring = match keyring {
            Some(description) => keyring::user_key(description).map_err(|source| Untrusted::Keyring {
                description: description.to_string_lossy().into_owned(),
                source,
            })?,
            None => None,
        };
        let key = match in_keyring {
            Some(key) => key,
            None => key_from_file(&dir, key_dir)?,
        };
        // A key an earlier version kept here, where a guest granted the
        // directory could have read it: never used, and removed.
        let _ = fs::remove_file(dir.join(KEY_FILE));
        Ok(Self {
            dir,
            key,
            usage: Mutex::new(None),
            max_bytes,
            max_entry_bytes: MAX_ENTRY_BYTES,
        })
    }

    /// The directory, canonical.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, key: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.{ENTRY_EXTENSION}", hex(key)))
    }

    /// The MAC of the file of kind `magic` for `key` holding `payload`.
    fn mac(&self, magic: &[u8; 8], key: &[u8; 32], payload: &[u8]) -> blake3::Hash {
        let mut mac = blake3::Hasher::new_keyed(&self.key);
        mac.update(magic).update(key).update(payload);
        mac.finalize()
    }

    /// The entry for `key`, authenticated, or why there is none; a rejected
    /// file is deleted. A hit refreshes the file's modification time, which
    /// eviction reads as its last use.
    pub(super) fn read(&self, key: &[u8; 32]) -> Entry {
        self.read_file(&self.entry_path(key), MAGIC, key, self.max_entry_bytes)
    }

    /// The file at `path`, of kind `magic`, for `key`, authenticated; a
    /// rejected file is deleted, and a hit's modification time refreshed.
    fn read_file(&self, path: &Path, magic: &[u8; 8], key: &[u8; 32], max_len: u64) -> Entry {
        let (file, contents) = match read_owned(path, max_len, os::WRITABLE_BY_OTHERS) {
            Ok(Some(found)) => found,
            Ok(None) => return Entry::Missing,
            Err(_) => {
                let _ = fs::remove_file(path);
                return Entry::Rejected;
            }
        };
        let authentic = contents.len() >= TRAILER_LEN && {
            let (payload, trailer) = contents.split_at(contents.len() - TRAILER_LEN);
            let (found_magic, tag) = trailer.split_at(magic.len());
            let tag: [u8; TAG_LEN] = tag.try_into().expect("the trailer ends with a tag");
            // `blake3::Hash` compares in constant time.
            found_magic == magic && self.mac(magic, key, payload) == blake3::Hash::from_bytes(tag)
        };
        if !authentic {
            let _ = fs::remove_file(path);
            return Entry::Rejected;
        }
        let _ = file.set_modified(SystemTime::now());
        Entry::Verified(Verified { contents })
    }

    /// Deletes the entry for `key` (a link is removed, never followed).
    pub(super) fn remove(&self, key: &[u8; 32]) {
        let _ = fs::remove_file(self.entry_path(key));
    }

    /// Writes the entry under a fresh, unguessable temporary name created
    /// exclusively, then renames it into place, so a concurrent reader sees
    /// a whole file or none and a planted link is replaced, not written
    /// through. Returns how many entries were evicted to stay in bounds.
    pub(super) fn write(&self, key: &[u8; 32], payload: &[u8]) -> io::Result<u64> {
        self.write_file(&self.entry_path(key), MAGIC, key, payload)
    }

    /// Writes the file at `path`, of kind `magic`, for `key`, as [`Self::write`] says.
    fn write_file(&self, path: &Path, magic: &[u8; 8], key: &[u8; 32], payload: &[u8]) -> io::Result<u64> {
        let len = (payload.len() + TRAILER_LEN) as u64;
        if len > self.max_entry_bytes {
            return Err(io::Error::other("compiled module too large to cache"));
        }
        let mac = self.mac(magic, key, payload);
        let (temp, mut out) = create_temp(&self.dir)?;
        let written = out
            .write_all(payload)
            .and_then(|()| out.write_all(magic))
            .and_then(|()| out.write_all(mac.as_bytes()))
            .and_then(|()| fs::rename(&temp, path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        Ok(self.account(path, len))
    }

    /// The content hash recorded for the file whose identity is `identity`
    /// (see `crate::cache::identity`), if there is an authentic record.
    pub(super) fn read_alias(&self, identity: &[u8; 32]) -> Option<[u8; 32]> {
        let path = self.alias_path(identity);
        match self.read_file(&path, ALIAS_MAGIC, identity, (32 + TRAILER_LEN) as u64) {
            Entry::Verified(alias) => alias.payload().try_into().ok(),
            Entry::Missing | Entry::Rejected => None,
        }
    }

    /// Records that the file whose identity is `identity` holds the module
    /// whose content hash is `hash`. Returns how many entries were evicted.
    pub(super) fn write_alias(&self, identity: &[u8; 32], hash: &[u8; 32]) -> io::Result<u64> {
        self.write_file(&self.alias_path(identity), ALIAS_MAGIC, identity, hash)
    }

    fn alias_path(&self, identity: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.{ALIAS_EXTENSION}", hex(identity)))
    }

    /// Adds a written entry to the running total; past the bound, deletes
    /// the least recently used entries (never `written`) down to 90% of it,
    /// so one scan pays for many writes. Returns how many were deleted.
    fn account(&self, written: &Path, len: u64) -> u64 {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let total = match *usage {
            Some(total) => total + len,
            // The first write of this process: the scan already sees it.
            None => self.scan().iter().map(|entry| entry.1).sum(),
        };
        let (total, evicted) = if total > self.max_bytes {
            self.evict(written)
        } else {
            (total, 0)
        };
        *usage = Some(total);
        evicted
    }

    /// Deletes the oldest entries until the rest fit in 90% of the bound.
    /// Another process may be evicting too: a file already gone is skipped.
    fn evict(&self, written: &Path) -> (u64, u64) {
        let mut entries = self.scan();
        let mut total: u64 = entries.iter().map(|entry| entry.1).sum();
        let target = self.max_bytes - self.max_bytes / 10;
        entries.sort();
        let mut evicted = 0;
        for (_, len, path) in entries {
            if total <= target {
                break;
            }
            if path != written && fs::remove_file(&path).is_ok() {
                total -= len;
                evicted += 1;
            }
        }
        (total, evicted)
    }

    /// Every entry and alias file: last use, size, path. Temporary files older than
    /// [`STALE_TEMP`], left by a process that died mid-write, are deleted.
    fn scan(&self) -> Vec<(SystemTime, u64, PathBuf)> {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let stale = SystemTime::now() - STALE_TEMP;
        dir.flatten()
            .filter_map(|entry| {
                // Not followed: a link is not an entry's size.
                let meta = entry.metadata().ok().filter(fs::Metadata::is_file)?;
                let (path, modified) = (entry.path(), meta.modified().ok()?);
                // Only names this cache gives: the directory may be one a
                // guest linked the cache's path to, holding the user's files.
                let name = path.file_stem()?.to_str()?;
                let named = |digits: usize, prefix: &str| {
                    name.strip_prefix(prefix)
                        .is_some_and(|hex| hex.len() == digits && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                };
                match path.extension() {
                    Some(e) if (e == ENTRY_EXTENSION || e == ALIAS_EXTENSION) && named(64, "") => {
                        Some((modified, meta.len(), path))
                    }
                    Some(e) if e == TEMP_EXTENSION && named(32, ".") && modified < stale => {
                        let _ = fs::remove_file(&path);
                        None
                    }
                    _ => None,
                }
            })
            .collect()
    }
}

/// `dir`, created (mode 0700) if missing, canonical, if it is a directory
/// owned by the running user and writable by no one else.
fn private_dir(dir: &Path) -> Result<PathBuf, Untrusted> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Untrusted::Io { path, source }
    };
    os::create_private_dir(dir).map_err(io(dir))?;
    let dir = fs::canonicalize(dir).map_err(io(dir))?;
    let meta = fs::metadata(&dir).map_err(io(&dir))?;
    if !meta.is_dir() {
        return Err(Untrusted::WrongType {
            path: dir,
            expected: "directory",
        });
    }
    os::check_owner(&dir, &meta, os::WRITABLE_BY_OTHERS)?;
    Ok(dir)
}

/// The key in the file in `key_dir` (private, created if missing), a
/// directory apart from the cache directory `dir` (canonical).
fn key_from_file(dir: &Path, key_dir: Option<&Path>) -> Result<[u8; KEY_LEN], Untrusted> {
    let key_dir = private_dir(key_dir.ok_or(Untrusted::NoKeyDir)?)?;
    if key_dir.starts_with(dir) || dir.starts_with(&key_dir) {
        return Err(Untrusted::KeyInCache {
            key_dir,
            cache_dir: dir.to_owned(),
        });
    }
    Ok(file_mac_key(&load_or_create_key(&key_dir)?, boot_id()?.as_deref()))
}

/// The key MACs are keyed with when the key is a file: the file's bytes
/// with this boot's identity mixed in, which no guest can read (it is in
/// `/proc`, and no directory there is granted). A guest that reads the
/// file (in a key directory the run that granted it did not know of) still
/// cannot forge an entry; like the keyring's, such a key lasts until the
/// machine restarts. Off Linux (no boot identity), the file alone.
fn file_mac_key(file: &[u8; KEY_LEN], boot_id: Option<&[u8]>) -> [u8; KEY_LEN] {
    match boot_id {
        Some(boot_id) => (blake3::Hasher::new_keyed(file))
            .update(b"wasm-host cache key, this boot: ")
            .update(boot_id)
            .finalize()
            .into(),
        None => *file,
    }
}

/// This boot's identity on Linux, none elsewhere. On Linux a run that
/// cannot read it (`/proc` hidden or not mounted) does not trust the key
/// file alone: a guest may have read the file.
fn boot_id() -> Result<Option<Vec<u8>>, Untrusted> {
    #[cfg(target_os = "linux")]
    {
        const PATH: &str = "/proc/sys/kernel/random/boot_id";
        let id = fs::read(PATH).map_err(|source| Untrusted::Io {
            path: PATH.into(),
            source,
        })?;
        match !id.is_empty() && id.len() <= 64 {
            true => Ok(Some(id)),
            false => Err(Untrusted::WrongType {
                path: PATH.into(),
                expected: "boot identity",
            }),
        }
    }
    #[cfg(not(target_os = "linux"))]
    Ok(None)
}

/// The key in `dir`, created (32 random bytes, mode 0600) by whichever
/// process gets there first: it is written under a temporary name and
/// moved into place, which fails rather than replace another's key. A key
/// file with another name is refused: that name may be in a directory some
/// guest is granted.
fn load_or_create_key(dir: &Path) -> Result<[u8; KEY_LEN], Untrusted> {
    let path = dir.join(KEY_FILE);
    let io = |source| Untrusted::Io {
        path: path.clone(),
        source,
    };
    for _ in 0..2 {
        if let Some((file, bytes)) = read_owned(&path, KEY_LEN as u64, os::READABLE_BY_OTHERS)? {
            os::check_one_name(&path, &file.metadata().map_err(io)?)?;
            return bytes.as_slice().try_into().map_err(|_| Untrusted::WrongType {
                path: path.clone(),
                expected: "key of 32 bytes",
            });
        }
        let mut key = [0; KEY_LEN];
        getrandom::fill(&mut key).map_err(|e| io(io::Error::other(e)))?;
        let (temp, mut out) = create_temp(dir).map_err(io)?;
        let linked = out.write_all(&key).and_then(|()| os::move_new(&temp, &path));
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => return Ok(key),
            // Another process created it first: read theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(e)),
        }
    }
    Err(io(io::Error::other("the key file keeps changing")))
}

/// Opens `path` without following a link or blocking on a FIFO, requires a
/// regular file owned by the running user with none of the `forbidden` mode
/// bits and at most `max_len` bytes, and reads it (never maps it: see
/// [`Verified`]). `None` if there is no file.
fn read_owned(path: &Path, max_len: u64, forbidden: u32) -> Result<Option<(File, Vec<u8>)>, Untrusted> {
    let io = |source| Untrusted::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = OpenOptions::new();
    options.read(true);
    os::no_follow(&mut options);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Untrusted::WrongType {
            path: path.to_owned(),
            expected: "regular file",
        });
    }
    os::check_owner(path, &meta, forbidden)?;
    if meta.len() > max_len {
        return Err(Untrusted::TooLarge {
            path: path.to_owned(),
            len: meta.len(),
            max: max_len,
        });
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // Capped again: the file may grow after the check.
    Read::by_ref(&mut file)
        .take(max_len)
        .read_to_end(&mut data)
        .map_err(io)?;
    Ok(Some((file, data)))
}

/// A new file in `dir` with an unguessable name, created exclusively
/// (never through an existing file or link), readable by its owner only.
fn create_temp(dir: &Path) -> io::Result<(PathBuf, File)> {
    let mut name = [0; 16];
    getrandom::fill(&mut name).map_err(io::Error::other)?;
    let path = dir.join(format!(".{}.{TEMP_EXTENSION}", hex(&name)));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    os::no_follow(&mut options);
    os::private_file(&mut options);
    let file = options.open(&path)?;
    Ok((path, file))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(unix)]
mod os {
    use std::fs::{DirBuilder, Metadata, OpenOptions};
    use std::io;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
    use std::path::Path;

    use super::Untrusted;

    /// Mode bits a directory or entry must not have: anyone else could write it.
    pub(super) const WRITABLE_BY_OTHERS: u32 = 0o022;
    /// Mode bits the key must not have: anyone else could read it and forge entries.
    pub(super) const READABLE_BY_OTHERS: u32 = 0o077;

    pub(super) fn create_private_dir(dir: &Path) -> io::Result<()> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }

    /// No following a final symbolic link; no waiting for a FIFO's writer.
    pub(super) fn no_follow(options: &mut OpenOptions) {
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }

    pub(super) fn private_file(options: &mut OpenOptions) {
        options.mode(0o600);
    }

    /// Moves `from` to `to` unless `to` exists. On Linux by one rename
    /// that never replaces, so the file never has two names (a reader
    /// would refuse it); elsewhere, or on a file system without that
    /// rename, linked then unlinked by the caller, and a reader in between
    /// keeps its cache in memory that once.
    pub(super) fn move_new(from: &Path, to: &Path) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::ffi::OsStrExt;
            let c = |path: &Path| std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other);
            let (from_c, to_c) = (c(from)?, c(to)?);
            // SAFETY: two NUL-terminated paths, resolved as `fs::hard_link`
            // resolves them.
            let renamed = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    from_c.as_ptr(),
                    libc::AT_FDCWD,
                    to_c.as_ptr(),
                    libc::RENAME_NOREPLACE,
                )
            };
            let error = io::Error::last_os_error();
            match renamed {
                0 => return Ok(()),
                _ if !matches!(error.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => return Err(error),
                _ => {}
            }
        }
        std::fs::hard_link(from, to)
    }

    /// Refuses a file with more than one name.
    pub(super) fn check_one_name(path: &Path, meta: &Metadata) -> Result<(), Untrusted> {
        match meta.nlink() {
            1 => Ok(()),
            links => Err(Untrusted::Linked {
                path: path.to_owned(),
                links,
            }),
        }
    }

    pub(super) fn check_owner(path: &Path, meta: &Metadata, forbidden: u32) -> Result<(), Untrusted> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if meta.uid() != uid {
            return Err(Untrusted::Owner {
                path: path.to_owned(),
                owner: meta.uid(),
                uid,
            });
        }
        if meta.mode() & forbidden != 0 {
            return Err(Untrusted::Mode {
                path: path.to_owned(),
                mode: meta.mode() & 0o7777,
            });
        }
        Ok(())
    }
}

/// Without unix ownership and modes, the directory is trusted as the
/// platform's own permissions leave it, and entries still carry the MAC.
#[cfg(not(unix))]
mod os {
    use std::fs::{Metadata, OpenOptions};
    use std::io;
    use std::path::Path;

    use super::Untrusted;

    pub(super) const WRITABLE_BY_OTHERS: u32 = 0;
    pub(super) const READABLE_BY_OTHERS: u32 = 0;

    pub(super) fn create_private_dir(dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    pub(super) fn no_follow(_: &mut OpenOptions) {}

    pub(super) fn private_file(_: &mut OpenOptions) {}

    pub(super) fn check_owner(_: &Path, _: &Metadata, _: u32) -> Result<(), Untrusted> {
        Ok(())
    }

    pub(super) fn check_one_name(_: &Path, _: &Metadata) -> Result<(), Untrusted> {
        Ok(())
    }

    pub(super) fn move_new(from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Barrier;

    use super::*;

    /// A cache in `dir` keyed from the file in `key_dir`, as where there is
    /// no keyring.
    fn open_without_keyring(dir: &Path, key_dir: &Path) -> Result<DiskCache, Untrusted> {
        DiskCache::open(dir, Some(key_dir), None, u64::MAX)
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The MAC key the key file at `path` gives on this boot.
    fn file_key(path: &Path) -> [u8; KEY_LEN] {
        file_mac_key(
            &fs::read(path).unwrap().try_into().unwrap(),
            boot_id().unwrap().as_deref(),
        )
    }

    /// On Linux, a run that cannot read the boot's identity (here a file
    /// with nothing in it mounted over it, in a mount namespace of a
    /// thread's own) does not trust the key file alone. Needs
    /// CAP_SYS_ADMIN; says it is skipped without it.
    #[cfg(target_os = "linux")]
    #[test]
    fn without_the_boots_identity_the_key_file_alone_is_not_trusted() {
        let (dir, key_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let empty = tempfile::NamedTempFile::new().unwrap();
        let opened = std::thread::spawn(move || {
            let c = |s: &str| std::ffi::CString::new(s).unwrap();
            let none = std::ptr::null();
            // SAFETY: system calls on NUL-terminated strings; the mount
            // namespace is this thread's alone, and ends with it.
            unsafe {
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return None;
                }
                let (root, target) = (c("/"), c("/proc/sys/kernel/random/boot_id"));
                let source = c(empty.path().to_str().unwrap());
                assert_eq!(
                    libc::mount(none, root.as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, none.cast()),
                    0
                );
                if libc::mount(source.as_ptr(), target.as_ptr(), none, libc::MS_BIND, none.cast()) != 0 {
                    return None;
                }
            }
            Some(open_without_keyring(dir.path(), key_dir.path()).map(|_| ()))
        })
        .join()
        .unwrap();
        match opened {
            None => eprintln!("skipped: no mount namespace of a thread's own here"),
            Some(opened) => assert!(matches!(opened, Err(Untrusted::WrongType { .. })), "{opened:?}"),
        }
    }

    /// Without a keyring, a guest that reads the key file still cannot
    /// forge an entry: MACs are keyed with the file and this boot's
    /// identity, which no grant reaches. An entry keyed with the file's
    /// bytes alone is rejected and deleted.
    #[cfg(target_os = "linux")]
    #[test]
    fn without_a_keyring_the_key_file_alone_forges_nothing() {
        let (dir, key_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cache = open_without_keyring(dir.path(), key_dir.path()).unwrap();
        let stolen: [u8; KEY_LEN] = fs::read(key_dir.path().join(KEY_FILE)).unwrap().try_into().unwrap();
        assert!(boot_id().unwrap().is_some(), "Linux gives the boot's identity");
        assert_ne!(cache.key, stolen);
        let (entry, planted) = ([3; 32], b"planted code".as_slice());
        let mac = blake3::Hasher::new_keyed(&stolen)
            .update(MAGIC)
            .update(&entry)
            .update(planted)
            .finalize();
        fs::write(cache.entry_path(&entry), [planted, MAGIC, mac.as_bytes()].concat()).unwrap();
        assert!(matches!(cache.read(&entry), Entry::Rejected));
        assert!(!cache.entry_path(&entry).exists(), "the forged entry is deleted");
        // A genuine entry of the same cache is still read back.
        cache.write(&entry, b"genuine code").unwrap();
        assert!(matches!(cache.read(&entry), Entry::Verified(v) if v.payload() == b"genuine code"));
    }

    /// Processes starting together on a new directory race to create the
    /// key; every one must end up with the one key that won.
    #[test]
    fn racing_openers_agree_on_one_key() {
        const OPENERS: usize = 8;
        for _ in 0..100 {
            let (dir, key_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let start = Barrier::new(OPENERS);
            let keys: Vec<[u8; KEY_LEN]> = std::thread::scope(|scope| {
                let openers: Vec<_> = (0..OPENERS)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            open_without_keyring(dir.path(), key_dir.path())
                                .expect("a private new directory")
                                .key
                        })
                    })
                    .collect();
                openers.into_iter().map(|opener| opener.join().unwrap()).collect()
            });
            assert!(keys.iter().all(|key| *key == keys[0]), "one key for all");
            assert_eq!(file_key(&key_dir.path().join(KEY_FILE)), keys[0]);
        }
    }

    /// With the keyring, no key is written to any file a grant could reach,
    /// and a key file there (an older version's, or one a guest planted)
    /// authenticates nothing: an entry a guest forged with it is rejected.
    #[cfg(target_os = "linux")]
    #[test]
    fn with_the_keyring_no_key_file_is_written_and_none_is_trusted() {
        let test_key = keyring::TestKey::new();
        let (dir, key_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let readable = [0x42; KEY_LEN];
        let key_file = key_dir.path().join(KEY_FILE);
        fs::write(&key_file, readable).unwrap();
        fs::set_permissions(&key_file, PermissionsExt::from_mode(0o600)).unwrap();
        let new_key_dir = key_dir.path().join("new");
        let open = |key_dir: &Path| DiskCache::open(dir.path(), Some(key_dir), Some(&test_key.0), u64::MAX).unwrap();
        let cache = open(&new_key_dir);
        if !keyring::TestKey::keyring_works() {
            // The fallback docs/security.md describes.
            assert_eq!(file_key(&new_key_dir.join(KEY_FILE)), cache.key);
            return;
        }
        assert!(!new_key_dir.exists(), "no key directory made");
        assert!(
            fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing in the cache directory"
        );
        let cache = open(key_dir.path());
        assert_ne!(cache.key, readable, "the key file is not used");
        assert_eq!(
            fs::read_dir(key_dir.path()).unwrap().count(),
            1,
            "nothing beside the old file"
        );

        let (entry, genuine, planted) = ([1; 32], b"genuine code".as_slice(), b"planted code".as_slice());
        cache.write(&entry, genuine).unwrap();
        let reopened = open(key_dir.path());
        assert_eq!(reopened.key, cache.key, "one key across opens");
        assert!(matches!(reopened.read(&entry), Entry::Verified(v) if v.payload() == genuine));
        // What a guest that read the key file writes in its place.
        let mac = blake3::Hasher::new_keyed(&readable)
            .update(MAGIC)
            .update(&entry)
            .update(planted)
            .finalize();
        fs::write(cache.entry_path(&entry), [planted, MAGIC, mac.as_bytes()].concat()).unwrap();
        assert!(matches!(reopened.read(&entry), Entry::Rejected));
    }

    /// An entry past the size cap is refused before anything is written
    /// (its payload here is zeroed pages never touched, not memory in use).
    #[test]
    fn an_entry_past_the_size_cap_is_not_written() {
        let (dir, key_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cache = open_without_keyring(dir.path(), key_dir.path()).unwrap();
        let payload = vec![0; MAX_ENTRY_BYTES as usize - TRAILER_LEN + 1];
        assert!(cache.write(&[1; 32], &payload).is_err());
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written");
    }

    /// The cap's edge, on a cap of 4 KiB: an entry of exactly the cap is
    /// written and read back, one byte more is not written.
    #[test]
    fn an_entry_of_exactly_the_size_cap_is_written_and_read() {
        let (dir, key_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut cache = open_without_keyring(dir.path(), key_dir.path()).unwrap();
        cache.max_entry_bytes = 4096;
        let at_the_cap = vec![7; 4096 - TRAILER_LEN];
        cache.write(&[1; 32], &at_the_cap).unwrap();
        assert!(matches!(cache.read(&[1; 32]), Entry::Verified(entry) if entry.payload() == at_the_cap));
        assert!(cache.write(&[2; 32], &[at_the_cap, vec![7]].concat()).is_err());
        assert!(matches!(cache.read(&[2; 32]), Entry::Missing));
    }

    /// What counts toward the bound (and may be evicted) is exactly the
    /// entries and aliases: not a writer's temporary file, which is deleted
    /// only once stale, nor any other file, however old.
    #[test]
    fn the_scan_counts_entries_and_aliases_and_deletes_only_stale_temporary_files() {
        let (dir, key_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cache = open_without_keyring(dir.path(), key_dir.path()).unwrap();
        let file = |name: &str, len: usize, age: Duration| {
            let path = cache.dir().join(name);
            fs::write(&path, vec![0; len]).unwrap();
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(SystemTime::now() - age)
                .unwrap();
            path
        };
        let old = STALE_TEMP * 2;
        let (a, b, c, d) = ("a".repeat(64), "b".repeat(64), "c".repeat(32), "d".repeat(32));
        let entry = file(&format!("{a}.{ENTRY_EXTENSION}"), 3, old);
        let alias = file(&format!("{b}.{ALIAS_EXTENSION}"), 5, Duration::ZERO);
        let stale = file(&format!(".{c}.{TEMP_EXTENSION}"), 7, old);
        let live = file(&format!(".{d}.{TEMP_EXTENSION}"), 11, Duration::ZERO);
        let other = file("e.other", 13, old);
        // The user's own files under a cache's extensions, in a directory a
        // guest linked the cache's path to.
        let users = file(&format!("notes.{ENTRY_EXTENSION}"), 17, old);
        let users_temp = file(&format!(".draft.{TEMP_EXTENSION}"), 19, old);

        let mut scanned: Vec<(u64, PathBuf)> = cache.scan().into_iter().map(|(_, len, path)| (len, path)).collect();
        scanned.sort();
        assert_eq!(scanned, [(3, entry), (5, alias)]);
        assert!(!stale.exists(), "a stale temporary file is deleted");
        assert!(live.exists() && other.exists(), "the rest is left alone");
        assert!(
            users.exists() && users_temp.exists(),
            "names the cache never gives are left alone"
        );
    }

    /// The keyring holds whatever it was last given: a key of another size
    /// is refused, not cut or padded.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_keyring_key_of_another_size_is_refused() {
        let test_key = keyring::TestKey::new();
        if !keyring::TestKey::keyring_works() {
            assert!(
                keyring::user_key(&test_key.0).unwrap().is_none(),
                "no keyring: the file instead"
            );
            return;
        }
        test_key.replace(&[7; KEY_LEN + 1]);
        let (dir, key_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let opened = DiskCache::open(dir.path(), Some(key_dir.path()), Some(&test_key.0), u64::MAX);
        assert!(matches!(opened, Err(Untrusted::Keyring { .. })));
    }

    #[test]
    fn without_a_keyring_the_key_is_a_private_file_in_a_private_directory_of_its_own() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("new").join("cache");
        let key_dir = parent.path().join("new").join("key");
        let cache = open_without_keyring(&dir, &key_dir).unwrap();
        assert_eq!(mode(&key_dir), 0o700);
        assert_eq!(mode(&key_dir.join(KEY_FILE)), 0o600);
        assert_eq!(file_key(&key_dir.join(KEY_FILE)), cache.key);
        assert!(!dir.join(KEY_FILE).exists(), "no key in the cache directory");

        for key_dir in [dir.clone(), dir.join("key"), parent.path().to_owned()] {
            assert!(
                matches!(open_without_keyring(&dir, &key_dir), Err(Untrusted::KeyInCache { .. })),
                "key in {}",
                key_dir.display()
            );
            assert!(!key_dir.join(KEY_FILE).exists());
        }
    }

    /// A key file someone else could read, one that is a link, or one with
    /// another name (a hard link, perhaps in a directory a guest is
    /// granted) is not used, and left as it is.
    #[test]
    fn without_a_keyring_a_key_file_others_could_read_or_reach_by_another_name_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let (dir, key_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let open = || open_without_keyring(dir.path(), key_dir.path());
        let key = open().unwrap().key;
        let key_file = key_dir.path().join(KEY_FILE);

        fs::set_permissions(&key_file, PermissionsExt::from_mode(0o640)).unwrap();
        assert!(
            matches!(open(), Err(Untrusted::Mode { mode: 0o640, .. })),
            "readable by the group, and says its mode"
        );
        fs::set_permissions(&key_file, PermissionsExt::from_mode(0o600)).unwrap();

        let granted = outside.path().join("granted");
        fs::hard_link(&key_file, &granted).unwrap();
        assert!(matches!(open(), Err(Untrusted::Linked { links: 2, .. })), "a hard link");
        fs::remove_file(&granted).unwrap();
        assert_eq!(open().unwrap().key, key, "the same key once it has one name again");

        let secret = outside.path().join("secret");
        fs::write(&secret, [7; KEY_LEN]).unwrap();
        fs::set_permissions(&secret, PermissionsExt::from_mode(0o600)).unwrap();
        fs::remove_file(&key_file).unwrap();
        std::os::unix::fs::symlink(&secret, &key_file).unwrap();
        assert!(matches!(open(), Err(Untrusted::Io { .. })), "a symbolic link");
        assert_eq!(fs::read(&secret).unwrap(), [7; KEY_LEN]);
    }
}
