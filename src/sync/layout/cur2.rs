//! The CUR 2.0 layout (AWS Data Exports).
//!
//! AWS writes a period's data files under `data/BILLING_PERIOD=YYYY-MM/` and then the
//! manifest naming them under `metadata/BILLING_PERIOD=YYYY-MM/`; the manifest's
//! `executionId` identifies the delivery. Its tags are already the `resource_tags` map.

use serde::Deserialize;

use super::{DiscoverError, Layout, Listing, Named, SourcePeriod, read_manifest};
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

/// Lists one billing period and checks it against the period's manifest.
pub(super) async fn discover(
    export: &Location,
    period: BillingPeriod,
) -> Result<SourcePeriod, DiscoverError> {
    let partition = format!("BILLING_PERIOD={period}");
    let metadata = format!("metadata/{partition}");
    let listing = Listing::read(export, period, Layout::Cur2, "data", partition).await?;
    let manifest = read_manifest(export, &metadata, |k| k.ends_with("Manifest.json")).await?;
    listing.against(
        export,
        manifest.map(|(file, m): (_, Manifest)| Named {
            manifest: file,
            files: m.data_files,
            delivery: m.execution_id,
        }),
    )
}
