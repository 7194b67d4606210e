//! Writing a file whole or not at all: every file dropjit saves (checkpoints, `.npy` files,
//! the command line's plot) goes through [`write`](fn@write), so a failure (a full disk, a killed
//! process) leaves the file that was there before exactly as it was, never a truncated one.
//!
//! The bytes go to a new temporary file in the same directory (so the rename below stays on
//! one file system), which is flushed to disk (`sync_all`) and then renamed over the final
//! path: a rename within a directory replaces the old file in one step. The directory is then
//! synced where the platform allows, so the rename itself survives a crash. On any failure the
//! temporary file is removed and the final path is not touched.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Replaces (or creates) the file at `path` with `bytes`, atomically: afterwards the file holds
/// either all of `bytes` or, on an error, whatever it held before. The error is an
/// [`Error::Io`] naming `path`.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// [`write`](fn@write) with the bytes written by `fill` (tests make `fill` fail halfway).
fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let temp = temp_path(path).map_err(io_error)?;
    // create_new: never reuse (and so never clobber) a file that happens to have that name.
    let mut file = (OpenOptions::new().write(true).create_new(true))
        .open(&temp)
        .map_err(io_error)?;
    let written = fill(&mut file)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            fs::rename(&temp, path)
        });
    if let Err(source) = written {
        // Best effort: the write already failed, and that is the error to report.
        let _ = fs::remove_file(&temp);
        return Err(io_error(source));
    }
    sync_directory(path);
    Ok(())
}

/// A fresh name beside `path`: `.NAME.PID.N.tmp`, unique within this process (`N` counts the
/// calls) and across processes (the process id).
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path does not end in a file name",
        ));
    };
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.{call}.tmp", std::process::id()));
    Ok(path.with_file_name(temp_name))
}

/// Syncs the directory holding `file`, so that a rename into it is on disk. Best effort: some
/// platforms and file systems cannot open or sync a directory, and by now the file is complete
/// under its final name either way.
fn sync_directory(file: &Path) {
    let directory = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Ok(handle) = File::open(directory) {
        let _ = handle.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, unique to this test.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dropjit-atomic-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = (fs::read_dir(dir).expect("read dir"))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn creates_and_replaces_a_file_leaving_no_temporary_file() {
        let dir = scratch("replace");
        let path = dir.join("a.bin");
        write(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        assert_eq!(names(&dir), ["a.bin"]);
    }

    #[test]
    fn a_write_failing_halfway_leaves_the_old_file_and_no_temporary_file() {
        let dir = scratch("halfway");
        let path = dir.join("a.bin");
        write(&path, b"old contents").unwrap();
        let error = write_with(&path, |file| {
            file.write_all(b"new")?;
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        })
        .unwrap_err();
        assert_eq!(error.to_string(), format!("{}: disk full", path.display()));
        assert_eq!(fs::read(&path).unwrap(), b"old contents");
        assert_eq!(names(&dir), ["a.bin"]);
    }

    #[test]
    fn a_directory_in_the_way_is_an_error_that_leaves_it_alone() {
        let dir = scratch("directory");
        let path = dir.join("a.bin");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"kept").unwrap();
        let error = write(&path, b"bytes").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}: ", path.display())),
            "{error}"
        );
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"kept");
        assert_eq!(names(&dir), ["a.bin"]);
    }

    #[test]
    fn a_parent_that_is_a_file_is_an_error_naming_the_path() {
        let dir = scratch("parent");
        let parent = dir.join("file");
        fs::write(&parent, b"kept").unwrap();
        let path = parent.join("a.bin");
        let error = write(&path, b"bytes").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}: ", path.display())),
            "{error}"
        );
        assert_eq!(fs::read(&parent).unwrap(), b"kept");
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error() {
        let error = write(Path::new("/"), b"bytes").unwrap_err();
        assert_eq!(error.to_string(), "/: the path does not end in a file name");
    }
}
