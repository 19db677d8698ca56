//! The cache's per-user secret in the Linux kernel's user keyring: a store
//! that no file name reaches, so no directory grant, whatever it covers,
//! hands it to a guest (a guest makes no system calls of its own).
//!
//! One key per user serves every cache. It is created on first use and
//! lasts until reboot (on older kernels, until the user's last process
//! ends): entries written under an earlier key then fail their MAC, a
//! cache miss. Two processes creating it
//! at once may each write a key before reading back the one the keyring
//! kept: entries the loser wrote fail their MAC later, never the reverse.

use std::ffi::CStr;
use std::io;

use super::KEY_LEN;

/// The description the user's cache key has in their keyring.
pub(in crate::cache) const USER_KEY: &CStr = c"wasm-host:cache-mac-v1";

/// The key in the user keyring described `description`, created (random
/// bytes) if there is none, or `None` where this process has no keyring
/// (a kernel without keys, a seccomp filter such as Docker's default that
/// refuses the calls, a key it may not search): the caller falls back.
#[cfg(target_os = "linux")]
pub(super) fn user_key(description: &CStr) -> io::Result<Option<[u8; KEY_LEN]>> {
    let found = match linux::search(description) {
        Err(e) if linux::is_absent(&e) => {
            let mut key = [0; KEY_LEN];
            getrandom::fill(&mut key).map_err(io::Error::other)?;
            // The user's later processes in other login sessions, which do
            // not possess the key, read it too; group and others get nothing.
            linux::add(description, &key).and_then(|serial| linux::set_permissions(serial).map(|()| serial))
        }
        found => found,
    };
    // What the keyring holds now, which a racing creator may have replaced.
    match found.and_then(linux::read) {
        Ok(key) => Ok(Some(key)),
        Err(e) if linux::is_unavailable(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn user_key(_: &CStr) -> io::Result<Option<[u8; KEY_LEN]>> {
    Ok(None)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::CStr;
    use std::io;

    use libc::{c_long, c_ulong};

    use super::KEY_LEN;

    const KEY_TYPE: &CStr = c"user";
    /// KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ | KEY_USR_SEARCH
    /// (linux/keyctl.h does not export them to libc).
    const PERMISSIONS: c_ulong = 0x3f00_0000 | 0x0001_0000 | 0x0002_0000 | 0x0008_0000;

    /// A key's serial number.
    pub(super) type Serial = c_long;

    /// No keyring for this process: no such system call, or one refused.
    pub(super) fn is_unavailable(e: &io::Error) -> bool {
        matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM | libc::EACCES))
    }

    /// No such key, or only a dead one (which adding replaces).
    pub(super) fn is_absent(e: &io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOKEY | libc::EKEYEXPIRED | libc::EKEYREVOKED)
        )
    }

    fn check(result: c_long) -> io::Result<c_long> {
        if result < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(result)
        }
    }

    pub(super) fn search(description: &CStr) -> io::Result<Serial> {
        // SAFETY: KEYCTL_SEARCH reads two NUL-terminated strings; 0 links
        // the key found nowhere.
        check(unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                libc::KEYCTL_SEARCH as c_long,
                libc::KEY_SPEC_USER_KEYRING as c_long,
                KEY_TYPE.as_ptr(),
                description.as_ptr(),
                0 as c_long,
            )
        })
    }

    /// Adds `payload` to the user keyring, or replaces the payload of the
    /// key already there under `description`.
    pub(super) fn add(description: &CStr, payload: &[u8]) -> io::Result<Serial> {
        // SAFETY: add_key reads two NUL-terminated strings and `payload`'s
        // bytes, and keeps none of them.
        check(unsafe {
            libc::syscall(
                libc::SYS_add_key,
                KEY_TYPE.as_ptr(),
                description.as_ptr(),
                payload.as_ptr(),
                payload.len(),
                libc::KEY_SPEC_USER_KEYRING as c_long,
            )
        })
    }

    pub(super) fn set_permissions(serial: Serial) -> io::Result<()> {
        // SAFETY: KEYCTL_SETPERM takes two integers.
        check(unsafe { libc::syscall(libc::SYS_keyctl, libc::KEYCTL_SETPERM as c_long, serial, PERMISSIONS) }).map(drop)
    }

    /// The key's payload, which must be [`KEY_LEN`] bytes.
    pub(super) fn read(serial: Serial) -> io::Result<[u8; KEY_LEN]> {
        let mut key = [0; KEY_LEN];
        // SAFETY: KEYCTL_READ writes at most `key.len()` bytes into `key`
        // and returns the payload's whole length.
        let len = check(unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                libc::KEYCTL_READ as c_long,
                serial,
                key.as_mut_ptr(),
                key.len(),
            )
        })?;
        if len as usize != KEY_LEN {
            return Err(io::Error::other(format!("the key holds {len} bytes, not {KEY_LEN}")));
        }
        Ok(key)
    }

    /// Destroys the key (tests make their own and remove them after).
    #[cfg(test)]
    pub(super) fn invalidate(serial: Serial) -> io::Result<()> {
        // SAFETY: KEYCTL_INVALIDATE takes one integer.
        check(unsafe { libc::syscall(libc::SYS_keyctl, libc::KEYCTL_INVALIDATE as c_long, serial) }).map(drop)
    }

    /// Sets the key's permissions to `permissions` (tests take some away).
    #[cfg(test)]
    pub(super) fn set_permissions_to(serial: Serial, permissions: c_ulong) -> io::Result<()> {
        // SAFETY: KEYCTL_SETPERM takes two integers.
        check(unsafe { libc::syscall(libc::SYS_keyctl, libc::KEYCTL_SETPERM as c_long, serial, permissions) }).map(drop)
    }

    /// The key's permissions, as the kernel describes the key
    /// (`type;uid;gid;perm;description`, the permissions in hex).
    #[cfg(test)]
    pub(super) fn permissions(serial: Serial) -> io::Result<u32> {
        let mut description = [0u8; 256];
        // SAFETY: KEYCTL_DESCRIBE writes at most `description.len()` bytes,
        // NUL-terminated, into `description`.
        check(unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                libc::KEYCTL_DESCRIBE as c_long,
                serial,
                description.as_mut_ptr(),
                description.len(),
            )
        })?;
        let description = CStr::from_bytes_until_nul(&description).map_err(io::Error::other)?;
        let permissions = description.to_str().map_err(io::Error::other)?.split(';').nth(3);
        permissions
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .ok_or_else(|| io::Error::other(format!("no permissions in {description:?}")))
    }
}

/// A key of the tests' own in the user keyring (never the user's cache
/// key), destroyed when dropped.
#[cfg(all(test, target_os = "linux"))]
pub(super) struct TestKey(pub(super) std::ffi::CString);

#[cfg(all(test, target_os = "linux"))]
impl TestKey {
    pub(super) fn new() -> Self {
        let mut name = [0; 8];
        getrandom::fill(&mut name).unwrap();
        Self(std::ffi::CString::new(format!("wasm-host:test-{}", super::hex(&name))).unwrap())
    }

    /// Whether this process can add keys to the user keyring at all
    /// (asked of the kernel directly, not of the code under test).
    pub(super) fn keyring_works() -> bool {
        let probe = Self::new();
        linux::add(&probe.0, &[0; KEY_LEN]).is_ok()
    }

    pub(super) fn replace(&self, payload: &[u8]) {
        linux::add(&self.0, payload).unwrap();
    }
}

#[cfg(all(test, target_os = "linux"))]
impl Drop for TestKey {
    fn drop(&mut self) {
        if let Ok(serial) = linux::search(&self.0) {
            let _ = linux::invalidate(serial);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::process::Command;

    use super::*;

    /// A test key and the key `user_key` created under it; `None` (after
    /// checking that `user_key` then falls back) where there is no keyring.
    fn created() -> Option<(TestKey, [u8; KEY_LEN])> {
        let test_key = TestKey::new();
        if !TestKey::keyring_works() {
            assert!(
                user_key(&test_key.0).unwrap().is_none(),
                "no keyring: the caller falls back"
            );
            return None;
        }
        let key = user_key(&test_key.0).unwrap().expect("a keyring");
        Some((test_key, key))
    }

    /// Tells the child process of the test below which key to read, and
    /// what it holds.
    const KEY_ENV: &str = "KEYRING_TEST_KEY";

    /// A later process of the user in another login session, which does
    /// not possess the keys of this one's, reads the same key: the cache's
    /// entries stay good for it.
    #[test]
    fn a_process_in_another_session_reads_the_same_key() {
        const NAME: &str = "cache::disk::keyring::tests::a_process_in_another_session_reads_the_same_key";
        if let Some(expected) = std::env::var_os(KEY_ENV) {
            let expected = expected.into_string().unwrap();
            let (description, hex) = expected.split_once('=').unwrap();
            // A new, anonymous session keyring, which the user keyring is
            // not linked from.
            // SAFETY: KEYCTL_JOIN_SESSION_KEYRING with no name takes nothing else.
            let joined = unsafe {
                libc::syscall(
                    libc::SYS_keyctl,
                    libc::KEYCTL_JOIN_SESSION_KEYRING as libc::c_long,
                    0 as libc::c_long,
                )
            };
            assert!(joined > 0, "{}", io::Error::last_os_error());
            let description = std::ffi::CString::new(description).unwrap();
            let key = user_key(&description).unwrap().expect("the key is found");
            assert_eq!(super::super::hex(&key), hex);
            return;
        }
        let Some((test_key, key)) = created() else { return };
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(
                KEY_ENV,
                format!("{}={}", test_key.0.to_str().unwrap(), super::super::hex(&key)),
            )
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "in the child:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The tests' keys do not outlive them in the user's keyring.
    #[test]
    fn a_test_key_is_destroyed_when_dropped() {
        let test_key = TestKey::new();
        if !TestKey::keyring_works() {
            return;
        }
        test_key.replace(&[0; KEY_LEN]);
        let description = test_key.0.clone();
        assert!(linux::search(&description).is_ok(), "the key is there");
        drop(test_key);
        let gone = linux::search(&description);
        assert!(gone.as_ref().is_err_and(linux::is_absent), "{gone:?}");
    }

    /// The key created is the user's alone: its group and others get no
    /// permission at all.
    #[test]
    fn the_key_created_is_closed_to_group_and_others() {
        let Some((test_key, _)) = created() else { return };
        let serial = linux::search(&test_key.0).unwrap();
        let permissions = linux::permissions(serial).expect("the user may view the key");
        assert_eq!(permissions & 0xffff, 0, "group and others: {permissions:08x}");
    }

    /// A key this process may not search is as no keyring: `None`, and the
    /// caller falls back to the file, neither failing nor replacing the key.
    #[test]
    fn a_key_this_process_may_not_search_is_as_no_keyring() {
        /// View and set its attributes, as possessor and as user: no search, no read.
        const VIEW_AND_SETATTR: libc::c_ulong = 0x2100_0000 | 0x0021_0000;
        let Some((test_key, key)) = created() else { return };
        let serial = linux::search(&test_key.0).unwrap();
        linux::set_permissions_to(serial, VIEW_AND_SETATTR).unwrap();
        let refused = user_key(&test_key.0);
        // Searchable again, so that the test key is found and destroyed.
        linux::set_permissions(serial).unwrap();
        assert!(matches!(refused, Ok(None)), "{refused:?}");
        assert_eq!(user_key(&test_key.0).unwrap(), Some(key), "the key left as it was");
    }
}
