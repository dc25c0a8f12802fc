//! curflow: keeps many AWS payers' Cost and Usage Reports (CUR) mirrored in one staging
//! store, and turns them into hourly Reserved Instance and Savings Plans wastage per
//! application.
//!
//! Data flows one way (DESIGN.md §1): [`task`] and [`settings`] validate what was asked,
//! [`payers`] says where each payer's CUR lives, [`sync`] mirrors it into staging through
//! [`storage`], [`warehouse`] analyses it, [`report`] tells what happened through its
//! sinks, and [`pipeline`] is the only module that knows that order. Each component
//! validates its own settings section; [`retry`] is the one retry policy they share.
//! `docs/architecture.md` maps the modules and what an extension touches.

#![warn(missing_docs, unreachable_pub)]

pub mod check;
pub mod cli;
pub mod demo;
pub mod generate;
pub mod payer_registry;
pub mod payers;
pub mod pipeline;
pub mod report;
pub mod retry;
pub mod secrets;
pub mod settings;
pub mod shutdown;
pub mod storage;
pub mod sync;
pub mod task;
mod values;
pub mod warehouse;
pub mod waste_report;

/// Any error a command can end with. [`Error::is_bad_input`] tells bad input (exit 2,
/// nothing was touched) from a failure at run time (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The task input was refused.
    #[error(transparent)]
    Task(#[from] task::TaskError),
    /// The settings were refused.
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    /// The run could not start (unknown payer, unusable URL).
    #[error(transparent)]
    Setup(#[from] pipeline::SetupError),
    /// A storage operation failed.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// The generator failed.
    #[error(transparent)]
    Generate(#[from] generate::GenerateError),
    /// The payer table could not be shown or changed: the warehouse cannot be opened, the
    /// table cannot be read or written (or does not belong to curflow), or the entry is
    /// invalid.
    #[error(transparent)]
    Registry(#[from] warehouse::WarehouseError),
    /// The report could not be made.
    #[error(transparent)]
    Report(#[from] waste_report::ReportError),
    /// The demo failed.
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
}

impl Error {
    /// True when the input or configuration was wrong and nothing was changed.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Task(_) | Error::Settings(_) => true,
            Error::Setup(e) => e.is_bad_input(),
            Error::Storage(e) => matches!(e, storage::StorageError::BadUrl { .. }),
            Error::Demo(demo::DemoError::Task(_) | demo::DemoError::Settings(_)) => true,
            Error::Registry(
                warehouse::WarehouseError::PayerTable(_)
                | warehouse::WarehouseError::Credentials(_),
            ) => true,
            Error::Generate(_) | Error::Demo(_) | Error::Report(_) | Error::Registry(_) => false,
        }
    }
}
