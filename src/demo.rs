//! The demo: three payers' synthetic CUR, run through the real pipeline on local disk.
//!
//! Sources go under `<data-dir>/sources/payer-<id>/cur2` (the demo month and the month
//! before, as a run covers both) and are generated only when a month is not there yet, so a
//! second `demo` finds the same deliveries and reports "Already synchronized" — what a
//! scheduled production run does between deliveries. The demo writes its settings to
//! `<data-dir>/demo.toml` (the `local` profile plus the demo payers), so `curflow run` and
//! `curflow plan --config <data-dir>/demo.toml` work on the same data afterwards.

use std::path::Path;

use crate::generate::{self, GenerateOptions};
use crate::pipeline::{self, Mode};
use crate::report::RunReport;
use crate::settings::{LOCAL_PROFILE, SettingsSource};
use crate::shutdown::Shutdown;
use crate::storage::{Location, StoreUrl};
use crate::task::{BillingPeriod, PayerChoice, PayerId, TaskInput};

/// The demo's payers: fixed, so that reruns find the same data.
pub const DEMO_PAYERS: [&str; 3] = ["671238551718", "204857193650", "385920174463"];

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Bad flags.
    #[error(transparent)]
    Task(#[from] crate::task::TaskError),
    /// The built-in profile could not be set up.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// Reading or writing the data directory failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// Generating a payer's CUR failed.
    #[error("generating CUR for payer {payer}: {source}")]
    Generate {
        /// The payer.
        payer: PayerId,
        /// The generator's error.
        #[source]
        source: generate::GenerateError,
    },
    /// The demo's settings file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The pipeline refused to start.
    #[error(transparent)]
    Setup(#[from] pipeline::SetupError),
}

/// The settings file the demo writes and runs with.
pub const SETTINGS_FILE: &str = "demo.toml";

/// Generates what is missing under `data_dir`, writes its settings, then runs the pipeline.
pub async fn run(
    data_dir: &Path,
    year: i64,
    month: i64,
    rows: u64,
) -> Result<RunReport, DemoError> {
    let task_period = BillingPeriod::new(year, month)?;
    let data = StoreUrl::parse(&data_dir.to_string_lossy())?;
    let mut payers = Vec::new();
    for (n, id) in DEMO_PAYERS.iter().enumerate() {
        let payer = PayerId::parse(id).map_err(|reason| crate::task::TaskError::Invalid {
            field: "payers",
            value: (*id).to_owned(),
            reason,
        })?;
        let root = data.join(&format!("sources/payer-{payer}/cur2"));
        let export = Location::local(&root)?;
        for (m, period) in task_period.with_previous(2).into_iter().enumerate() {
            let manifest = format!("metadata/BILLING_PERIOD={period}/cur2-Manifest.json");
            if export.read(&manifest).await?.is_some() {
                continue;
            }
            let mut options =
                GenerateOptions::new(payer.as_str().to_owned(), period.year(), period.month());
            options.rows = rows;
            options.seed = 20250 + 10 * n as u64 + m as u64;
            options.root_url = root.to_string();
            let (store, prefix) = export.store();
            generate::generate(store, &prefix, &options)
                .await
                .map_err(|source| DemoError::Generate {
                    payer: payer.clone(),
                    source,
                })?;
        }
        payers.push((payer, root));
    }
    let settings_path = data_dir.join(SETTINGS_FILE);
    let mut text = String::from(
        "# Written by `curflow demo`: the built-in local profile, rooted here, with the demo payers.\n\
         # Try: curflow plan --config <this file> --year Y --month M --payer ID ...\n[local]\n",
    );
    text.push_str(&format!(
        "staging = \"{}\"\nwarehouse_dir = \"{}\"\n",
        data.join("staging"),
        data.join("warehouse")
    ));
    for (payer, root) in &payers {
        text.push_str(&format!(
            "\n[[local.payers]]\npayer_id = \"{payer}\"\nsource = \"{root}\"\n"
        ));
    }
    std::fs::create_dir_all(data_dir)
        .and_then(|()| std::fs::write(&settings_path, text))
        .map_err(|source| DemoError::Write {
            path: settings_path.clone(),
            source,
        })?;
    let settings = SettingsSource::from_env(Some(settings_path)).load(LOCAL_PROFILE)?;
    let task = TaskInput {
        period: task_period,
        payers: PayerChoice::Listed(payers.into_iter().map(|(payer, _)| payer).collect()),
        env: LOCAL_PROFILE.to_owned(),
        partner_id: None,
        module: "analytics".to_owned(),
    };
    Ok(pipeline::run(&task, &settings, Mode::Run, &Shutdown::never()).await?)
}
