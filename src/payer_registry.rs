//! The `curflow payers` command: the payer table in the warehouse, beside the settings
//! file's payers.

use std::fmt::Write;

use crate::settings::{Settings, WarehouseSettings};
use crate::storage::{Location, StorageError};
use crate::task::PayerId;
use crate::warehouse::{Embedded, Snowflake, Warehouse, WarehouseError};

/// Why the payer table could not be shown or changed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The warehouse location cannot be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The payer table cannot be read or written, or the entry is invalid.
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// The profile's warehouse keeps its payer table elsewhere.
    #[error(
        "`curflow payers add` and `remove` change the embedded warehouse's payer table; with warehouse = \"snowflake\" edit the table named by snowflake.payer_table in Snowflake (`curflow payers list` reads it)"
    )]
    Snowflake,
}

/// The embedded warehouse, whose payer table curflow writes.
fn embedded(settings: &Settings) -> Result<Embedded, RegistryError> {
    match &settings.warehouse {
        WarehouseSettings::Embedded { dir, .. } => Ok(Embedded::new(Location::open(dir, None)?)),
        WarehouseSettings::Snowflake(_) => Err(RegistryError::Snowflake),
    }
}

/// One line per configured payer, saying where its configuration comes from and when
/// analytics last replaced one of its months (so a payer that silently stopped being
/// processed stands out), from whichever warehouse the profile uses.
pub async fn list(settings: &Settings) -> Result<String, RegistryError> {
    match &settings.warehouse {
        WarehouseSettings::Embedded { dir, .. } => {
            list_in(&Embedded::new(Location::open(dir, None)?), settings).await
        }
        WarehouseSettings::Snowflake(snowflake) => {
            list_in(&Snowflake::connect(snowflake).await?, settings).await
        }
    }
}

async fn list_in<W: Warehouse>(
    warehouse: &W,
    settings: &Settings,
) -> Result<String, RegistryError> {
    let from_table = warehouse.payer_configs().await?;
    let mut out = String::new();
    for (origin, configs) in [
        ("payer table", from_table.clone()),
        ("settings file", settings.payers.clone()),
    ] {
        for c in configs {
            let overridden =
                origin == "settings file" && from_table.iter().any(|t| t.payer_id == c.payer_id);
            let processed = match warehouse.last_processed(&c.payer_id).await? {
                Some(at) => format!("last processed {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
                None => "never processed".to_owned(),
            };
            let _ = writeln!(
                out,
                "{}  {:<8}  {}  ({origin}{})  {processed}",
                c.payer_id,
                if c.active { "active" } else { "inactive" },
                c.source,
                if overridden {
                    ", overridden by the payer table"
                } else {
                    ""
                }
            );
        }
    }
    if out.is_empty() {
        out.push_str(
            "no payers configured: add one with `curflow payers add --payer ID --source URL`\n",
        );
    }
    Ok(out)
}

/// Adds or replaces an entry (JSON with settings-file keys).
pub async fn add(settings: &Settings, entry_json: &str) -> Result<String, RegistryError> {
    let config = embedded(settings)?.save_payer(entry_json).await?;
    Ok(format!(
        "payer {} saved: source {}\n",
        config.payer_id, config.source
    ))
}

/// Removes an entry.
pub async fn remove(settings: &Settings, payer: &PayerId) -> Result<String, RegistryError> {
    Ok(if embedded(settings)?.remove_payer(payer).await? {
        format!("payer {payer} removed from the payer table\n")
    } else {
        format!("payer {payer} was not in the payer table\n")
    })
}
