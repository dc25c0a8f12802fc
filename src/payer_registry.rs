//! The `curflow payers` command: the payer table in the warehouse, beside the settings
//! file's payers.

use std::fmt::Write;

use crate::settings::Settings;
use crate::task::PayerId;
use crate::warehouse::{self, PayerTable, WarehouseError, WasteReader, payer_table_for_writing};

/// One line per configured payer, saying where its configuration comes from and when
/// analytics last replaced one of its months (so a payer that silently stopped being
/// processed stands out), from whichever warehouse the profile uses.
pub async fn list(settings: &Settings) -> Result<String, WarehouseError> {
    let warehouse = warehouse::open(&settings.warehouse).await?;
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
pub async fn add(settings: &Settings, entry_json: &str) -> Result<String, WarehouseError> {
    let config = payer_table_for_writing(&settings.warehouse)
        .await?
        .save_payer(entry_json)
        .await?;
    Ok(format!(
        "payer {} saved: source {}\n",
        config.payer_id, config.source
    ))
}

/// Removes an entry.
pub async fn remove(settings: &Settings, payer: &PayerId) -> Result<String, WarehouseError> {
    Ok(
        if payer_table_for_writing(&settings.warehouse)
            .await?
            .remove_payer(payer)
            .await?
        {
            format!("payer {payer} removed from the payer table\n")
        } else {
            format!("payer {payer} was not in the payer table\n")
        },
    )
}
