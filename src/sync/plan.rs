//! The sync plan: a pure comparison of the source and a delivery's staged folder.
//!
//! The folder is named after the delivery's content (`deliveries`), and every copy into it
//! was verified against the listed ETag, so a file staged there is a copy of the source
//! file of that key, size and ETag: it counts as unchanged when it is there with that size,
//! and anything else is copied. Staged files the source does not have are deleted (a file
//! put there behind curflow's back would be counted twice by the warehouse).

use std::collections::{HashMap, HashSet};

use crate::storage::ObjectInfo;

/// What a sync of one payer-period has to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Plan {
    /// Source files to copy (keys relative to the period folder).
    pub copies: Vec<ObjectInfo>,
    /// Staged files to delete after the copies are verified.
    pub deletes: Vec<String>,
    /// Source files already staged and verified.
    pub unchanged: usize,
    /// Their total size in bytes.
    pub unchanged_bytes: u64,
}

impl Plan {
    /// True when the staged period already mirrors the source.
    pub(super) fn is_empty(&self) -> bool {
        self.copies.is_empty() && self.deletes.is_empty()
    }

    /// Total bytes to copy.
    pub(super) fn copy_bytes(&self) -> u64 {
        self.copies.iter().map(|o| o.size).sum()
    }
}

/// Compares a source period with the staged folder of its delivery. `source` and `staged`
/// are keyed relative to their folders.
pub(super) fn plan(source: &[ObjectInfo], staged: &[ObjectInfo]) -> Plan {
    // Keyed look-ups: a period can hold tens of thousands of files.
    let staged_sizes: HashMap<&str, u64> =
        staged.iter().map(|s| (s.key.as_str(), s.size)).collect();
    let staged_size = |key: &str| staged_sizes.get(key).copied();
    let mut out = Plan::default();
    for file in source {
        if staged_size(&file.key) == Some(file.size) {
            out.unchanged += 1;
            out.unchanged_bytes += file.size;
        } else {
            out.copies.push(file.clone());
        }
    }
    let source_keys: HashSet<&str> = source.iter().map(|f| f.key.as_str()).collect();
    out.deletes = staged
        .iter()
        .filter(|s| !source_keys.contains(s.key.as_str()))
        .map(|s| s.key.clone())
        .collect();
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A listed object of `key`, `size` bytes and ETag `e_tag`.
    pub(in crate::sync) fn obj(key: &str, size: u64, e_tag: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size,
            e_tag: Some(e_tag.into()),
            last_modified: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn first_sync_copies_everything() {
        let src = [obj("a.parquet", 10, "e1"), obj("b.parquet", 20, "e2")];
        let p = plan(&src, &[]);
        assert_eq!(p.copies.len(), 2);
        assert_eq!(p.copy_bytes(), 30);
        assert!(p.deletes.is_empty());
    }

    #[test]
    fn a_staged_file_counts_when_it_is_there_whole() {
        let src = [obj("a.parquet", 10, "e1"), obj("b.parquet", 10, "e2")];
        // A cut-off copy staged `a` only; the local store's tags are not the source's.
        let staged = [obj("a.parquet", 10, "local-tag")];
        let p = plan(&src, &staged);
        assert_eq!((p.copies.len(), p.unchanged, p.unchanged_bytes), (1, 1, 10));
        assert_eq!(p.copies[0].key, "b.parquet");
        // Lost or truncated behind curflow's back: copied again.
        assert_eq!(plan(&src[..1], &[obj("a.parquet", 3, "x")]).copies.len(), 1);
        assert!(plan(&src, &[staged[0].clone(), obj("b.parquet", 10, "y")]).is_empty());
    }

    #[test]
    fn a_file_the_source_does_not_have_is_deleted() {
        let src = [obj("a.parquet", 10, "e1")];
        let staged = [obj("a.parquet", 10, "e1"), obj("extra.parquet", 5, "e")];
        let p = plan(&src, &staged);
        assert!(p.copies.is_empty());
        assert_eq!(p.deletes, ["extra.parquet"]);
    }
}
