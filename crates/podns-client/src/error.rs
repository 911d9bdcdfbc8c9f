//! Errors of the client library, each saying whether it is retryable and which side caused it.
//!
//! This module owns [`Error`], the one error type of discovery (target parsing, resolver
//! configuration, DNS lookups), and [`CallError`], what [`Balancer::call`](crate::Balancer::call)
//! returns around the caller's own error type. Whether an *application* error is retryable is
//! decided by the [`Classify`](crate::Classify) trait in [`retry`](crate::retry).

use std::fmt;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which side caused an error (as pingora's `ErrorSource`): the caller's input or configuration,
/// or the network and the DNS server behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The caller's input or configuration: retrying the same thing cannot help.
    Local,
    /// The network or a remote server: the same request may succeed later.
    Remote,
}

/// An error of discovery: parsing a target, configuring the resolver, or a DNS lookup.
///
/// NXDOMAIN and NODATA are *not* errors: they are answers ([`Resolution::exists`] is false, or the
/// endpoint list is empty). An `Error` from a lookup means the answer is unknown, and discovery
/// keeps serving the last good endpoint set.
///
/// [`Resolution::exists`]: crate::Resolution::exists
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The target string could not be parsed as `host`, `host:port`, `[v6]:port` or an SRV name
    /// (`_port._proto.service...`).
    #[error("invalid target {target:?}: {reason}")]
    InvalidTarget {
        /// The string as given.
        target: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A search domain given to [`ResolverBuilder::search`](crate::ResolverBuilder::search) is not
    /// a valid domain name.
    #[error("invalid search domain {domain:?}: {reason}")]
    InvalidSearchDomain {
        /// The domain as given.
        domain: String,
        /// Why the DNS library rejected it.
        reason: String,
    },

    /// The system resolver configuration (`/etc/resolv.conf`) could not be read or has no
    /// nameserver.
    #[error("reading the system resolver configuration (/etc/resolv.conf): {reason}")]
    SystemConfig {
        /// The underlying error, as text.
        reason: String,
    },

    /// A DNS lookup failed without an answer: timeout, SERVFAIL, REFUSED, a connection error,
    /// a truncated answer even over TCP.
    #[error("DNS lookup of {name} {rtype} failed: {reason}")]
    Lookup {
        /// The fully qualified name queried.
        name: String,
        /// The record type queried (`A`, `AAAA`, `SRV`).
        rtype: &'static str,
        /// The resolver's error, as text.
        reason: String,
    },

    /// The resolver has no nameserver to send the query to (an empty `/etc/resolv.conf`).
    #[error("no nameserver configured")]
    NoNameserver,
}

// === impl Error ===

impl Error {
    /// Whether the same operation may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        self.side() == Side::Remote
    }

    /// Which side caused the error.
    pub fn side(&self) -> Side {
        match self {
            Self::Lookup { .. } => Side::Remote,
            Self::InvalidTarget { .. }
            | Self::InvalidSearchDomain { .. }
            | Self::SystemConfig { .. }
            | Self::NoNameserver => Side::Local,
        }
    }
}

/// What [`Balancer::call`](crate::Balancer::call) returns when no attempt succeeded.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// There was no endpoint to try: discovery has not resolved yet (within the balancer's ready
    /// timeout), the service does not exist (NXDOMAIN), or the policy found no endpoint for the
    /// route (e.g. a write with no ordinal-0 endpoint, which needs SRV discovery to know
    /// hostnames). Retryable: the endpoint set may fill in.
    #[error("no endpoint available ({reason})")]
    NoEndpoints {
        /// Why no endpoint could be tried.
        reason: NoEndpointsReason,
    },

    /// Every attempt failed; `error` is the last one. Attempts stop at the first non-retryable
    /// error, at [`RetryPolicy::max_attempts`](crate::RetryPolicy::max_attempts), when the
    /// candidates run out, or when the retry budget is spent.
    #[error("{attempts} attempt(s) failed, last error: {error}")]
    Failed {
        /// The error of the last attempt.
        error: E,
        /// How many attempts were made (at least 1).
        attempts: u32,
        /// Why the retries stopped.
        stopped: StopReason,
    },
}

/// Why [`CallError::NoEndpoints`] happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoEndpointsReason {
    /// Discovery had no answer yet when the ready timeout passed.
    NotResolved,
    /// The service name does not exist (NXDOMAIN), or exists with no addresses (NODATA).
    NoService,
    /// The set is not empty, but the policy has no candidate for this route.
    NoCandidate,
}

/// Why [`Balancer::call`](crate::Balancer::call) stopped retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The last error was not retryable.
    NotRetryable,
    /// [`RetryPolicy::max_attempts`](crate::RetryPolicy::max_attempts) attempts were made.
    MaxAttempts,
    /// The policy had no further candidate (every endpoint was tried or is ejected).
    NoMoreCandidates,
    /// The retry budget did not allow another retry.
    BudgetExhausted,
}

// === impl CallError ===

impl<E> CallError<E> {
    /// The last application error, if an attempt was made.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::NoEndpoints { .. } => None,
            Self::Failed { error, .. } => Some(error),
        }
    }
}

impl fmt::Display for NoEndpointsReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotResolved => "discovery has not resolved the target yet",
            Self::NoService => "the service has no endpoints (NXDOMAIN or no addresses)",
            Self::NoCandidate => "the policy has no endpoint for this route",
        })
    }
}
