//! Source layouts: how a payer's export root is laid out, and what it holds for one billing
//! period as of its latest delivery.
//!
//! One module per layout — [`cur2`] (AWS Data Exports) and [`legacy`] (the legacy Cost and
//! Usage Report in Parquet) — behind one small interface: `recognises` tells whether an
//! export root's top-level folders are the layout's, and `discover` lists a period and
//! checks it against its manifest. The layouts share what this module holds: the
//! [`SourcePeriod`] they return, the manifest rules ([`against_manifest`]), which files are
//! data, and [`detect`], which picks a layout for `auto`. They never import each other.
//!
//! The manifest is the authority on which files form the current delivery: files it names
//! but the listing lacks mean a delivery is being written (the period is skipped this run,
//! the staged copy left as it was), and data files it does not name are not part of the
//! delivery. A layout also owns how its columns map onto CUR 2.0's
//! ([`Layout::tag_columns`]), so that every warehouse reads one shape.

mod cur2;
mod legacy;

use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::storage::{Location, ObjectInfo, StorageError};
use crate::task::BillingPeriod;

/// How a payer's export is laid out in its bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// AWS Data Exports (CUR 2.0): `data/BILLING_PERIOD=YYYY-MM/` and `metadata/…Manifest.json`.
    #[default]
    Cur2,
    /// Legacy Cost and Usage Report in Parquet: `<report>/year=YYYY/month=M/`,
    /// `YYYYMMDD-YYYYMMDD/<report>-Manifest.json` and `cost_and_usage_data_status/`.
    Legacy,
    /// Whichever of the two the export root holds, found by its top-level folders.
    Auto,
}

/// A staged column that holds one tag, and the tag's key in CUR 2.0's `resource_tags` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagColumn {
    /// The column's name, e.g. `resource_tags_user_app`.
    pub column: String,
    /// The map key its values go under, e.g. `user_app`.
    pub key: String,
}

impl Layout {
    /// The columns among `columns` (a staged table's column names) that a warehouse must
    /// gather into the `resource_tags` map before the analytics read the table: none for
    /// CUR 2.0, which has the map. `auto` applies the legacy rule, which leaves a table
    /// with a `resource_tags` column alone, so it is right for either layout.
    pub fn tag_columns(self, columns: &[String]) -> Vec<TagColumn> {
        match self {
            Layout::Cur2 => Vec::new(),
            Layout::Legacy | Layout::Auto => legacy::tag_columns(columns),
        }
    }

    /// Whether every data file of this layout holds `column` (a CUR 2.0 column name)
    /// whatever the payer's usage. CUR 2.0's schema is fixed: a payer without RIs still has
    /// the `reservation_*` columns, null. The legacy report writes a column only when some
    /// line of the period has it ([`legacy::always_has`]), so a file without one of those is
    /// a legitimate delivery. `auto` applies the legacy rule, the lenient one.
    pub fn always_has(self, column: &str) -> bool {
        match self {
            Layout::Cur2 => true,
            Layout::Legacy | Layout::Auto => legacy::always_has(column),
        }
    }
}

/// Discovery failed for a reason other than an incomplete delivery.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// Listing or reading the source failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The manifest exists but cannot be understood.
    #[error("manifest {url} is not a CUR manifest ({reason}); check the export's delivery")]
    Manifest {
        /// The manifest's URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The source root holds no export in any layout: nothing is under it, or nothing that
    /// is a CUR export. Not "no data yet for this month", which a root with other months
    /// says; this is a configuration to fix.
    #[error(
        "no CUR export at {url}: nothing under it is a CUR 2.0 (data/, metadata/) or legacy report (manifest or status folders) export; check the payer's source for a typo, its layout, and that curflow may list it (s3:ListBucket)"
    )]
    NoExport {
        /// The export root.
        url: String,
    },
    /// A legacy report's status file cannot be read.
    #[error("status file {url} cannot be read ({reason}); check the report's delivery")]
    Status {
        /// The status file's URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Whether a period's source can be staged now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DeliveryState {
    /// The delivery is complete: stage `files`.
    Ready,
    /// The manifest names no data files: AWS delivered the period empty (as it does for a
    /// new payer's first months). A delivery like any other, of nothing: staging mirrors it
    /// and the final tables hold nothing for the period.
    Empty,
    /// The source has no data for this period, and no manifest: nothing delivered yet.
    NoData,
    /// The manifest names files that are not there (yet): skip this run.
    Incomplete {
        /// Files named by the manifest but missing from the listing.
        missing: Vec<String>,
    },
    /// Files the manifest names were written after it: AWS is rewriting the delivery in
    /// place (same file names). Skip this run.
    Rewriting {
        /// The named files newer than the manifest.
        newer: Vec<String>,
        /// The manifest's URL.
        manifest: String,
    },
    /// The legacy report's status says AWS is rewriting it: skip this run.
    Updating {
        /// URL of the status folder.
        status: String,
    },
}

impl DeliveryState {
    /// Whether AWS is writing a delivery of the period right now (files missing, files
    /// newer than the manifest, a legacy report UPDATING): the next run may stage it.
    pub(super) fn in_progress(&self) -> bool {
        matches!(
            self,
            DeliveryState::Incomplete { .. }
                | DeliveryState::Rewriting { .. }
                | DeliveryState::Updating { .. }
        )
    }
}

/// A source period as discovered.
#[derive(Debug, Clone)]
pub(super) struct SourcePeriod {
    /// The billing period of the source folder.
    pub(super) period: BillingPeriod,
    /// The layout the period was found in (never `Auto`).
    pub(super) layout: Layout,
    /// The period folder, relative to the export root.
    pub(super) folder: String,
    /// The data files of the current delivery, keyed relative to `folder`.
    pub(super) files: Vec<ObjectInfo>,
    /// The delivery's id (the manifest's id for it), when there is a manifest.
    pub(super) delivery: Option<String>,
    /// What tells, without listing the data, whether the delivery changed; `None`
    /// without a manifest.
    pub(super) stamp: Option<Stamp>,
    /// Whether it can be staged.
    pub(super) state: DeliveryState,
}

/// What says whether a period's delivery changed without listing its data: the key and
/// ETag of its manifest (and, for a legacy report, of its status files). AWS writes the
/// manifest last, and anew with every delivery: while the stamp is the one recorded when
/// the period was staged, so is the delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Stamp(Vec<(String, Option<String>)>);

impl Stamp {
    /// The stamp of a manifest object.
    fn of(manifest: &ObjectInfo) -> Self {
        Self(vec![(manifest.key.clone(), manifest.e_tag.clone())])
    }

    /// This stamp, and `others` that must not change either.
    fn with(mut self, others: &[ObjectInfo]) -> Self {
        self.0
            .extend(others.iter().map(|o| (o.key.clone(), o.e_tag.clone())));
        self
    }
}

/// A period's stamp as the export holds it now, in `layout` (never `Auto`: the one the
/// period was staged from), in one listing (CUR 2.0) or two (legacy); `None` when it has
/// no manifest.
pub(super) async fn current_stamp(
    export: &Location,
    layout: Layout,
    period: BillingPeriod,
) -> Result<Option<Stamp>, DiscoverError> {
    match layout {
        Layout::Legacy => legacy::stamp(export, period).await,
        Layout::Cur2 | Layout::Auto => cur2::stamp(export, period).await,
    }
}

/// Lists one billing period of a payer's export in `layout` (`auto`: the one [`detect`]
/// finds) and checks it against its manifest.
pub(super) async fn discover(
    export: &Location,
    layout: Layout,
    period: BillingPeriod,
) -> Result<SourcePeriod, DiscoverError> {
    // The root's top-level folders, listed once: `auto` needs them to pick the layout, and
    // a period without data to tell a month not delivered yet from a root with no export.
    let mut top_level = None;
    let resolved = match layout {
        Layout::Auto => detect(top_level.insert(export.folders("").await?)),
        chosen => chosen,
    };
    let found = match resolved {
        Layout::Legacy => legacy::discover(export, period).await?,
        Layout::Cur2 | Layout::Auto => cur2::discover(export, period).await?,
    };
    // No data for the period: a month not delivered yet in a root that holds an export,
    // or a root that holds none (a mistyped source), which must not read as "no data" on
    // every scheduled run.
    if found.state == DeliveryState::NoData {
        let top_level = match top_level {
            Some(folders) => folders,
            None => export.folders("").await?,
        };
        if !holds_an_export(&top_level) {
            return Err(DiscoverError::NoExport {
                url: export.url().to_string(),
            });
        }
    }
    Ok(found)
}

/// Whether an export root's top-level folders are those of an export in some layout.
fn holds_an_export(top_level_folders: &[String]) -> bool {
    cur2::recognises(top_level_folders)
        || legacy::recognises(top_level_folders)
        || top_level_folders.iter().any(|f| f == "data")
}

/// The layout an export root holds, from its top-level folders: legacy when only the
/// legacy layout recognises them, else CUR 2.0. A root with neither (nothing delivered
/// yet, or no export at all) is read as CUR 2.0, whose discovery then says which.
fn detect(top_level_folders: &[String]) -> Layout {
    if legacy::recognises(top_level_folders) && !cur2::recognises(top_level_folders) {
        Layout::Legacy
    } else {
        Layout::Cur2
    }
}

/// Only Parquet data files are staged; Athena/Redshift helpers, CSV metadata and AWS's
/// `aws-programmatic-access-test-object` are not.
fn is_data_file(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with(".parquet")
}

/// A period's data files as listed, before its manifest is consulted.
struct Listing {
    period: BillingPeriod,
    layout: Layout,
    /// The period folder, relative to the export root: `<parent>/<partition>`.
    folder: String,
    /// The part of the folder that the manifest's file names contain too.
    partition: String,
    /// The data files below `folder`, keyed relative to it.
    files: Vec<ObjectInfo>,
}

impl Listing {
    /// Lists the data files of `period` under `<parent>/<partition>` of the export.
    async fn read(
        export: &Location,
        period: BillingPeriod,
        layout: Layout,
        parent: &str,
        partition: String,
    ) -> Result<Self, DiscoverError> {
        let folder = format!("{parent}/{partition}");
        let below = format!("{folder}/");
        let files = export
            .list(&folder)
            .await?
            .into_iter()
            .filter(|o| is_data_file(&o.key))
            .filter_map(|o| {
                // Keys relative to the folder; a listing never holds others, and one that
                // did is left out rather than cut at the wrong byte.
                let key = o.key.strip_prefix(&below)?.to_owned();
                Some(ObjectInfo { key, ..o })
            })
            .collect();
        Ok(Self {
            period,
            layout,
            folder,
            partition,
            files,
        })
    }

    /// The source period: the delivery `manifest` names ([`against_manifest`]), or —
    /// without a manifest, said in a warning — every data file listed.
    fn against(
        self,
        export: &Location,
        manifest: Option<Named>,
    ) -> Result<SourcePeriod, DiscoverError> {
        let (files, delivery, stamp, state) = match manifest {
            Some(named) => {
                let delivery = named.delivery.clone();
                let stamp = Stamp::of(&named.manifest.object);
                let (files, state) = against_manifest(self.files, named, &self.partition)?;
                (files, delivery, Some(stamp), state)
            }
            None if self.files.is_empty() => (self.files, None, None, DeliveryState::NoData),
            None => {
                tracing::warn!(source = %export.url(), period = %self.period, "no manifest: staging every data file in the period folder");
                (self.files, None, None, DeliveryState::Ready)
            }
        };
        Ok(SourcePeriod {
            period: self.period,
            layout: self.layout,
            folder: self.folder,
            files,
            delivery,
            stamp,
            state,
        })
    }
}

/// A period's manifest object: where it is, and the object as listed.
struct ManifestFile {
    /// Its URL.
    url: String,
    /// The object (its key relative to the export root, ETag, LastModified).
    object: ObjectInfo,
}

/// What a period's manifest says, whatever the layout.
struct Named {
    /// The manifest object.
    manifest: ManifestFile,
    /// The data files of the delivery, as URLs or object keys.
    files: Vec<String>,
    /// The delivery's id.
    delivery: Option<String>,
}

/// The latest manifest object in `folder`: the greatest key `is_manifest` accepts.
async fn latest_manifest(
    export: &Location,
    folder: &str,
    is_manifest: fn(&str) -> bool,
) -> Result<Option<ObjectInfo>, DiscoverError> {
    Ok(export
        .list(folder)
        .await?
        .into_iter()
        .filter(|o| is_manifest(&o.key))
        .max_by(|a, b| a.key.cmp(&b.key)))
}

/// The latest manifest in `folder` ([`latest_manifest`]) and the object it was read from,
/// if the export has one there.
async fn read_manifest<M: DeserializeOwned>(
    export: &Location,
    folder: &str,
    is_manifest: fn(&str) -> bool,
) -> Result<Option<(ManifestFile, M)>, DiscoverError> {
    let Some(found) = latest_manifest(export, folder, is_manifest).await? else {
        return Ok(None);
    };
    let url = export.url().join(&found.key).to_string();
    let bytes = export.read(&found.key).await?.unwrap_or_default();
    let manifest = serde_json::from_slice(&bytes).map_err(|e| DiscoverError::Manifest {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    let file = ManifestFile { url, object: found };
    Ok(Some((file, manifest)))
}

/// Checks a period's listing (keys relative to its folder) against the data files its
/// manifest names (URLs or object keys with `partition/` in them): the delivery is the
/// named files; any named file not listed means it is still being written, and a manifest
/// that names none is an empty delivery. AWS writes the manifest last, so a named file
/// written after it is AWS rewriting the delivery in place (an export that overwrites,
/// keeping its file names): not staged until the rewrite's own manifest comes.
fn against_manifest(
    listed: Vec<ObjectInfo>,
    named: Named,
    partition: &str,
) -> Result<(Vec<ObjectInfo>, DeliveryState), DiscoverError> {
    let marker = format!("{partition}/");
    let mut relative = Vec::with_capacity(named.files.len());
    for data_file in &named.files {
        let Some((_, rel)) = data_file.split_once(&marker) else {
            return Err(DiscoverError::Manifest {
                url: named.manifest.url,
                reason: format!("data file {data_file} is not under {partition}"),
            });
        };
        relative.push(rel.to_owned());
    }
    // Set look-ups: a delivery can name tens of thousands of files.
    let listed_keys: HashSet<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    let missing: Vec<String> = relative
        .iter()
        .filter(|n| !listed_keys.contains(n.as_str()))
        .cloned()
        .collect();
    let relative: HashSet<String> = relative.into_iter().collect();
    let files: Vec<ObjectInfo> = listed
        .into_iter()
        .filter(|o| relative.contains(&o.key))
        .collect();
    let newer: Vec<String> = files
        .iter()
        .filter(|o| o.last_modified > named.manifest.object.last_modified)
        .map(|o| o.key.clone())
        .collect();
    let state = if !missing.is_empty() {
        DeliveryState::Incomplete { missing }
    } else if !newer.is_empty() {
        DeliveryState::Rewriting {
            newer,
            manifest: named.manifest.url,
        }
    } else if files.is_empty() {
        DeliveryState::Empty
    } else {
        DeliveryState::Ready
    };
    Ok((files, state))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::storage::StoreUrl;

    /// An export root in a temporary folder holding `files` (`PAR1` each) and, when given,
    /// the CUR 2.0 manifest of July 2025.
    pub(in crate::sync) async fn export_with(
        files: &[&str],
        manifest: Option<&str>,
    ) -> (tempfile::TempDir, Location) {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(&StoreUrl::parse(dir.path().to_str().unwrap()).unwrap()).unwrap();
        for f in files {
            loc.write(f, b"PAR1".to_vec()).await.unwrap();
        }
        if let Some(m) = manifest {
            loc.write(
                "metadata/BILLING_PERIOD=2025-07/cur2-Manifest.json",
                m.as_bytes().to_vec(),
            )
            .await
            .unwrap();
        }
        (dir, loc)
    }

    fn period() -> BillingPeriod {
        BillingPeriod::new(2025, 7).unwrap()
    }

    #[tokio::test]
    async fn manifest_decides_the_delivery() {
        let (_d, loc) = export_with(
            &[
                "data/BILLING_PERIOD=2025-07/cur2-002-00001.snappy.parquet",
                "data/BILLING_PERIOD=2025-07/cur2-001-00001.snappy.parquet",
                "data/BILLING_PERIOD=2025-07/aws-programmatic-access-test-object",
                "data/BILLING_PERIOD=2025-06/cur2-001-00001.snappy.parquet",
            ],
            Some(r#"{"executionId":"x2","dataFiles":["s3://b/p/cur2/data/BILLING_PERIOD=2025-07/cur2-002-00001.snappy.parquet"]}"#),
        )
        .await;
        let got = discover(&loc, Layout::Cur2, period()).await.unwrap();
        assert_eq!(got.state, DeliveryState::Ready);
        assert_eq!(got.delivery.as_deref(), Some("x2"));
        let keys: Vec<&str> = got.files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["cur2-002-00001.snappy.parquet"]);
    }

    #[tokio::test]
    async fn a_named_file_newer_than_the_manifest_means_a_rewrite_in_progress() {
        const FILE: &str = "data/BILLING_PERIOD=2025-07/cur2-00001.snappy.parquet";
        const MANIFEST: &str =
            r#"{"dataFiles":["s3://b/data/BILLING_PERIOD=2025-07/cur2-00001.snappy.parquet"]}"#;
        let (_d, loc) = export_with(&[FILE], Some(MANIFEST)).await;
        assert_eq!(
            discover(&loc, Layout::Cur2, period()).await.unwrap().state,
            DeliveryState::Ready
        );
        loc.write(FILE, b"PAR1 rewritten".to_vec()).await.unwrap();
        let got = discover(&loc, Layout::Cur2, period()).await.unwrap();
        assert!(
            matches!(&got.state, DeliveryState::Rewriting { newer, .. } if newer == &["cur2-00001.snappy.parquet"]),
            "{:?}",
            got.state
        );
        loc.write(
            "metadata/BILLING_PERIOD=2025-07/cur2-Manifest.json",
            MANIFEST.as_bytes().to_vec(),
        )
        .await
        .unwrap();
        assert_eq!(
            discover(&loc, Layout::Cur2, period()).await.unwrap().state,
            DeliveryState::Ready
        );
    }

    #[tokio::test]
    async fn missing_files_mean_a_delivery_in_progress() {
        let (_d, loc) = export_with(
            &["data/BILLING_PERIOD=2025-07/a.parquet"],
            Some(r#"{"dataFiles":["s3://b/data/BILLING_PERIOD=2025-07/a.parquet","s3://b/data/BILLING_PERIOD=2025-07/b.parquet"]}"#),
        )
        .await;
        let got = discover(&loc, Layout::Cur2, period()).await.unwrap();
        assert_eq!(
            got.state,
            DeliveryState::Incomplete {
                missing: vec!["b.parquet".into()]
            }
        );
    }

    #[tokio::test]
    async fn a_manifest_naming_no_file_is_an_empty_delivery() {
        // Stale files of an earlier delivery are not part of it.
        let (_d, loc) = export_with(
            &["data/BILLING_PERIOD=2025-07/cur2-001-00001.snappy.parquet"],
            Some(r#"{"executionId":"x3","dataFiles":[]}"#),
        )
        .await;
        let got = discover(&loc, Layout::Cur2, period()).await.unwrap();
        assert_eq!(got.state, DeliveryState::Empty);
        assert_eq!(got.delivery.as_deref(), Some("x3"));
        assert!(got.files.is_empty());
    }

    #[test]
    fn cur2_always_has_a_column_and_legacy_only_its_line_items_and_bill() {
        for column in ["line_item_unblended_cost", "bill_payer_account_id"] {
            assert!(Layout::Cur2.always_has(column));
            assert!(Layout::Legacy.always_has(column));
            assert!(Layout::Auto.always_has(column));
        }
        for column in [
            "reservation_reservation_a_r_n",
            "savings_plan_used_commitment",
            "product_region_code",
            "resource_tags",
        ] {
            assert!(Layout::Cur2.always_has(column));
            assert!(!Layout::Legacy.always_has(column));
            assert!(!Layout::Auto.always_has(column));
        }
    }

    #[tokio::test]
    async fn auto_tells_the_layouts_apart() {
        let (_d, loc) = export_with(
            &["data/BILLING_PERIOD=2025-07/a.parquet"],
            Some(r#"{"dataFiles":["s3://b/data/BILLING_PERIOD=2025-07/a.parquet"]}"#),
        )
        .await;
        assert_eq!(detect(&loc.folders("").await.unwrap()), Layout::Cur2);
        let got = discover(&loc, Layout::Auto, period()).await.unwrap();
        assert_eq!(got.folder, "data/BILLING_PERIOD=2025-07");
        assert_eq!(got.layout, Layout::Cur2);
        let (_d, loc) = export_with(
            &[
                "legacy/year=2025/month=7/legacy-00001.snappy.parquet",
                "20250701-20250801/legacy-Manifest.json",
            ],
            None,
        )
        .await;
        assert_eq!(detect(&loc.folders("").await.unwrap()), Layout::Legacy);
        let (_d, loc) = export_with(&[], None).await;
        assert_eq!(detect(&loc.folders("").await.unwrap()), Layout::Cur2);
        assert!(matches!(
            discover(&loc, Layout::Auto, period()).await,
            Err(DiscoverError::NoExport { .. })
        ));
    }

    #[tokio::test]
    async fn empty_period_and_broken_manifest() {
        // A month not delivered yet, in a root that holds other months: no data, no error.
        let (_d, loc) = export_with(&["data/BILLING_PERIOD=2025-06/a.parquet"], None).await;
        assert_eq!(
            discover(&loc, Layout::Cur2, period()).await.unwrap().state,
            DeliveryState::NoData
        );
        // A root with no export at all (a mistyped source): an error naming it.
        let (_d, loc) = export_with(&["elsewhere/notes.txt"], None).await;
        let err = discover(&loc, Layout::Cur2, period()).await.unwrap_err();
        assert!(
            matches!(&err, DiscoverError::NoExport { url } if url.starts_with("file://")),
            "{err}"
        );
        assert!(err.to_string().contains("typo"), "{err}");
        let (_d, loc) = export_with(&["data/BILLING_PERIOD=2025-07/a.parquet"], Some("{")).await;
        let err = discover(&loc, Layout::Cur2, period())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cur2-Manifest.json"), "{err}");
    }

    #[test]
    fn layouts_are_read_from_settings_as_lowercase_names() {
        #[derive(Deserialize)]
        struct Entry {
            #[serde(default)]
            layout: Layout,
        }
        let layout = |text: &str| toml::from_str::<Entry>(text).map(|e| e.layout);
        assert_eq!(layout("layout = \"cur2\"").unwrap(), Layout::Cur2);
        assert_eq!(layout("layout = \"legacy\"").unwrap(), Layout::Legacy);
        assert_eq!(layout("layout = \"auto\"").unwrap(), Layout::Auto);
        assert_eq!(layout("").unwrap(), Layout::Cur2);
        assert!(layout("layout = \"Legacy\"").is_err());
    }

    #[test]
    fn only_legacy_tag_columns_without_a_map_become_the_map() {
        let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let legacy = names(&[
            "line_item_usage_account_id",
            "resource_tags_user_app",
            "resource_tags_aws_created_by",
            "resource_tags_user_team",
        ]);
        let expected = vec![
            TagColumn {
                column: "resource_tags_user_app".into(),
                key: "user_app".into(),
            },
            TagColumn {
                column: "resource_tags_user_team".into(),
                key: "user_team".into(),
            },
        ];
        assert_eq!(Layout::Legacy.tag_columns(&legacy), expected);
        assert_eq!(Layout::Auto.tag_columns(&legacy), expected);
        assert!(Layout::Cur2.tag_columns(&legacy).is_empty());
        let mut with_map = legacy.clone();
        with_map.push("resource_tags".into());
        assert!(Layout::Legacy.tag_columns(&with_map).is_empty());
        assert!(Layout::Auto.tag_columns(&with_map).is_empty());
        let untagged = names(&["line_item_usage_account_id", "resource_tags"]);
        assert!(Layout::Legacy.tag_columns(&untagged).is_empty());
        assert!(Layout::Legacy.tag_columns(&[]).is_empty());
    }
}
