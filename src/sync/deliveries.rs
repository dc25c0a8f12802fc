//! A payer-period's staged deliveries: each in a folder of its own, named after its content.
//!
//! Copying a new delivery into the folder readers read would show them files of two
//! deliveries until the copies and deletions finish, and for good after a kill in between.
//! So each delivery is staged in `delivery-<digest>/` inside the payer-period folder, and
//! the ledger's `folder` names the one complete delivery: rewriting the ledger (one PUT)
//! is what switches readers from one delivery to the next. The digest covers every file's
//! key, size and ETag, so the same delivery always lands in the same folder (a copy that
//! was cut off resumes there) and any change at the source lands in a new one. Whatever
//! else the payer-period folder holds — deliveries the ledger named before, a folder a
//! killed run left, files staged directly in the payer-period folder by earlier versions —
//! is superseded: it stays for `keep_superseded` after a run first finds it so, for readers
//! that resolved the folder before the switch, and then a run deletes it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::storage::ObjectInfo;

/// The folder a delivery of `files` (keyed relative to the source's period folder) is
/// staged in: `delivery-` and the first 16 hex digits of a SHA-256 over each file's key,
/// size and ETag, in key order.
pub(super) fn folder_name(files: &[ObjectInfo]) -> String {
    let mut sorted: Vec<&ObjectInfo> = files.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    // Length-prefixed fields: no key, however odd, can make two listings hash alike.
    let mut field = |bytes: &[u8]| {
        hash.update(&(bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    for file in sorted {
        field(file.key.as_bytes());
        field(&file.size.to_le_bytes());
        field(file.e_tag.as_deref().unwrap_or_default().as_bytes());
    }
    let digest = hash.finish();
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("delivery-{hex}")
}

/// A listing of a payer-period folder, split into the current delivery and the rest.
#[derive(Debug, Default)]
pub(super) struct PeriodListing {
    /// The current delivery's staged files, keyed relative to its folder.
    pub current: Vec<ObjectInfo>,
    /// Everything else, by the first segment of its key (a delivery folder, or a file of
    /// the flat layout), each with its keys relative to the payer-period folder.
    pub others: BTreeMap<String, Vec<String>>,
}

impl PeriodListing {
    /// Splits `listing` (keyed relative to the payer-period folder) around `current`, the
    /// current delivery's folder name.
    pub(super) fn split(listing: Vec<ObjectInfo>, current: &str) -> Self {
        let mut out = Self::default();
        for mut object in listing {
            match object.key.split_once('/') {
                Some((first, rest)) if first == current => {
                    object.key = rest.to_owned();
                    out.current.push(object);
                }
                split => {
                    let first = split.map_or(object.key.as_str(), |(first, _)| first);
                    out.others
                        .entry(first.to_owned())
                        .or_default()
                        .push(object.key.clone());
                }
            }
        }
        out
    }

    /// The files of the superseded entries `names`, keyed relative to the payer-period
    /// folder.
    pub(super) fn files_of(&self, names: &[String]) -> Vec<String> {
        names
            .iter()
            .flat_map(|name| self.others[name].iter().cloned())
            .collect()
    }

    /// When each superseded entry of the payer-period folder was first found superseded:
    /// as `recorded` says (a previous ledger's), or `now` for one no ledger recorded yet.
    /// Entries that are gone are dropped.
    pub(super) fn superseded(
        &self,
        recorded: &BTreeMap<String, DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> BTreeMap<String, DateTime<Utc>> {
        self.others
            .keys()
            .map(|name| (name.clone(), recorded.get(name).copied().unwrap_or(now)))
            .collect()
    }
}

/// The superseded entries that have been kept `keep` by `now`, and may go.
pub(super) fn due(
    superseded: &BTreeMap<String, DateTime<Utc>>,
    keep: Duration,
    now: DateTime<Utc>,
) -> Vec<String> {
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    superseded
        .iter()
        .filter(|(_, since)| since.checked_add_signed(keep).is_some_and(|t| t <= now))
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::tests::obj;

    #[test]
    fn the_folder_follows_the_content_not_the_order() {
        let a = [obj("a.parquet", 1, "e1"), obj("b.parquet", 2, "e2")];
        let reversed = [a[1].clone(), a[0].clone()];
        assert_eq!(folder_name(&a), folder_name(&reversed));
        assert!(folder_name(&a).starts_with("delivery-"));
        assert_eq!(folder_name(&a).len(), "delivery-".len() + 16);
        for changed in [
            [obj("a.parquet", 1, "e9"), a[1].clone()],
            [obj("a.parquet", 3, "e1"), a[1].clone()],
            [obj("c.parquet", 1, "e1"), a[1].clone()],
        ] {
            assert_ne!(folder_name(&a), folder_name(&changed));
        }
        // Field boundaries count: "ab" + "c" is not "a" + "bc".
        assert_ne!(
            folder_name(&[obj("ab", 1, "c")]),
            folder_name(&[obj("a", 1, "bc")])
        );
        assert_ne!(folder_name(&[]), folder_name(&a));
    }

    #[test]
    fn a_listing_splits_around_the_current_delivery() {
        let listing = vec![
            obj("delivery-1/x/a.parquet", 1, "e"),
            obj("delivery-1/b.parquet", 1, "e"),
            obj("delivery-2/a.parquet", 1, "e"),
            obj("flat.parquet", 1, "e"),
        ];
        let split = PeriodListing::split(listing, "delivery-1");
        let current: Vec<&str> = split.current.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(current, ["x/a.parquet", "b.parquet"]);
        assert_eq!(
            split.others,
            BTreeMap::from([
                ("delivery-2".into(), vec!["delivery-2/a.parquet".into()]),
                ("flat.parquet".into(), vec!["flat.parquet".into()]),
            ])
        );
    }

    #[test]
    fn superseded_entries_keep_the_time_first_seen_and_go_when_due() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let hour = Duration::from_secs(3600);
        let split = PeriodListing::split(
            vec![obj("delivery-2/a", 1, "e"), obj("delivery-3/a", 1, "e")],
            "delivery-1",
        );
        let recorded = BTreeMap::from([("delivery-2".into(), t0), ("delivery-gone".into(), t0)]);
        let now = t0 + chrono::Duration::minutes(90);
        let superseded = split.superseded(&recorded, now);
        assert_eq!(
            superseded,
            BTreeMap::from([("delivery-2".into(), t0), ("delivery-3".into(), now)])
        );
        assert_eq!(due(&superseded, hour, now), ["delivery-2"]);
        assert_eq!(due(&superseded, Duration::ZERO, now).len(), 2);
        assert!(due(&superseded, Duration::MAX, now).is_empty());
    }
}
