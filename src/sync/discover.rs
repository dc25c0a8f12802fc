//! Discovery: what a payer's source holds for one billing period, as of its latest delivery.
//!
//! CUR 2.0 (Data Exports) writes the data files under `data/BILLING_PERIOD=YYYY-MM/` and
//! then the manifest under `metadata/BILLING_PERIOD=YYYY-MM/`. The manifest is the
//! authority on which files form the current delivery: files it names but the listing
//! lacks mean a delivery is being written (the period is skipped this run, the staged copy
//! left as it was), and data files it does not name are not part of the delivery. The
//! legacy CUR layout follows the same rules with its own folders and status file (see
//! [`super::legacy`]); `auto` tells the two apart by the export root's top-level folders.

use std::collections::HashSet;

use serde::Deserialize;

use super::legacy::{self, discover_legacy};
use crate::payers::Layout;
use crate::storage::{Location, ObjectInfo, StorageError};
use crate::task::BillingPeriod;

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
pub enum DeliveryState {
    /// The delivery is complete: stage `files`.
    Ready,
    /// The source has no data for this period.
    NoData,
    /// The manifest names files that are not there (yet): skip this run.
    Incomplete {
        /// Files named by the manifest but missing from the listing.
        missing: Vec<String>,
    },
    /// The legacy report's status says AWS is rewriting it: skip this run.
    Updating {
        /// URL of the status folder.
        status: String,
    },
}

/// A source period as discovered.
#[derive(Debug, Clone)]
pub struct SourcePeriod {
    /// The billing period of the source folder.
    pub period: BillingPeriod,
    /// The period folder, relative to the export root.
    pub folder: String,
    /// The data files of the current delivery, keyed relative to `folder`.
    pub files: Vec<ObjectInfo>,
    /// The delivery's id (the manifest's `executionId`), when there is a manifest.
    pub delivery: Option<String>,
    /// Whether it can be staged.
    pub state: DeliveryState,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    data_files: Vec<String>,
    #[serde(default)]
    execution_id: Option<String>,
}

/// Only Parquet data files are staged; Athena/Redshift helpers, CSV metadata and AWS's
/// `aws-programmatic-access-test-object` are not.
pub(super) fn is_data_file(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with(".parquet")
}

/// The data files below `folder`, keyed relative to it.
pub(super) async fn data_files(
    export: &Location,
    folder: &str,
) -> Result<Vec<ObjectInfo>, DiscoverError> {
    Ok(export
        .list(folder)
        .await?
        .into_iter()
        .filter(|o| is_data_file(&o.key))
        .map(|o| ObjectInfo {
            key: o.key[folder.len() + 1..].to_owned(),
            ..o
        })
        .collect())
}

/// Lists one billing period of a payer's export and checks it against its manifest.
pub async fn discover(
    export: &Location,
    layout: Layout,
    period: BillingPeriod,
) -> Result<SourcePeriod, DiscoverError> {
    match layout {
        Layout::Cur2 => discover_cur2(export, period).await,
        Layout::Legacy => discover_legacy(export, period).await,
        Layout::Auto => match detect(export).await? {
            Layout::Legacy => discover_legacy(export, period).await,
            _ => discover_cur2(export, period).await,
        },
    }
}

/// The layout an export root holds, from its top-level folders: CUR 2.0 has `data/` and
/// `metadata/`; a legacy report has `cost_and_usage_data_status/` or `YYYYMMDD-YYYYMMDD/`
/// manifest folders. A root with neither (nothing delivered yet) is read as CUR 2.0,
/// which finds no data and says so.
pub async fn detect(export: &Location) -> Result<Layout, DiscoverError> {
    let folders = export.folders("").await?;
    let cur2 = folders.iter().any(|f| f == "metadata");
    let legacy = folders.iter().any(|f| legacy::is_legacy_folder(f));
    Ok(if legacy && !cur2 {
        Layout::Legacy
    } else {
        Layout::Cur2
    })
}

async fn discover_cur2(
    export: &Location,
    period: BillingPeriod,
) -> Result<SourcePeriod, DiscoverError> {
    let partition = format!("BILLING_PERIOD={period}");
    let folder = format!("data/{partition}");
    let listed = data_files(export, &folder).await?;
    let metadata = format!("metadata/{partition}");
    let manifest_key = export
        .list(&metadata)
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with("Manifest.json"))
        .max();
    let Some(manifest_key) = manifest_key else {
        let state = if listed.is_empty() {
            DeliveryState::NoData
        } else {
            tracing::warn!(source = %export.url(), %period, "no manifest: staging every data file in the period folder");
            DeliveryState::Ready
        };
        return Ok(SourcePeriod {
            period,
            folder,
            files: listed,
            delivery: None,
            state,
        });
    };
    let manifest_url = export.url().join(&manifest_key).to_string();
    let bytes = export.read(&manifest_key).await?.unwrap_or_default();
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| DiscoverError::Manifest {
            url: manifest_url.clone(),
            reason: e.to_string(),
        })?;
    let (files, state) = against_manifest(listed, &manifest.data_files, &partition, manifest_url)?;
    Ok(SourcePeriod {
        period,
        folder,
        files,
        delivery: manifest.execution_id,
        state,
    })
}

/// Checks a period's listing (keys relative to its folder) against the data files its
/// manifest names (URLs or object keys with `partition/` in them): the delivery is the
/// named files; any named file not listed means it is still being written.
pub(super) fn against_manifest(
    listed: Vec<ObjectInfo>,
    named: &[String],
    partition: &str,
    manifest_url: String,
) -> Result<(Vec<ObjectInfo>, DeliveryState), DiscoverError> {
    let marker = format!("{partition}/");
    let mut relative = Vec::with_capacity(named.len());
    for data_file in named {
        let Some((_, rel)) = data_file.split_once(&marker) else {
            return Err(DiscoverError::Manifest {
                url: manifest_url,
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
    let state = if !missing.is_empty() {
        DeliveryState::Incomplete { missing }
    } else if files.is_empty() {
        DeliveryState::NoData
    } else {
        DeliveryState::Ready
    };
    Ok((files, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StoreUrl;

    async fn export_with(files: &[&str], manifest: Option<&str>) -> (tempfile::TempDir, Location) {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::open(
            &StoreUrl::parse(dir.path().to_str().unwrap()).unwrap(),
            None,
        )
        .unwrap();
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
    async fn auto_tells_the_layouts_apart() {
        let (_d, loc) = export_with(
            &["data/BILLING_PERIOD=2025-07/a.parquet"],
            Some(r#"{"dataFiles":["s3://b/data/BILLING_PERIOD=2025-07/a.parquet"]}"#),
        )
        .await;
        assert_eq!(detect(&loc).await.unwrap(), Layout::Cur2);
        let got = discover(&loc, Layout::Auto, period()).await.unwrap();
        assert_eq!(got.folder, "data/BILLING_PERIOD=2025-07");
        let (_d, loc) = export_with(
            &[
                "legacy/year=2025/month=7/legacy-00001.snappy.parquet",
                "20250701-20250801/legacy-Manifest.json",
            ],
            None,
        )
        .await;
        assert_eq!(detect(&loc).await.unwrap(), Layout::Legacy);
        let (_d, loc) = export_with(&[], None).await;
        assert_eq!(detect(&loc).await.unwrap(), Layout::Cur2);
        assert_eq!(
            discover(&loc, Layout::Auto, period()).await.unwrap().state,
            DeliveryState::NoData
        );
    }

    #[tokio::test]
    async fn empty_period_and_broken_manifest() {
        let (_d, loc) = export_with(&[], None).await;
        assert_eq!(
            discover(&loc, Layout::Cur2, period()).await.unwrap().state,
            DeliveryState::NoData
        );
        let (_d, loc) = export_with(&["data/BILLING_PERIOD=2025-07/a.parquet"], Some("{")).await;
        let err = discover(&loc, Layout::Cur2, period())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cur2-Manifest.json"), "{err}");
    }
}
