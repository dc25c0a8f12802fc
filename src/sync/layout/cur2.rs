//! The CUR 2.0 layout (AWS Data Exports).
//!
//! AWS writes a period's data files under `data/BILLING_PERIOD=YYYY-MM/` and then the
//! manifest naming them under `metadata/BILLING_PERIOD=YYYY-MM/`; the manifest's
//! `executionId` identifies the delivery. Its tags are already the `resource_tags` map.

use serde::Deserialize;

use super::{
    DiscoverError, Layout, Listing, Named, SourcePeriod, Stamp, latest_manifest, read_manifest,
};
use crate::storage::Location;
use crate::task::BillingPeriod;

/// The parts of a CUR 2.0 manifest discovery needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    data_files: Vec<String>,
    #[serde(default)]
    execution_id: Option<String>,
}

/// True when an export root's top-level folders are CUR 2.0's: it has `metadata/`.
pub(super) fn recognises(top_level_folders: &[String]) -> bool {
    top_level_folders.iter().any(|f| f == "metadata")
}

/// The folder of a period's manifest.
fn metadata(period: BillingPeriod) -> String {
    format!("metadata/BILLING_PERIOD={period}")
}

/// Whether a key in the metadata folder is a manifest.
fn is_manifest(key: &str) -> bool {
    key.ends_with("Manifest.json")
}

/// The period's [`Stamp`]: its manifest's key and ETag, from one listing.
pub(super) async fn stamp(
    export: &Location,
    period: BillingPeriod,
) -> Result<Option<Stamp>, DiscoverError> {
    let manifest = latest_manifest(export, &metadata(period), is_manifest).await?;
    Ok(manifest.map(|m| Stamp::of(&m)))
}

/// Lists one billing period and checks it against the period's manifest.
pub(super) async fn discover(
    export: &Location,
    period: BillingPeriod,
) -> Result<SourcePeriod, DiscoverError> {
    let partition = format!("BILLING_PERIOD={period}");
    let listing = Listing::read(export, period, Layout::Cur2, "data", partition).await?;
    let manifest = read_manifest(export, &metadata(period), is_manifest).await?;
    listing.against(
        export,
        manifest.map(|(file, m): (_, Manifest)| Named {
            manifest: file,
            files: m.data_files,
            delivery: m.execution_id,
        }),
    )
}
