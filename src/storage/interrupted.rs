//! What an interrupted write leaves on local disk. object_store writes a local file to
//! `<name>#<n>` beside its target and renames it once complete, and its listings never show
//! such a file; so a file a killed copy left would stay in the staged folder for good,
//! unseen by the plan that keeps the folder an exact mirror. An object store leaves nothing
//! (an unfinished upload is no object).

use std::path::Path;

/// Whether `name` is object_store's name for a file being written: `<name>#<digits>`.
fn is_partial_write(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(target, n)| {
        !target.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Deletes every partial write below the folder `root` (recursively), and returns how many;
/// a folder that does not exist holds none.
pub(super) fn remove_partial_writes(root: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            removed += remove_partial_writes(&path)?;
        } else if entry.file_name().to_str().is_some_and(is_partial_write) {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_partial_writes_are_removed() {
        assert!(is_partial_write("cur2-001-00001.snappy.parquet#1"));
        assert!(is_partial_write("a.parquet#42"));
        assert!(!is_partial_write("a.parquet"));
        assert!(!is_partial_write("a#b.parquet"));
        assert!(!is_partial_write("#1"));
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for name in ["a.parquet", "a.parquet#1"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::write(sub.join("b.parquet#7"), b"x").unwrap();
        assert_eq!(remove_partial_writes(dir.path()).unwrap(), 2);
        assert!(dir.path().join("a.parquet").exists());
        assert!(!dir.path().join("a.parquet#1").exists() && !sub.join("b.parquet#7").exists());
        assert_eq!(
            remove_partial_writes(&dir.path().join("missing")).unwrap(),
            0
        );
    }
}
