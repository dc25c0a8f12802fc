//! The sync plan: a pure comparison of the source, the staged copy and the ledger.
//!
//! A source file is unchanged only when the ledger recorded the same key, size and ETag
//! *and* the staged object is still there with that size; anything else is copied. Staged
//! files the source no longer has are deleted — a restatement renames every file, and a
//! stale file left behind would be counted twice by the warehouse.

use std::collections::{HashMap, HashSet};

use super::ledger::Ledger;
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

/// Compares a source period with its staged copy. `source` and `staged` are keyed relative
/// to their period folders.
pub(super) fn plan(source: &[ObjectInfo], staged: &[ObjectInfo], ledger: Option<&Ledger>) -> Plan {
    // Keyed look-ups: a period can hold tens of thousands of files.
    let staged_sizes: HashMap<&str, u64> =
        staged.iter().map(|s| (s.key.as_str(), s.size)).collect();
    let staged_size = |key: &str| staged_sizes.get(key).copied();
    let mut out = Plan::default();
    for file in source {
        let recorded = ledger.and_then(|l| l.files.get(&file.key));
        let verified = recorded.is_some_and(|r| r.size == file.size && r.e_tag == file.e_tag)
            && staged_size(&file.key) == Some(file.size);
        if verified {
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
mod tests {
    use super::*;
    use crate::sync::ledger::StagedFile;

    fn obj(key: &str, size: u64, e_tag: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size,
            e_tag: Some(e_tag.into()),
            last_modified: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn ledger(files: &[ObjectInfo]) -> Ledger {
        let mut l = Ledger::default();
        for f in files {
            l.files.insert(f.key.clone(), StagedFile::from(f));
        }
        l
    }

    #[test]
    fn first_sync_copies_everything() {
        let src = [obj("a.parquet", 10, "e1"), obj("b.parquet", 20, "e2")];
        let p = plan(&src, &[], None);
        assert_eq!(p.copies.len(), 2);
        assert_eq!(p.copy_bytes(), 30);
        assert!(p.deletes.is_empty());
    }

    #[test]
    fn unchanged_needs_ledger_and_staged_object() {
        let src = [obj("a.parquet", 10, "e1")];
        let staged = [obj("a.parquet", 10, "local-tag")];
        assert!(plan(&src, &staged, Some(&ledger(&src))).is_empty());
        // Same key rewritten at the source (multipart upload: same LastModified is irrelevant).
        let rewritten = [obj("a.parquet", 10, "e9")];
        assert_eq!(
            plan(&rewritten, &staged, Some(&ledger(&src))).copies.len(),
            1
        );
        // Staged object lost or truncated: copy again even though the ledger has it.
        assert_eq!(plan(&src, &[], Some(&ledger(&src))).copies.len(), 1);
        assert_eq!(
            plan(&src, &[obj("a.parquet", 3, "x")], Some(&ledger(&src)))
                .copies
                .len(),
            1
        );
    }

    #[test]
    fn restatement_replaces_every_file() {
        let old = [
            obj("cur-001-00001.parquet", 10, "e1"),
            obj("cur-001-00002.parquet", 10, "e2"),
        ];
        let new = [obj("cur-002-00001.parquet", 12, "e3")];
        let p = plan(&new, &old, Some(&ledger(&old)));
        assert_eq!(p.copies.len(), 1);
        assert_eq!(
            p.deletes,
            ["cur-001-00001.parquet", "cur-001-00002.parquet"]
        );
        assert_eq!(p.unchanged, 0);
    }
}
