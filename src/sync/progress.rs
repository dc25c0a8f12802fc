//! Copy progress: a bar on a terminal (files, bytes, rate, ETA), plain log lines otherwise.
//!
//! Whether bars are allowed is decided once by the binary ([`enable_bars`]): only when
//! stderr is a terminal and logs are text. Log lines are spaced at least
//! [`LOG_EVERY`] apart so a large period does not flood a log pipeline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::task::{BillingPeriod, PayerId};

static BARS: AtomicBool = AtomicBool::new(false);

/// Where every bar is drawn: payers copy side by side, each period's bar on a line of its
/// own, instead of several bars overwriting one line.
static DRAWN: LazyLock<MultiProgress> = LazyLock::new(MultiProgress::new);

/// The shortest interval between two progress log lines.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// Allows progress bars (call with `true` only when stderr is a terminal and logs are text).
pub fn enable_bars(on: bool) {
    BARS.store(on, Ordering::Relaxed);
}

/// Progress of one payer-period's copies.
pub(super) struct Progress {
    payer: PayerId,
    period: BillingPeriod,
    files: usize,
    bytes: u64,
    started: Instant,
    bar: Option<ProgressBar>,
    state: Mutex<(usize, u64, Instant)>,
}

impl Progress {
    pub(super) fn new(payer: &PayerId, period: BillingPeriod, files: usize, bytes: u64) -> Self {
        let bar = BARS.load(Ordering::Relaxed).then(|| {
            let bar = DRAWN.add(ProgressBar::new(bytes));
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(format!("payer {payer} {period} 0/{files} files"));
            bar
        });
        let now = Instant::now();
        Self {
            payer: payer.clone(),
            period,
            files,
            bytes,
            started: now,
            bar,
            state: Mutex::new((0, 0, now)),
        }
    }

    /// One more file of `bytes` is copied and verified.
    pub(super) fn file_done(&self, bytes: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.0 += 1;
        state.1 += bytes;
        let (files, done, last) = *state;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(format!(
                "payer {} {} {files}/{} files",
                self.payer, self.period, self.files
            ));
        } else if last.elapsed() >= LOG_EVERY || files == self.files {
            state.2 = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            let rate = done as f64 / secs;
            let eta = if rate > 0.0 {
                self.bytes.saturating_sub(done) as f64 / rate
            } else {
                0.0
            };
            tracing::info!(
                payer = %self.payer,
                period = %self.period,
                files = format!("{files}/{}", self.files),
                bytes = format!("{done}/{}", self.bytes),
                rate_bytes_per_s = rate.round(),
                eta_s = eta.round(),
                "copying"
            );
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            DRAWN.remove(bar);
        }
    }
}
