//! Noticing that the config file changed: polled by content, and forced by SIGHUP.
//!
//! Polling rather than inotify because a Kubernetes ConfigMap volume updates by swapping a
//! symlink (`..data`) in the mount's parent: watching the file itself misses it, watching the
//! folder reports the kubelet's intermediate steps. Comparing the bytes once a second is
//! cheap, sees every kind of update, and never reports a change that is not one.

use std::path::PathBuf;
use std::time::Duration;

/// How often the config file is re-read to look for a change.
const POLL: Duration = Duration::from_secs(1);

/// The config file being followed (nothing when podns runs without one).
pub(super) struct ConfigWatch {
    path: Option<PathBuf>,
    last: Option<Vec<u8>>,
    forced: bool,
    // An interval, not a sleep per call: `changed` is cancelled whenever another select!
    // branch fires, and an interval keeps its deadline across those cancellations.
    poll: tokio::time::Interval,
}

impl ConfigWatch {
    pub(super) fn new(path: Option<PathBuf>) -> Self {
        let last = path.as_ref().and_then(|p| std::fs::read(p).ok());
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            path,
            last,
            forced: false,
            poll,
        }
    }

    /// Makes the next [`Self::changed`] resolve at once (SIGHUP).
    pub(super) fn force(&mut self) {
        self.forced = true;
    }

    /// Resolves when the file's content differs from the last one seen, or when forced.
    /// Never resolves without a config file, unless forced.
    pub(super) async fn changed(&mut self) {
        loop {
            if std::mem::take(&mut self.forced) {
                self.last = self.path.as_ref().and_then(|p| std::fs::read(p).ok());
                return;
            }
            self.poll.tick().await;
            let Some(path) = &self.path else { continue };
            // A file that is briefly missing mid-update is not a change; its return is.
            if let Ok(now) = std::fs::read(path)
                && self.last.as_deref() != Some(now.as_slice())
            {
                self.last = Some(now);
                return;
            }
        }
    }
}

/// SIGHUP, as a stream of `()`.
pub(super) struct Hangup(#[cfg(unix)] tokio::signal::unix::Signal);

impl Hangup {
    pub(super) async fn recv(&mut self) -> Option<()> {
        #[cfg(unix)]
        return self.0.recv().await;
        #[cfg(not(unix))]
        std::future::pending().await
    }
}

pub(super) fn hangup() -> anyhow::Result<Hangup> {
    #[cfg(unix)]
    return Ok(Hangup(tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::hangup(),
    )?));
    #[cfg(not(unix))]
    Ok(Hangup())
}
