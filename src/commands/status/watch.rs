//! `poolwright status --watch` (and `--count N`): the pools of every
//! self-hosted PgBouncer, refreshed every `--interval` seconds until Ctrl-C
//! or the N-th refresh. Per pool: clients active and waiting, server
//! connections active, idle and used, maxwait, transactions and queries per
//! second and the average transaction time (from the difference of two
//! refreshes of `SHOW STATS`), the server's own count of the database's
//! backends, and a sparkline of waiting clients, so a saturating pool shows.
//! Managed poolers get the line `status` gives them.
//!
//! Submodules: [`sample`] reads the servers, [`figures`] computes rates and
//! sparklines, [`view`] writes refreshes (terminal, plain, JSON).

mod figures;
mod sample;
mod view;

use std::future::Future;
use std::io::{IsTerminal as _, Write as _};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use self::sample::Watcher;
use self::view::{Frame, StatusLine, Style, TargetView};
use super::super::{load, runtime};
use super::TIMEOUT;
use crate::cli::{Cli, Format, StatusArgs};
use crate::config::Target;
use crate::context::Context;
use crate::error::Error;
use crate::verify::health::{probe, utc};

pub fn run(cli: &Cli, ctx: &Context, args: &StatusArgs) -> Result<(), Error> {
    if cli.format == Format::Markdown {
        return Err(Error::usage(
            "--format markdown is one table, not a live view: use --format text or json with --watch or --count",
        ));
    }
    let config = load(cli, ctx)?;
    let style = Style::choose(
        cli.format == Format::Json,
        std::io::stdout().is_terminal(),
        (ctx.env)("NO_COLOR").as_deref(),
    );
    let runtime = runtime()?;
    interrupt::catch();
    runtime.block_on(watch(&config.targets, args, style))
}

/// One target's way of being refreshed.
enum Slot<'a> {
    Watched(Box<Watcher<'a>>),
    /// What `status` shows, with why it is not more.
    Status(&'a Target, Option<&'static str>),
}

impl Slot<'_> {
    async fn refresh(&mut self) -> TargetView {
        match self {
            Slot::Watched(w) => TargetView::Watched(w.refresh().await),
            Slot::Status(t, note) => TargetView::Status(StatusLine {
                watched: false,
                note: note.map(str::to_string),
                health: probe(t, TIMEOUT).await,
            }),
        }
    }
}

async fn watch(targets: &[Target], args: &StatusArgs, style: Style) -> Result<(), Error> {
    let mut slots: Vec<Slot> = targets
        .iter()
        .map(|t| match Watcher::new(t, TIMEOUT) {
            Ok(w) => Slot::Watched(Box::new(w)),
            Err(note) => Slot::Status(t, note),
        })
        .collect();
    let interval = Duration::from_secs_f64(args.interval);
    let mut next = tokio::time::Instant::now();
    let mut refresh = 0;
    let result = loop {
        // Targets are read side by side: one that is down costs its
        // timeout once per refresh, not once per target after it.
        let refreshing = join_all(
            slots
                .iter_mut()
                .map(|s| Box::pin(s.refresh()) as Pending<'_, TargetView>)
                .collect(),
        );
        let views = tokio::select! {
            views = refreshing => views,
            () = interrupt::requested() => break Ok(()),
        };
        refresh += 1;
        let frame = Frame {
            time: utc(SystemTime::now()),
            refresh,
            count: args.count,
            interval_secs: args.interval,
            targets: views,
        };
        match write(&view::render(&frame, style, refresh == 1)) {
            Ok(true) => {}
            // The reader went away (`| head`): nothing left to show.
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
        if args.count.is_some_and(|n| refresh >= n) {
            break Ok(());
        }
        // Start to start, so the figures are per interval; after a refresh
        // slower than the interval, the next starts at once rather than
        // trying to catch up.
        next = (next + interval).max(tokio::time::Instant::now());
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = interrupt::requested() => break Ok(()),
        }
    };
    // A second Ctrl-C while the sessions say goodbye ends the process at once.
    interrupt::release();
    for slot in &mut slots {
        if let Slot::Watched(w) = slot {
            w.close().await;
        }
    }
    result
}

/// Writes one refresh in one piece; false when stdout's reader is gone.
fn write(text: &str) -> Result<bool, Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::message(format!("cannot write to stdout: {e}"))),
    }
}

type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Runs the futures side by side on this thread and returns their outputs
/// in order (the runtime is single-threaded, and the futures borrow).
async fn join_all<T>(mut futures: Vec<Pending<'_, T>>) -> Vec<T> {
    let mut done: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in futures.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    done.into_iter()
        .map(|v| v.expect("every future ended"))
        .collect()
}

/// Ctrl-C ends the watch between two writes, with exit 0: the frame on the
/// screen stays whole, and the sessions end with a Terminate instead of a
/// reset in PgBouncer's log.
mod interrupt {
    use super::*;
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

    static REQUESTED: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_interrupt(_: nix::libc::c_int) {
        // Only an atomic store: all a signal handler may safely do.
        REQUESTED.store(true, Ordering::SeqCst);
    }

    fn set(handler: SigHandler) {
        let action = SigAction::new(handler, SaFlags::SA_RESTART, SigSet::empty());
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; no other code of poolwright handles SIGINT.
        let _ = unsafe { sigaction(Signal::SIGINT, &action) };
    }

    pub fn catch() {
        set(SigHandler::Handler(on_interrupt));
    }

    pub fn release() {
        set(SigHandler::SigDfl);
    }

    /// Ends when Ctrl-C was pressed. Polled: a signal handler cannot wake
    /// a future, and 50 ms is quicker than a person notices.
    pub async fn requested() {
        while !REQUESTED.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
