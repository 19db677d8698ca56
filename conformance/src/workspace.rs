//! Each test's own copy of the suite directories it is granted, so that no
//! two tests share one (all of them can run at once) and no test writes in
//! the suite itself. Copies live on a memory-backed filesystem when there
//! is one (`/dev/shm`): `fd_readdir` alone creates a thousand files.
//!
//! A granted directory must stay inside its suite: an absolute path, a
//! `..`, or a symbolic link that leads out is refused before anything is
//! read or written.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use tempfile::TempDir;

/// A test's private directory, removed (without following links) when dropped.
pub struct Workspace {
    root: TempDir,
    copies: usize,
}

impl Workspace {
    /// A fresh, empty workspace.
    pub fn new() -> io::Result<Workspace> {
        let shm = Path::new("/dev/shm");
        let builder = {
            let mut b = tempfile::Builder::new();
            b.prefix("wasm-host-conformance-");
            b
        };
        let root = match shm.is_dir() {
            true => builder.tempdir_in(shm).or_else(|_| builder.tempdir())?,
            false => builder.tempdir()?,
        };
        Ok(Workspace { root, copies: 0 })
    }

    /// Copies the suite directory `relative` (as a specification names it)
    /// into the workspace, leaving out `*.cleanup` entries (test output),
    /// and returns the copy's path. Files, directories and symbolic links
    /// (as links) are copied; anything else (a FIFO, a socket) is left out.
    pub fn copy_in(&mut self, suite_dir: &Path, relative: &str) -> Result<PathBuf, String> {
        let source = confine(suite_dir, relative)?;
        self.copies += 1;
        let copy = self.root.path().join(self.copies.to_string());
        copy_tree(&source, &copy).map_err(|e| format!("cannot copy {relative} for the test: {e}"))?;
        Ok(copy)
    }
}

/// `suite_dir/relative`, required to be a directory inside `suite_dir`
/// (itself canonical) once every symbolic link is resolved.
pub fn confine(suite_dir: &Path, relative: &str) -> Result<PathBuf, String> {
    let shown = relative.escape_debug();
    let path = Path::new(relative);
    if path.is_absolute() {
        return Err(format!(
            "directory `{shown}` is absolute: a test's directories are inside its suite"
        ));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!(
            "directory `{shown}` has `..`: a test's directories are inside its suite"
        ));
    }
    let resolved = suite_dir
        .join(path)
        .canonicalize()
        .map_err(|e| format!("directory `{shown}`: {e}"))?;
    if !resolved.starts_with(suite_dir) {
        return Err(format!(
            "directory `{shown}` leads out of the suite (to {}) through a symbolic link",
            resolved.display().to_string().escape_debug()
        ));
    }
    if !resolved.is_dir() {
        return Err(format!("`{shown}` is not a directory"));
    }
    Ok(resolved)
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if Path::new(&name).extension().is_some_and(|e| e == "cleanup") {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_file() {
            fs::copy(&source, &target)?;
        } else if kind.is_symlink() {
            copy_link(&source, &target)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn copy_link(source: &Path, target: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(fs::read_link(source)?, target)
}

#[cfg(not(unix))]
fn copy_link(_source: &Path, _target: &Path) -> io::Result<()> {
    // Links are left out where making one needs privileges (Windows).
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite() -> (TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        fs::create_dir_all(canonical.join("fs.dir/sub")).unwrap();
        fs::write(canonical.join("fs.dir/sub/a.txt"), "a").unwrap();
        fs::write(canonical.join("fs.dir/old.cleanup"), "stale").unwrap();
        (dir, canonical)
    }

    #[test]
    fn each_copy_is_private_and_leaves_out_test_output() {
        let (_dir, suite) = suite();
        let mut workspace = Workspace::new().unwrap();
        let one = workspace.copy_in(&suite, "fs.dir").unwrap();
        let two = workspace.copy_in(&suite, "fs.dir").unwrap();
        assert_ne!(one, two);
        assert_eq!(fs::read_to_string(one.join("sub/a.txt")).unwrap(), "a");
        assert!(!one.join("old.cleanup").exists());
        fs::write(one.join("new.txt"), "x").unwrap();
        assert!(!two.join("new.txt").exists());
        assert!(!suite.join("fs.dir/new.txt").exists(), "the suite is never written");
        let root = workspace.root.path().to_owned();
        drop(workspace);
        assert!(!root.exists(), "removed when the test is done");
    }

    #[test]
    fn a_directory_outside_the_suite_is_refused() {
        let (_dir, suite) = suite();
        let outside = tempfile::tempdir().unwrap();
        let absolute = outside.path().to_str().unwrap();
        for (relative, reason) in [
            (absolute, "is absolute"),
            ("../x", "has `..`"),
            ("fs.dir/../fs.dir", "has `..`"),
            ("missing.dir", "No such file"),
            ("fs.dir/sub/a.txt", "is not a directory"),
        ] {
            let error = confine(&suite, relative).unwrap_err();
            assert!(error.contains(reason), "{relative}: {error}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outside.path(), suite.join("out.dir")).unwrap();
            let error = confine(&suite, "out.dir").unwrap_err();
            assert!(error.contains("leads out of the suite"), "{error}");
            std::os::unix::fs::symlink(suite.join("fs.dir"), suite.join("in.dir")).unwrap();
            assert_eq!(confine(&suite, "in.dir").unwrap(), suite.join("fs.dir"));
        }
    }

    #[cfg(unix)]
    #[test]
    fn links_inside_a_copied_directory_stay_links() {
        let (_dir, suite) = suite();
        std::os::unix::fs::symlink("/etc", suite.join("fs.dir/etc")).unwrap();
        let mut workspace = Workspace::new().unwrap();
        let copy = workspace.copy_in(&suite, "fs.dir").unwrap();
        assert_eq!(fs::read_link(copy.join("etc")).unwrap(), Path::new("/etc"));
        drop(workspace);
        assert!(
            Path::new("/etc").exists(),
            "removing the copy does not follow its links"
        );
    }
}
