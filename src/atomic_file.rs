//! Files that readers (or a crash) must only ever see whole: the old content or the new; and
//! the lock beside a file that one process at a time may use.
//!
//! The temp file has a name of its own per process and write, created exclusively, so two
//! writers never share one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` (an error names the file): temp file beside it (with permissions `mode`), fsync, rename over
/// `path`, fsync the directory.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a file path", path.display()),
        )
    })?;
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(&tmp)
        .map_err(|e| std::io::Error::new(e.kind(), format!("creating {}: {e}", tmp.display())))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(std::io::Error::new(
            e.kind(),
            format!("writing {}: {e}", path.display()),
        ));
    }
    // The rename itself is durable only once the directory is.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// An exclusive lock on `<path>.lock` (the file created if missing; its folder must exist).
#[derive(Debug)]
pub enum Lock {
    /// Held as long as this file stays open.
    Held(fs::File),
    /// Another process holds it.
    Busy(PathBuf),
}

/// Takes the advisory lock beside `path`, `<path>.lock`, without waiting: one process at a time
/// uses a state file or a card, instead of both writing it.
pub fn lock_beside(path: &Path) -> std::io::Result<Lock> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("opening {}: {e}", lock_path.display()))
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Lock::Held(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(Lock::Busy(lock_path)),
        Err(fs::TryLockError::Error(e)) => Err(std::io::Error::new(
            e.kind(),
            format!("locking {}: {e}", lock_path.display()),
        )),
    }
}
