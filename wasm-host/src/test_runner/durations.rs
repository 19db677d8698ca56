//! How long each test took when it last ran, remembered beside the test
//! binary (`<binary>.wasm-host-durations`), so that the next run starts the
//! longest first: started last, a long test keeps one core busy after the
//! others are done (docs/performance.md). A hint only: a file that cannot
//! be read or written, or that says anything odd, changes the order at
//! most, never a verdict.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most read of a durations file: far more than the lines of a crate's
/// tests (ten thousand tests of 80-byte names take 1 MiB), and little for a
/// planted file to cost.
const MAX_BYTES: u64 = 4 << 20;

/// Each test's duration, by name, as last seen.
#[derive(Debug, Default)]
pub struct Durations {
    known: HashMap<String, Duration>,
}

impl Durations {
    /// Where the durations of `module`'s tests are kept.
    pub fn path(module: &Path) -> PathBuf {
        let mut name = module.file_name().map_or_else(OsString::new, OsString::from);
        name.push(".wasm-host-durations");
        module.with_file_name(name)
    }

    /// Those kept at `path`; none when it is missing, not a regular file,
    /// too large or not text.
    pub fn read(path: &Path) -> Durations {
        let Ok(file) = open_regular(path) else {
            return Durations::default();
        };
        let mut text = String::new();
        if file.take(MAX_BYTES + 1).read_to_string(&mut text).is_err() || text.len() as u64 > MAX_BYTES {
            return Durations::default();
        }
        Durations::parse(&text)
    }

    /// One test per line, `MICROSECONDS<TAB>NAME`; other lines are skipped.
    fn parse(text: &str) -> Durations {
        let known = (text.lines())
            .filter_map(|line| {
                let (micros, name) = line.split_once('\t')?;
                Some((name.to_owned(), Duration::from_micros(micros.parse().ok()?)))
            })
            .collect();
        Durations { known }
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
    /// are forgotten) at `path`: written to a new file, then moved over the
    /// old one, so that a reader sees one or the other whole, and a link
    /// planted at `path` is replaced, not followed.
    pub fn write(&self, path: &Path, listed: &[String]) -> io::Result<()> {
        let mut text = String::new();
        for name in listed {
            if let Some(duration) = self.known.get(name)
                && !name.contains(['\t', '\n', '\r'])
            {
                text.push_str(&format!("{}\t{name}\n", duration.as_micros()));
            }
        }
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .and_then(|()| std::fs::rename(&temporary, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written
    }
}

/// `path` opened for reading if it is a regular file (opened without
/// waiting: a FIFO's `open` would wait for a writer).
fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    match file.metadata()?.is_file() {
        true => Ok(file),
        false => Err(io::Error::other("not a regular file")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
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
        let path = Durations::path(&dir.path().join("t-0123.wasm"));
        assert_eq!(path, dir.path().join("t-0123.wasm.wasm-host-durations"));
        let mut durations = Durations::parse("5\tgone\n7\tkept\n");
        durations.record("ran", Duration::from_micros(1_234_567));
        durations.record("odd\tname", Duration::from_micros(1));
        let listed = names(&["ran", "kept", "never ran", "odd\tname"]);
        durations.write(&path, &listed).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1234567\tran\n7\tkept\n");
        let read = Durations::read(&path);
        assert_eq!(read.known.len(), 2);
        assert_eq!(read.known["ran"], Duration::from_micros(1_234_567));
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_hostile_file_gives_no_durations_and_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        // Lines that say nothing usable.
        std::fs::write(&path, "x\tname\n-1\tname\n99999999999999999999999\tname\nno tab\n\t\n").unwrap();
        assert!(Durations::read(&path).known.is_empty());
        std::fs::write(&path, [0xff, 0xfe, b'\t', b'a']).unwrap();
        assert!(Durations::read(&path).known.is_empty());
        // Past the size read.
        let large = "1\ta\n".repeat((MAX_BYTES / 4 + 1) as usize);
        std::fs::write(&path, large).unwrap();
        assert!(Durations::read(&path).known.is_empty());
        // A device read for ever, a FIFO whose open would wait for a writer.
        #[cfg(unix)]
        {
            assert!(Durations::read(Path::new("/dev/zero")).known.is_empty());
            let fifo = dir.path().join("fifo");
            let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
            assert!(Durations::read(&fifo).known.is_empty());
        }
        assert!(Durations::read(&dir.path().join("missing")).known.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_the_path_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "precious").unwrap();
        let path = dir.path().join("d");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let mut durations = Durations::default();
        durations.record("a", Duration::from_micros(3));
        durations.write(&path, &names(&["a"])).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
    }

    /// RED TEAM: a guest granted a directory on the test binary's path
    /// (the package directory or `target/` read-write) can create a
    /// symbolic link leading out of its grant (WASI's `path_symlink` takes
    /// any relative target) and swap it in for the binary's directory while
    /// its tests run: the durations are then written, through the link,
    /// into a directory the guest was never granted (and a file of that
    /// name there replaced). Seen end to end with `wasm-host test` and
    /// `--dir`: the file landed outside after a few runs of a flipping link.
    #[cfg(unix)]
    #[test]
    fn a_directory_swapped_for_a_link_out_of_the_grant_is_not_written_through() {
        let (granted, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let deps = granted.path().join("deps");
        std::fs::create_dir(&deps).unwrap();
        let path = Durations::path(&deps.join("t.wasm"));
        // The guest, while its tests run: the directory moved aside, a link
        // to elsewhere in its place.
        std::fs::rename(&deps, granted.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), &deps).unwrap();
        let mut durations = Durations::default();
        durations.record("planted by the guest", Duration::from_micros(1));
        let _ = durations.write(&path, &names(&["planted by the guest"]));
        let written: Vec<_> = std::fs::read_dir(outside.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            written.is_empty(),
            "written outside the binary's directory: {written:?}"
        );
    }
}
