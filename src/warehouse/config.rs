//! Which warehouse a profile uses, and its settings: the profile keys `warehouse`,
//! `warehouse_dir`, `keep_replaced`, `memory_limit` and the `[<env>.snowflake]` table, validated here so
//! that nothing outside `warehouse/` knows the backends apart.

use std::time::Duration;

use serde::Deserialize;

use super::embedded::{DEFAULT_KEEP_REPLACED, DEFAULT_MEMORY_LIMIT};
use super::snowflake::{SnowflakeProfile, SnowflakeSettings};
use crate::storage::StoreUrl;
use crate::values::{Refusal, duration_setting, refuse, size_setting};

/// Which warehouse runs the analytics, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseSettings {
    /// Apache DataFusion in-process; final tables as Delta tables under `dir`.
    Embedded {
        /// Where the final tables live.
        dir: StoreUrl,
        /// How long files a run replaced in a final table stay before a later run deletes
        /// them (readers that started earlier, time travel).
        keep_replaced: Duration,
        /// Bytes the analytics' operators (joins, aggregations, sorts) may hold before
        /// they spill to disk.
        memory_limit: u64,
    },
    /// Snowflake over the SQL API; final tables in its database and schema.
    Snowflake(Box<SnowflakeSettings>),
}

/// The profile's `warehouse` key.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WarehouseKind {
    /// The embedded engine (the default).
    #[default]
    Embedded,
    /// Snowflake.
    Snowflake,
}

/// The profile's warehouse keys as written; every one optional.
#[derive(Debug, Default)]
pub(crate) struct WarehouseProfile {
    /// `warehouse`: `embedded` or `snowflake` (then `[<env>.snowflake]` and an `s3://`
    /// staging are required). Default: `embedded`.
    pub(crate) kind: Option<WarehouseKind>,
    /// `[<env>.snowflake]`: account, objects and credentials (see docs/snowflake.md).
    pub(crate) snowflake: Option<SnowflakeProfile>,
    /// `warehouse_dir`: URL or directory of the embedded warehouse's final tables, as
    /// resolved by the settings (required except in `local`).
    pub(crate) dir: Option<String>,
    /// `keep_replaced`: how long files a run replaced in a final table stay (`0s`, `12h`,
    /// `7d`), 0s-365d. Default: `7d`.
    pub(crate) keep_replaced: Option<String>,
    /// `memory_limit`: what the embedded analytics may hold in memory before spilling to
    /// disk (`512MiB`, `4GiB`), 64MiB-1TiB. Default: `2GiB`.
    pub(crate) memory_limit: Option<String>,
}

impl WarehouseProfile {
    /// Applies defaults and checks every value. `dir` turns `warehouse_dir` into a URL (the
    /// profile's default when absent, or an error naming the key); `staging` is the
    /// resolved staging store, which Snowflake must be able to read.
    pub(crate) fn resolve(
        self,
        staging: &StoreUrl,
        dir: impl FnOnce(Option<String>) -> Result<StoreUrl, Refusal>,
    ) -> Result<WarehouseSettings, Refusal> {
        match self.kind.unwrap_or_default() {
            WarehouseKind::Embedded => Ok(WarehouseSettings::Embedded {
                dir: dir(self.dir)?,
                keep_replaced: duration_setting(
                    "keep_replaced",
                    self.keep_replaced.as_deref(),
                    DEFAULT_KEEP_REPLACED,
                    Duration::ZERO..=Duration::from_secs(365 * 86_400),
                    "must be a duration such as 0s, 12h or 7d, at most 365d",
                )?,
                memory_limit: size_setting(
                    "memory_limit",
                    self.memory_limit.as_deref(),
                    DEFAULT_MEMORY_LIMIT,
                    64 << 20..=1 << 40,
                    "must be a size such as 512MiB or 4GiB (binary units), from 64MiB to 1TiB",
                )?,
            }),
            WarehouseKind::Snowflake => {
                if !staging.as_str().starts_with("s3://") {
                    return Err(refuse(
                        "staging",
                        &format!("\"{}\"", staging.as_str()),
                        "must be an s3:// URL when warehouse = \"snowflake\": Snowflake reads the staged files through an external stage",
                    ));
                }
                let snowflake = self.snowflake.unwrap_or_default().resolve()?;
                Ok(WarehouseSettings::Snowflake(Box::new(snowflake)))
            }
        }
    }
}
