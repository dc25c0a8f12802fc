//! Compare-and-swap on a local or mounted filesystem, which has no conditional replace.
//!
//! S3 checks `If-Match` itself; a filesystem cannot, so a conditional write there is a
//! read, a compare and a replace, made atomic by holding an exclusive OS lock (`flock`)
//! on a sidecar file, `<object>.lock`, for those three steps. Every conditional write of
//! the object takes the same lock, so no two interleave. The OS releases the lock when
//! the holder's file is closed, also when the process dies, so a crash never leaves it
//! held. The sidecar itself is never replaced: locking the object's own file would not
//! serialise writers, because each replace (a rename) gives the object a new inode.
//! NFSv4 (EFS) carries `flock` as a lock on the server, so runs on different hosts of one
//! mounted store exclude each other too.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a writer waits for another's compare-and-swap (which takes milliseconds).
const WAIT: Duration = Duration::from_secs(30);

/// Between two tries at the lock.
const POLL: Duration = Duration::from_millis(5);

/// An exclusive lock on an object's sidecar, held until dropped.
#[derive(Debug)]
pub(super) struct Held {
    _file: File,
}

/// Locks the sidecar of the file `object` (creating it, and its folder, when missing),
/// waiting up to [`WAIT`] for another holder.
pub(super) async fn lock(object: &Path) -> io::Result<Held> {
    let mut sidecar = object.as_os_str().to_owned();
    sidecar.push(".lock");
    if let Some(folder) = object.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&sidecar)?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Held { _file: file }),
            Err(TryLockError::WouldBlock) if started.elapsed() < WAIT => {
                tokio::time::sleep(POLL).await;
            }
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} stayed locked for {} s by another writer",
                        Path::new(&sidecar).display(),
                        WAIT.as_secs()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let object = dir.path().join("locks").join("payer-1");
        let first = lock(&object).await.unwrap();
        // A second open file description of the sidecar is refused while the first holds it.
        let other = File::options()
            .write(true)
            .open(dir.path().join("locks/payer-1.lock"))
            .unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        drop(first);
        assert!(other.try_lock().is_ok());
        drop(other);
        lock(&object).await.unwrap();
    }
}
