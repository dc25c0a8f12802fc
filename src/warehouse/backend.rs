//! The warehouse a profile names, opened: one value the commands use whatever the engine.
//! This is the one place that knows the backends apart; [`Backend`] delegates each trait
//! method to the engine it holds.

use chrono::{DateTime, Utc};

use super::embedded::EmbeddedTable;
use super::snowflake::SnowflakeTable;
use super::{
    AnalyticsOutcome, Embedded, PayerTable, Snowflake, StagedPeriod, Warehouse, WarehouseError,
    WarehouseSettings, WasteBreakdown, WasteReader,
};
use crate::payers::PayerConfig;
use crate::storage::Location;
use crate::task::{BillingPeriod, PayerId};

/// The warehouse of a profile.
#[derive(Debug)]
pub enum Backend {
    /// DataFusion in-process, Delta tables.
    Embedded(Embedded),
    /// Snowflake over the SQL API.
    Snowflake(Snowflake),
}

/// A staged payer-period registered with a [`Backend`].
pub enum BackendTable {
    /// Registered with the embedded engine.
    Embedded(EmbeddedTable),
    /// Registered with Snowflake.
    Snowflake(SnowflakeTable),
}

/// Opens the warehouse `settings` describe. Errors (exit 2 unless a service did not answer)
/// when its location cannot be opened or its credentials cannot be read or used.
pub async fn open(settings: &WarehouseSettings) -> Result<Backend, WarehouseError> {
    Ok(match settings {
        WarehouseSettings::Embedded {
            dir,
            keep_replaced,
            memory_limit,
        } => Backend::Embedded(
            Embedded::new(Location::open(dir, None).await?)
                .keep_replaced(*keep_replaced)
                .memory_limit(*memory_limit),
        ),
        WarehouseSettings::Snowflake(snowflake) => {
            Backend::Snowflake(Snowflake::connect(snowflake).await?)
        }
    })
}

/// The warehouse whose payer table curflow writes (`curflow payers add` and `remove`): the
/// embedded one. Snowflake's payer table belongs to its owners, and is refused before
/// anything is read.
pub async fn payer_table_for_writing(
    settings: &WarehouseSettings,
) -> Result<Embedded, WarehouseError> {
    match settings {
        WarehouseSettings::Embedded { dir, .. } => {
            Ok(Embedded::new(Location::open(dir, None).await?))
        }
        WarehouseSettings::Snowflake(_) => Err(WarehouseError::PayerTableReadOnly),
    }
}

impl Warehouse for Backend {
    type Table = BackendTable;

    fn analyses_at_once(&self) -> usize {
        match self {
            Backend::Embedded(w) => w.analyses_at_once(),
            Backend::Snowflake(w) => w.analyses_at_once(),
        }
    }

    async fn register_period(&self, staged: &StagedPeriod) -> Result<BackendTable, WarehouseError> {
        Ok(match self {
            Backend::Embedded(w) => BackendTable::Embedded(w.register_period(staged).await?),
            Backend::Snowflake(w) => BackendTable::Snowflake(w.register_period(staged).await?),
        })
    }

    async fn run_analytics(
        &self,
        table: &BackendTable,
        application_tag: &str,
    ) -> Result<AnalyticsOutcome, WarehouseError> {
        match (self, table) {
            (Backend::Embedded(w), BackendTable::Embedded(t)) => {
                w.run_analytics(t, application_tag).await
            }
            (Backend::Snowflake(w), BackendTable::Snowflake(t)) => {
                w.run_analytics(t, application_tag).await
            }
            // Tables come from `register_period` of the same backend.
            _ => Err(WarehouseError::Request(
                "internal error: a table registered with another warehouse".into(),
            )),
        }
    }

    async fn clear_period(&self, staged: &StagedPeriod) -> Result<(), WarehouseError> {
        match self {
            Backend::Embedded(w) => w.clear_period(staged).await,
            Backend::Snowflake(w) => w.clear_period(staged).await,
        }
    }
}

impl WasteReader for Backend {
    async fn last_processed(
        &self,
        payer: &PayerId,
    ) -> Result<Option<DateTime<Utc>>, WarehouseError> {
        match self {
            Backend::Embedded(w) => w.last_processed(payer).await,
            Backend::Snowflake(w) => w.last_processed(payer).await,
        }
    }

    async fn breakdown(
        &self,
        payer: &PayerId,
        period: BillingPeriod,
    ) -> Result<WasteBreakdown, WarehouseError> {
        match self {
            Backend::Embedded(w) => w.breakdown(payer, period).await,
            Backend::Snowflake(w) => w.breakdown(payer, period).await,
        }
    }
}

impl PayerTable for Backend {
    async fn payer_configs(&self) -> Result<Vec<PayerConfig>, WarehouseError> {
        match self {
            Backend::Embedded(w) => w.payer_configs().await,
            Backend::Snowflake(w) => w.payer_configs().await,
        }
    }
}
