//! Command-line flags, and their conversion into validated values. No I/O happens here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::Output;
use crate::sync::Layout;
use crate::task::{TaskError, TaskFlags, TaskInput};

/// curflow keeps many AWS payers' Cost and Usage Reports mirrored in one staging store and
/// computes hourly Reserved Instance and Savings Plans waste per application.
#[derive(Debug, Parser)]
#[command(name = "curflow", version, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr: `text` for people, `json` (one object per line) for log
    /// pipelines. Default: text, except json in the `prod` profile when stderr is not a terminal.
    #[arg(long, global = true, value_enum, env = "CURFLOW_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// What `run`, `plan`, `report` and `check` print on stdout: `text`, or one JSON document
    /// (logs stay on stderr).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "CURFLOW_OUTPUT"
    )]
    pub output: Output,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Synchronize each payer's CUR into staging and run the wastage analytics.
    ///
    /// The task comes from TASK_INPUT_JSON (the seed's format, e.g.
    /// {"year": 2025, "month": 7, "payers": ["671238551718"], "env": "prod"}) or from flags.
    /// The run covers the task month and the month before it (setting `periods`).
    Run(RunArgs),
    /// Show what `run` would do for each payer and billing period, changing nothing.
    Plan(TaskArgs),
    /// Write synthetic CUR 2.0 Parquet for one payer and month, with its ground truth.
    Generate(GenerateArgs),
    /// List, add or remove payers in the warehouse's payer table (entries there take
    /// precedence over the settings file's `[[<env>.payers]]`).
    Payers(PayersArgs),
    /// Check, changing nothing, that everything a run needs is reachable with the
    /// permissions it needs: the warehouse, each payer's source, staging, the broker and
    /// CloudWatch. One line per check; exit 0 only when all pass.
    Check(CheckArgs),
    /// Print one payer-month's top wasted commitments and applications, and write an HTML
    /// report with charts (self-contained: opens offline).
    Report(ReportArgs),
    /// Generate CUR for three payers under ./curflow-data/sources (the demo month and the
    /// month before, as a run covers both), run the real pipeline on it with the built-in
    /// `local` profile, and print the summary.
    Demo(DemoArgs),
}

/// The task and where settings come from.
#[derive(Debug, Args)]
pub struct TaskArgs {
    /// Settings file (TOML, one table per profile). Default: ./curflow.toml if it exists.
    #[arg(long, env = "CURFLOW_CONFIG")]
    pub config: Option<PathBuf>,
    /// The task as JSON (seed format). Give either this or the flags below.
    #[arg(long = "task-json", env = "TASK_INPUT_JSON", hide_env_values = true)]
    pub task_json: Option<String>,
    /// Billing year of the task month. Without it and --month (or --period): the current
    /// month, UTC.
    #[arg(long, allow_negative_numbers = true)]
    pub year: Option<i64>,
    /// Billing month of the task, 1-12.
    #[arg(long, allow_negative_numbers = true)]
    pub month: Option<i64>,
    /// The task month as YYYY-MM (as `report --period` takes it), instead of --year and
    /// --month.
    #[arg(long, conflicts_with_all = ["year", "month"])]
    pub period: Option<String>,
    /// A payer account id (12 digits); repeat for several payers. `all`: every payer the
    /// profile configures.
    #[arg(long = "payer")]
    pub payers: Vec<String>,
    /// Settings profile. Default with flags: local.
    #[arg(long)]
    pub env: Option<String>,
    /// Partner id, passed through to notifications.
    #[arg(long)]
    pub partner_id: Option<u64>,
    /// Billing periods to synchronize: the task month and the N-1 before it (late data and
    /// restatements of older months), 1-36. Overrides the profile's `periods` (default 2).
    #[arg(long)]
    pub periods: Option<u32>,
    /// Compare every period's source with its staged copy in full, even where the manifest
    /// says the delivery is unchanged (setting `verify_every` does so once a day): repairs
    /// a staged file lost behind curflow's back.
    #[arg(long)]
    pub verify: bool,
}

impl TaskArgs {
    /// The validated task.
    pub fn task(&self) -> Result<TaskInput, TaskError> {
        let flags = TaskFlags {
            year: self.year,
            month: self.month,
            period: self.period.clone(),
            payers: self.payers.clone(),
            env: self.env.clone(),
            partner_id: self.partner_id,
        };
        TaskInput::from_sources(self.task_json.as_deref(), &flags)
    }
}

impl Command {
    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::Plan(_) => "plan",
            Command::Generate(_) => "generate",
            Command::Payers(_) => "payers",
            Command::Report(_) => "report",
            Command::Check(_) => "check",
            Command::Demo(_) => "demo",
        }
    }

    /// Whether `--output json` applies.
    pub fn prints_json(&self) -> bool {
        matches!(
            self,
            Command::Run(_) | Command::Plan(_) | Command::Report(_) | Command::Check(_)
        )
    }
}

/// `run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The task.
    #[command(flatten)]
    pub task: TaskArgs,
    /// Plan only: print what would be copied, deleted and analysed, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stage only: mirror the sources into staging and leave the analytics for a later run
    /// (e.g. when another warehouse reads staging). A period already staged is "Already
    /// synchronized" whether or not it was analysed.
    #[arg(long, conflicts_with = "dry_run")]
    pub stage_only: bool,
}

/// `generate` flags.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Export root to write to (a directory or s3://bucket/prefix/export-name).
    #[arg(long)]
    pub out: String,
    /// Payer account id (12 digits).
    #[arg(long)]
    pub payer: String,
    /// Billing year.
    #[arg(long, allow_negative_numbers = true)]
    pub year: i64,
    /// Billing month, 1-12.
    #[arg(long, allow_negative_numbers = true)]
    pub month: i64,
    /// Approximate number of CUR rows for the month.
    #[arg(long, default_value_t = 20_000)]
    pub rows: u64,
    /// Seed: the same seed writes the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sets of commitments: each set is 7 reservations and 3 Savings Plans, of the same
    /// kinds as the first set but their own ARNs and use. More sets make the analytics'
    /// tables grow (commitments × hours × applications) where --rows makes only the scan
    /// grow.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub commitment_sets: u32,
    /// Delivery number; a new delivery replaces the period's files with new names.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub delivery: u32,
    /// Export name (the last folder of the export root, and the file name prefix).
    #[arg(long, default_value = "cur2")]
    pub export_name: String,
    /// Write the legacy CUR (Parquet) layout: `<export-name>/year=YYYY/month=M/`, a
    /// `YYYYMMDD-YYYYMMDD/` manifest and `cost_and_usage_data_status/`, tags as
    /// `resource_tags_user_<key>` columns. Same data and ground truth as CUR 2.0.
    #[arg(long)]
    pub legacy: bool,
}

impl GenerateArgs {
    /// The layout to write: `--legacy` asks for the legacy CUR layout, else CUR 2.0.
    pub fn layout(&self) -> Layout {
        if self.legacy {
            Layout::Legacy
        } else {
            Layout::Cur2
        }
    }
}

/// `demo` flags.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where sources, staging and warehouse go.
    #[arg(long, default_value = "./curflow-data")]
    pub data_dir: PathBuf,
    /// Billing year of the demo month.
    #[arg(long, default_value_t = 2025, allow_negative_numbers = true)]
    pub year: i64,
    /// Billing month of the demo, 1-12.
    #[arg(long, default_value_t = 7, allow_negative_numbers = true)]
    pub month: i64,
    /// Approximate CUR rows per payer.
    #[arg(long, default_value_t = 20_000)]
    pub rows: u64,
}

/// `report` flags.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Settings file. Default: ./curflow.toml if it exists.
    #[arg(long, env = "CURFLOW_CONFIG")]
    pub config: Option<PathBuf>,
    /// Settings profile.
    #[arg(long, default_value = "local")]
    pub env: String,
    /// Payer account id (12 digits).
    #[arg(long)]
    pub payer: String,
    /// Billing period, YYYY-MM.
    #[arg(long)]
    pub period: String,
    /// Where to write the HTML report. Default: ./curflow-waste-<payer>-<period>.html
    #[arg(long)]
    pub html: Option<PathBuf>,
}

/// `check` flags.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Settings file. Default: ./curflow.toml if it exists.
    #[arg(long, env = "CURFLOW_CONFIG")]
    pub config: Option<PathBuf>,
    /// Settings profile to check.
    #[arg(long, default_value = "local")]
    pub env: String,
    /// The month whose deliveries (and the month before's) are read, YYYY-MM. Default:
    /// the current month, what the next scheduled run reads.
    #[arg(long)]
    pub period: Option<String>,
}

/// `payers` flags.
#[derive(Debug, Args)]
pub struct PayersArgs {
    /// Settings file. Default: ./curflow.toml if it exists.
    #[arg(long, env = "CURFLOW_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Settings profile whose warehouse holds the payer table.
    #[arg(long, default_value = "local", global = true)]
    pub env: String,
    /// What to do.
    #[command(subcommand)]
    pub action: PayersAction,
}

/// `payers` subcommands.
#[derive(Debug, Subcommand)]
pub enum PayersAction {
    /// Every configured payer: the payer table's, then the settings file's.
    List,
    /// Add a payer to the payer table, or replace its entry.
    Add(PayerEntryArgs),
    /// Remove a payer from the payer table.
    Remove {
        /// Payer account id (12 digits).
        #[arg(long)]
        payer: String,
    },
}

/// A payer table entry; the same keys as a settings-file payer entry.
#[derive(Debug, Args)]
pub struct PayerEntryArgs {
    /// Payer account id (12 digits).
    #[arg(long)]
    pub payer: String,
    /// The CUR export root: s3://bucket/prefix/export-name or a directory.
    #[arg(long)]
    pub source: String,
    /// Export layout.
    #[arg(long)]
    pub layout: Option<String>,
    /// Region of the source bucket.
    #[arg(long)]
    pub region: Option<String>,
    /// Role to assume to read the source.
    #[arg(long)]
    pub role_arn: Option<String>,
    /// External id required by the role.
    #[arg(long)]
    pub external_id: Option<String>,
    /// Keep the entry but skip the payer in runs.
    #[arg(long)]
    pub inactive: bool,
}

impl PayerEntryArgs {
    /// The entry as JSON with settings-file keys (validated when stored).
    pub fn to_json(&self) -> String {
        let mut entry = serde_json::Map::new();
        entry.insert("payer_id".into(), self.payer.clone().into());
        entry.insert("source".into(), self.source.clone().into());
        let optional = [
            ("layout", &self.layout),
            ("region", &self.region),
            ("role_arn", &self.role_arn),
            ("external_id", &self.external_id),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                entry.insert(key.into(), value.clone().into());
            }
        }
        entry.insert("active".into(), (!self.inactive).into());
        serde_json::Value::Object(entry).to_string()
    }
}
