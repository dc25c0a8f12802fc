//! The `curflow` binary: parse the command line, call the library, decide the exit code.
//!
//! Exit codes (DESIGN.md §3): 0 success (also "already synchronized"); 2 bad input or
//! settings, nothing touched and nothing sent; 1 a failure at run time. This file is the
//! only place that decides them. After a run (not a plan) it publishes the metrics and the
//! notification; an unexpected error or panic during the run takes the fatal path: a
//! `FatalError` metric, a `failed` notification, one `error:` line and exit 1. An
//! undeliverable notification makes the exit code 1 only with `notify.required = true`.

use std::io::IsTerminal;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;

use chrono::Utc;
use clap::Parser;
use curflow::check::CheckLine;
use curflow::cli::{Cli, Command, LogFormat, PayersAction, TaskArgs};
use curflow::generate::{self, GenerateOptions};
use curflow::pipeline::{self, Mode};
use curflow::report::{self, Delivery, Output, RunReport, Status};
use curflow::settings::SettingsSource;
use curflow::shutdown::Shutdown;
use curflow::storage::{Location, StoreUrl};
use curflow::task::{BillingPeriod, PayerId, TaskError};
use curflow::{Error, demo, payer_registry};
use futures::FutureExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return refuse_arguments(&e),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if cli.output == Output::Json && !cli.command.prints_json() {
        eprintln!(
            "error: --output json is for run, plan, report and check; {} prints text only: drop --output",
            cli.command.name()
        );
        return ExitCode::from(2);
    }
    match cli.command {
        Command::Run(args) => {
            let mode = match (args.dry_run, args.stage_only) {
                (true, _) => Mode::Plan,
                (false, true) => Mode::Stage,
                (false, false) => Mode::Run,
            };
            run_task(&runtime, cli.log_format, cli.output, &args.task, mode)
        }
        Command::Plan(args) => run_task(&runtime, cli.log_format, cli.output, &args, Mode::Plan),
        Command::Check(args) => {
            let period = match args.period.as_deref().map(BillingPeriod::parse).transpose() {
                Ok(period) => period.unwrap_or_else(BillingPeriod::current),
                Err(error) => return refuse(&Error::from(error)),
            };
            let settings = match SettingsSource::from_env(args.config.clone()).load(&args.env) {
                Ok(settings) => settings,
                Err(error) => return refuse(&Error::from(error)),
            };
            init_logging(cli.log_format, Some(&args.env));
            let lines = runtime.block_on(curflow::check::run(&settings, period));
            print!("{}", render_check(&lines, cli.output));
            match lines.iter().all(|l| l.result.is_ok()) {
                true => ExitCode::SUCCESS,
                false => ExitCode::from(1),
            }
        }
        command => {
            init_logging(cli.log_format, None);
            match runtime.block_on(execute(command, cli.output)) {
                Ok(Some(report)) => {
                    print!("{}", report::render_summary(&report));
                    exit_code(report.status(), false)
                }
                Ok(None) => ExitCode::SUCCESS,
                Err(error) => refuse(&error),
            }
        }
    }
}

/// `check`'s lines: `ok    <subject>: <what worked>` / `FAIL  <subject>: <what failed>`,
/// or one JSON document (`{"ok": bool, "checks": [{"check", "ok", "detail"}]}`).
fn render_check(lines: &[CheckLine], output: Output) -> String {
    match output {
        Output::Text => lines
            .iter()
            .map(|l| match &l.result {
                Ok(detail) => format!("ok    {}: {detail}\n", l.subject),
                Err(detail) => format!("FAIL  {}: {detail}\n", l.subject),
            })
            .collect(),
        Output::Json => {
            let checks: Vec<_> = lines
                .iter()
                .map(|l| {
                    let (ok, detail) = match &l.result {
                        Ok(d) => (true, d),
                        Err(d) => (false, d),
                    };
                    serde_json::json!({"check": l.subject, "ok": ok, "detail": detail})
                })
                .collect();
            let all = lines.iter().all(|l| l.result.is_ok());
            format!("{:#}\n", serde_json::json!({"ok": all, "checks": checks}))
        }
    }
}

/// `run` and `plan`: validate, run, publish (runs only), decide the exit code.
fn run_task(
    runtime: &tokio::runtime::Runtime,
    format: Option<LogFormat>,
    output: Output,
    args: &TaskArgs,
    mode: Mode,
) -> ExitCode {
    let prepared = match args.task() {
        Ok(task) => SettingsSource::from_env(args.config.clone())
            .load(&task.env)
            .and_then(|settings| settings.with_periods(args.periods))
            .map(|settings| settings.with_verify(args.verify))
            .map(|settings| (task, settings))
            .map_err(Error::from),
        Err(error) => Err(Error::from(error)),
    };
    let (task, settings) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return refuse(&error),
    };
    init_logging(format, Some(&task.env));
    // A panic is logged as one line by the hook; the fatal path below reports it.
    std::panic::set_hook(Box::new(
        |info| tracing::error!(panic = %info, "internal error"),
    ));
    let started_at = Utc::now();
    let shutdown = {
        let _inside = runtime.enter();
        Shutdown::listen()
    };
    let outcome = runtime.block_on(
        AssertUnwindSafe(pipeline::run(&task, &settings, mode, &shutdown)).catch_unwind(),
    );
    let report = match outcome {
        Ok(Ok(report)) => report,
        Ok(Err(error)) => {
            let error = Error::from(error);
            if error.is_bad_input() {
                return refuse(&error);
            }
            RunReport::fatal(task, settings.on_sql_error, started_at, chain(&error))
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            RunReport::fatal(
                task,
                settings.on_sql_error,
                started_at,
                format!("internal error: {message}"),
            )
        }
    };
    // A plan publishes nothing; its summary is still printed. A fatal report has no
    // summary: its one `error:` line goes to stderr instead.
    let sinks = match mode {
        Mode::Plan => report::plan_sinks(output),
        Mode::Run | Mode::Stage => {
            report::sinks(&settings.metrics, settings.notify.as_ref(), output)
        }
    };
    let published = runtime.block_on(report::publish(&report, &sinks));
    if let Some(error) = &report.fatal {
        eprintln!("error: {}", report::one_line(error));
    }
    let notification_lost = published.notification == Delivery::Failed
        && settings.notify.as_ref().is_some_and(|n| n.required);
    exit_code(report.status(), notification_lost)
}

/// The documented exit code of a run that reported.
fn exit_code(status: Status, notification_lost: bool) -> ExitCode {
    match status {
        Status::Interrupted(signal) => ExitCode::from(signal.exit_code()),
        Status::Failed => ExitCode::from(1),
        Status::Success | Status::AnalyticsFailed if notification_lost => ExitCode::from(1),
        Status::Success | Status::AnalyticsFailed => ExitCode::SUCCESS,
    }
}

/// Arguments clap refused, as one `error:` line and exit 2 (help and version print as
/// clap does): clap's own message spans a usage block and tips, and a value from outside
/// in it (an argument, TASK_INPUT_JSON) could hold anything.
fn refuse_arguments(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if !error.use_stderr() || error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        error.exit();
    }
    let task_not_text = std::env::var_os("TASK_INPUT_JSON").is_some_and(|v| v.to_str().is_none());
    let message = match error.kind() {
        ErrorKind::InvalidUtf8 if task_not_text => {
            "TASK_INPUT_JSON is not UTF-8 text; give the task as JSON".to_owned()
        }
        _ => {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            format!("{}; see --help", first.trim_start_matches("error: "))
        }
    };
    eprintln!("error: {}", report::one_line(&message));
    ExitCode::from(2)
}

/// One `error:` line; exit 2 for bad input, 1 otherwise.
fn refuse(error: &Error) -> ExitCode {
    eprintln!("error: {}", report::one_line(&chain(error)));
    ExitCode::from(if error.is_bad_input() { 2 } else { 1 })
}

/// The error and its causes on one line.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// The only log targets (prefixes of module paths) that may log below `info`, whatever
/// `CURFLOW_LOG` asks: curflow's own and the query engines'. HTTP, TLS, AWS SDK, request
/// signing and AMQP libraries log requests, headers and protocol frames at debug and
/// trace, which hold credentials (an `Authorization` header, a signing key's inputs, a
/// GetSecretValue answer, the AMQP login); a list of those would miss the next one.
const VERBOSE_LOGS: &[&str] = &["curflow", "datafusion", "deltalake"];

/// Text logs for people; JSON (one object per line) with `--log-format json`, or by default
/// in the `prod` profile when stderr is not a terminal (a container's log driver).
fn init_logging(format: Option<LogFormat>, env: Option<&str>) {
    let json = match format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => env == Some("prod") && !std::io::stderr().is_terminal(),
    };
    let asked = tracing_subscriber::EnvFilter::try_from_env("CURFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,curflow=info"));
    // Every other library is capped at info. The cap only ever lowers what `CURFLOW_LOG`
    // asks (both filters must let an event through), so by default they stay at warn.
    let capped = VERBOSE_LOGS.iter().fold(
        Targets::new().with_default(LevelFilter::INFO),
        |caps, target| caps.with_target(*target, LevelFilter::TRACE),
    );
    let filter = asked.and(capped);
    // https://no-color.org: a set, non-empty NO_COLOR turns colours off.
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false);
    curflow::sync::progress::enable_bars(!json && std::io::stderr().is_terminal());
    if json {
        // A JSON line names its target, for filtering in the log store.
        let layer = layer
            .with_target(true)
            .json()
            .flatten_event(true)
            .with_filter(filter);
        tracing_subscriber::registry().with(layer).init();
    } else {
        tracing_subscriber::registry()
            .with(layer.with_filter(filter))
            .init();
    }
}

/// The commands that neither publish nor take the fatal path: demo, report and generate.
async fn execute(command: Command, output: Output) -> Result<Option<RunReport>, Error> {
    match command {
        // Handled by `run_task`.
        Command::Run(_) | Command::Plan(_) | Command::Check(_) => Ok(None),
        Command::Demo(args) => Ok(Some(
            demo::run(&args.data_dir, args.year, args.month, args.rows).await?,
        )),
        Command::Payers(args) => {
            let settings = SettingsSource::from_env(args.config.clone()).load(&args.env)?;
            let text = match &args.action {
                PayersAction::List => payer_registry::list(&settings).await?,
                PayersAction::Add(entry) => {
                    payer_registry::add(&settings, &entry.to_json()).await?
                }
                PayersAction::Remove { payer } => {
                    let payer = PayerId::parse(payer).map_err(|reason| TaskError::Invalid {
                        field: "payer",
                        value: format!("\"{payer}\""),
                        reason,
                    })?;
                    payer_registry::remove(&settings, &payer).await?
                }
            };
            print!("{text}");
            Ok(None)
        }
        Command::Report(args) => {
            let period = BillingPeriod::parse(&args.period)?;
            let payer = PayerId::parse(&args.payer).map_err(|reason| TaskError::Invalid {
                field: "payer",
                value: format!("\"{}\"", args.payer),
                reason,
            })?;
            let settings = SettingsSource::from_env(args.config.clone()).load(&args.env)?;
            let html = args
                .html
                .unwrap_or_else(|| curflow::waste_report::default_path(&payer, period));
            print!(
                "{}",
                curflow::waste_report::run(&settings, &payer, period, &html, output).await?
            );
            Ok(None)
        }
        Command::Generate(args) => {
            let period = BillingPeriod::new(args.year, args.month)?;
            let payer = PayerId::parse(&args.payer).map_err(|reason| TaskError::Invalid {
                field: "payer",
                value: format!("\"{}\"", args.payer),
                reason,
            })?;
            let root = StoreUrl::parse(&args.out)?;
            let export = Location::open(&root, None).await?;
            let mut options =
                GenerateOptions::new(payer.as_str().to_owned(), period.year(), period.month());
            options.rows = args.rows;
            options.seed = args.seed;
            options.commitment_sets = args.commitment_sets;
            options.delivery = args.delivery;
            options.layout = args.layout();
            options.export_name = args.export_name;
            options.root_url = root.to_string();
            let (store, prefix) = export.store();
            let report = generate::generate(store, &prefix, &options).await?;
            println!(
                "wrote {} rows in {} files ({}) to {root}: RI waste {}, SP waste {} over {} commitments",
                report.rows,
                report.files.len(),
                report::human_bytes(report.bytes),
                report::dollars(report.ri_unused_cost),
                report::dollars(report.sp_unused_cost),
                report.commitments
            );
            Ok(None)
        }
    }
}
