//! How long each test took when it last ran, remembered beside the test
//! binary (`<binary>.wasm-host-durations`), so that the next run starts the
//! longest first: started last, a long test keeps one core busy after the
//! others are done (docs/performance.md). A hint only: a file that cannot
//! be read or written, or that says anything odd, changes the order at
//! most, never a verdict.

use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

/// The most read of a durations file: far more than the lines of a crate's
/// tests (ten thousand tests of 80-byte names take 1 MiB), and little for a
/// planted file to cost.
const MAX_BYTES: u64 = 4 << 20;

/// Each test's duration, by name, as last seen, and where they are kept.
#[derive(Debug, Default)]
pub struct Durations {
    known: HashMap<String, Duration>,
    place: Option<Place>,
}

impl Durations {
    /// Those kept beside `module`; none when the file is missing, not a
    /// regular file, too large or not text. The directory is opened now,
    /// before any guest runs, and [`Durations::write`] writes in it: a
    /// guest granted a directory on the binary's path that swaps it for a
    /// link meanwhile changes nothing.
    pub fn beside(module: &Path) -> Durations {
        let place = Place::beside(module).ok();
        let text = place.as_ref().and_then(|place| place.read().ok());
        let mut durations = text.as_deref().map_or_else(Durations::default, Durations::parse);
        durations.place = place;
        durations
    }

    /// One test per line, `MICROSECONDS<TAB>NAME`; other lines are skipped.
    fn parse(text: &str) -> Durations {
        let known = (text.lines())
            .filter_map(|line| {
                let (micros, name) = line.split_once('\t')?;
                Some((name.to_owned(), Duration::from_micros(micros.parse().ok()?)))
            })
            .collect();
        Durations { known, place: None }
    }

    /// The order to start `tests` (indices into them): tests never seen
    /// first, in the order given (they may be long), then the others,
    /// longest first.
    pub fn schedule(&self, tests: &[String]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..tests.len()).collect();
        // Stable: ties keep the order given.
        order.sort_by_key(|&i| std::cmp::Reverse(self.known.get(&tests[i]).copied().unwrap_or(Duration::MAX)));
        order
    }

    pub fn record(&mut self, test: &str, duration: Duration) {
        self.known.insert(test.to_owned(), duration);
    }

    /// Keeps the durations of the tests in `listed` (those of tests gone
    /// are forgotten) where they were read from: written to a new file,
    /// then moved over the old one, so that a reader sees one or the other
    /// whole, and a link planted there is replaced, not followed.
    pub fn write(&self, listed: &[String]) -> io::Result<()> {
        let place = self
            .place
            .as_ref()
            .ok_or_else(|| io::Error::other("no directory to keep them in"))?;
        let mut text = String::new();
        for name in listed {
            if let Some(duration) = self.known.get(name)
                && !name.contains(['\t', '\n', '\r'])
            {
                text.push_str(&format!("{}\t{name}\n", duration.as_micros()));
            }
        }
        place.replace(text.as_bytes())
    }
}

/// The durations file of a test binary: its directory, opened once, and
/// its name in it.
#[derive(Debug)]
struct Place {
    dir: File,
    name: CString,
}

#[cfg(unix)]
impl Place {
    fn beside(module: &Path) -> io::Result<Place> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::OpenOptionsExt;
        let parent = module.parent().filter(|parent| !parent.as_os_str().is_empty());
        let dir = (File::options().read(true))
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(parent.unwrap_or(Path::new(".")))?;
        let mut name = module.file_name().map_or_else(OsString::new, OsString::from);
        name.push(".wasm-host-durations");
        let name = CString::new(name.as_bytes()).map_err(io::Error::other)?;
        Ok(Place { dir, name })
    }

    /// `name` in the directory, opened with `flags` (never through a link).
    fn open(&self, name: &CString, flags: libc::c_int) -> io::Result<File> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: a directory descriptor, a NUL-terminated name; the
        // descriptor returned is ours alone.
        let fd = unsafe { libc::openat(self.dir.as_raw_fd(), name.as_ptr(), flags, 0o644) };
        match fd {
            -1 => Err(io::Error::last_os_error()),
            // SAFETY: as above.
            fd => Ok(unsafe { File::from_raw_fd(fd) }),
        }
    }

    /// The file's text, if it is a regular file (opened without waiting:
    /// a FIFO's `open` would wait for a writer) of at most [`MAX_BYTES`].
    fn read(&self) -> io::Result<String> {
        let file = self.open(&self.name, libc::O_RDONLY | libc::O_NONBLOCK)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let mut text = String::new();
        file.take(MAX_BYTES + 1).read_to_string(&mut text)?;
        match text.len() as u64 > MAX_BYTES {
            true => Err(io::Error::other("too large")),
            false => Ok(text),
        }
    }

    fn replace(&self, contents: &[u8]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut temporary = self.name.as_bytes().to_vec();
        temporary.extend_from_slice(format!(".{}.tmp", std::process::id()).as_bytes());
        let temporary = CString::new(temporary).map_err(io::Error::other)?;
        let dir = self.dir.as_raw_fd();
        let written = (self.open(&temporary, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL))
            .and_then(|mut file| file.write_all(contents))
            .and_then(|()| {
                // SAFETY: the directory's descriptor, NUL-terminated names.
                match unsafe { libc::renameat(dir, temporary.as_ptr(), dir, self.name.as_ptr()) } {
                    0 => Ok(()),
                    _ => Err(io::Error::last_os_error()),
                }
            });
        if written.is_err() {
            // SAFETY: as above.
            unsafe { libc::unlinkat(dir, temporary.as_ptr(), 0) };
        }
        written
    }
}

/// Elsewhere nothing is remembered.
#[cfg(not(unix))]
impl Place {
    fn beside(_: &Path) -> io::Result<Place> {
        Err(io::Error::other("durations are kept on unix"))
    }

    fn read(&self) -> io::Result<String> {
        Err(io::Error::other("durations are kept on unix"))
    }

    fn replace(&self, _: &[u8]) -> io::Result<()> {
        Err(io::Error::other("durations are kept on unix"))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    /// The durations of the test binary `t.wasm` in `dir`.
    fn of(dir: &Path) -> Durations {
        Durations::beside(&dir.join("t.wasm"))
    }

    fn file(dir: &Path) -> std::path::PathBuf {
        dir.join("t.wasm.wasm-host-durations")
    }

    #[test]
    fn tests_never_seen_start_first_then_the_longest() {
        let durations = Durations::parse("10\ta\n300\tb\n20\tc\n300\td\n");
        let tests = names(&["a", "b", "new", "c", "d", "newer"]);
        let order: Vec<&str> = (durations.schedule(&tests).iter())
            .map(|&i| tests[i].as_str())
            .collect();
        assert_eq!(order, ["new", "newer", "b", "d", "c", "a"]);
    }

    #[test]
    fn what_is_written_is_read_back_for_the_listed_tests_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(file(dir.path()), "5\tgone\n7\tkept\n").unwrap();
        let mut durations = of(dir.path());
        durations.record("ran", Duration::from_micros(1_234_567));
        durations.record("odd\tname", Duration::from_micros(1));
        durations
            .write(&names(&["ran", "kept", "never ran", "odd\tname"]))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(file(dir.path())).unwrap(),
            "1234567\tran\n7\tkept\n"
        );
        let read = of(dir.path());
        assert_eq!(read.known.len(), 2);
        assert_eq!(read.known["ran"], Duration::from_micros(1_234_567));
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_hostile_file_gives_no_durations_and_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path());
        // Lines that say nothing usable.
        std::fs::write(&path, "x\tname\n-1\tname\n99999999999999999999999\tname\nno tab\n\t\n").unwrap();
        assert!(of(dir.path()).known.is_empty());
        std::fs::write(&path, [0xff, 0xfe, b'\t', b'a']).unwrap();
        assert!(of(dir.path()).known.is_empty());
        // Past the size read.
        std::fs::write(&path, "1\ta\n".repeat((MAX_BYTES / 4 + 1) as usize)).unwrap();
        assert!(of(dir.path()).known.is_empty());
        // A link (here to a device read for ever), a FIFO whose open would
        // wait for a writer.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        assert!(of(dir.path()).known.is_empty());
        std::fs::remove_file(&path).unwrap();
        let name = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        assert!(of(dir.path()).known.is_empty());
        assert!(of(&dir.path().join("missing")).known.is_empty());
    }

    #[test]
    fn a_link_planted_at_the_file_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "precious").unwrap();
        std::os::unix::fs::symlink(&target, file(dir.path())).unwrap();
        let mut durations = of(dir.path());
        durations.record("a", Duration::from_micros(3));
        durations.write(&names(&["a"])).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(file(dir.path())).unwrap().is_symlink());
    }

    /// A guest granted a directory on the test binary's path (the package
    /// directory or `target/`, read-write) can make a link out of its grant
    /// (WASI's `path_symlink` takes any relative target) and swap it in for
    /// the binary's directory while its tests run: the durations are still
    /// written in the directory opened before they ran (found by the red
    /// team, end to end with `wasm-host test` and a flipping link).
    #[test]
    fn a_directory_swapped_for_a_link_out_of_the_grant_is_not_written_through() {
        let (granted, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let deps = granted.path().join("deps");
        std::fs::create_dir(&deps).unwrap();
        let mut durations = of(&deps);
        // The guest, while its tests run: the directory moved aside, a link
        // to elsewhere in its place.
        std::fs::rename(&deps, granted.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), &deps).unwrap();
        durations.record("planted by the guest", Duration::from_micros(1));
        durations.write(&names(&["planted by the guest"])).unwrap();
        let written: Vec<_> = (std::fs::read_dir(outside.path()).unwrap().flatten())
            .map(|entry| entry.file_name())
            .collect();
        assert!(
            written.is_empty(),
            "written outside the binary's directory: {written:?}"
        );
        assert!(
            file(&granted.path().join("moved")).exists(),
            "written where it was read from"
        );
    }
}
