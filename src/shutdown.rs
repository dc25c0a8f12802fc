//! Stopping on SIGTERM or SIGINT: what ECS sends on a stop, a scale-in or a Spot
//! interruption (then SIGKILL after the stop timeout, 30 s by default), and Ctrl-C.
//!
//! The first signal asks the run to stop: no payer-period starts after it, the one being
//! staged stops at once (its copies are dropped, a multipart upload in flight is aborted,
//! the ledger is not written, so the next run redoes them), analytics already running are
//! let finish so that nothing is published half, and the run then reports itself
//! interrupted (summary, metrics, notification), releases its leases and exits with
//! 128 + the signal's number (143 for SIGTERM, 130 for SIGINT). A second signal exits at
//! once with that code.

use tokio::sync::watch;

/// A signal that asks the run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM (15).
    Terminate,
    /// SIGINT (2), Ctrl-C.
    Interrupt,
}

impl Signal {
    /// The signal's name, as people know it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
        }
    }

    /// The exit code of a run it stopped: 128 + the signal's number, as shells report it.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Terminate => 128 + 15,
            Signal::Interrupt => 128 + 2,
        }
    }
}

/// Whether, and by which signal, the run was asked to stop.
#[derive(Debug, Clone)]
pub struct Shutdown {
    asked: watch::Receiver<Option<Signal>>,
}

impl Shutdown {
    /// Listens for SIGTERM and SIGINT from now on (inside the runtime). Without signal
    /// handlers (they could not be installed) the run is only ever stopped by the default
    /// action, as before.
    pub fn listen() -> Self {
        let (tell, asked) = watch::channel(None);
        match (terminate_stream(), interrupt_stream()) {
            (Ok(mut terminate), Ok(mut interrupt)) => {
                tokio::spawn(async move {
                    loop {
                        let signal = tokio::select! {
                            _ = terminate.recv() => Signal::Terminate,
                            _ = interrupt.recv() => Signal::Interrupt,
                        };
                        if tell.borrow().is_some() {
                            tracing::error!(signal = signal.name(), "second signal: exiting now");
                            std::process::exit(i32::from(signal.exit_code()));
                        }
                        tracing::warn!(
                            signal = signal.name(),
                            "stopping: no payer-period starts from now on; running analytics finish, then the run reports and exits"
                        );
                        let _ = tell.send(Some(signal));
                    }
                });
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM/SIGINT; a signal stops the run without a report");
            }
        }
        Self { asked }
    }

    /// A run nothing stops (the demo, tests).
    pub fn never() -> Self {
        let (_, asked) = watch::channel(None);
        Self { asked }
    }

    /// The signal that asked the run to stop, if one did.
    pub fn signal(&self) -> Option<Signal> {
        *self.asked.borrow()
    }

    /// Waits until a signal asks the run to stop (forever, if none does).
    pub async fn requested(&self) -> Signal {
        let mut asked = self.asked.clone();
        loop {
            if let Some(signal) = *asked.borrow_and_update() {
                return signal;
            }
            if asked.changed().await.is_err() {
                // No sender left: no signal will ever come.
                std::future::pending::<()>().await;
            }
        }
    }
}

fn terminate_stream() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
}

fn interrupt_stream() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
}
