//! Forwarding: queries for names outside the served zones go to upstream resolvers, through a
//! bounded cache (CoreDNS's `forward . /etc/resolv.conf` plus its `cache` plugin).
//!
//! Start from [`Forwarder`]: build it from a [`ForwardConfig`] (upstreams usually from
//! [`resolv_conf_upstreams`]) and call [`Forwarder::forward`] with the client's query bytes
//! and the size the client can take. It always returns a response to send (SERVFAIL when the
//! upstreams fail), never an error, and never panics on upstream bytes.
//!
//! ```text
//!  client query ──▶ Forwarder::forward ──hit──▶ cache ──▶ render (client ID + question, TTL − age, fit)
//!                        │ miss                   ▲
//!                        ▼                        │ insert (RFC 2308 lifetimes, caps)
//!                 in-flight slot (or SERVFAIL)    │
//!                        ▼                        │
//!         upstreams in policy order, healthy first: UDP ──TC──▶ TCP   (fresh ID + socket each)
//!                        │ timeout / error / SERVFAIL / REFUSED / malformed → next upstream
//!                        └──── all attempts failed ──▶ SERVFAIL
//! ```
//!
//! # Layout
//! - [`config`](ForwardConfig): typed configuration, defaults (with CoreDNS's equivalents), resolv.conf.
//! - `forwarder`: the decisions — cache, in-flight bound, upstream order, failover, stats.
//! - `upstream`: one exchange with one upstream, and its health.
//! - `message`: every octet — client query, upstream query, response checks, rendering.
//! - `cache`: LRU bounded by entries and bytes.
//!
//! # Invariants
//! - The client gets back its own ID and question bytes (0x20 case preserved), and an OPT only
//!   if it sent one.
//! - An upstream answer is used only if it matches our random ID and the question; everything
//!   else on the socket is ignored until the attempt's deadline.
//! - No TTL sent is higher than what the cache would still hold the answer for.
//! - Memory is bounded: cache by entries and bytes, upstream work by `max_in_flight`.

mod cache;
mod config;
mod forwarder;
mod message;
mod upstream;

pub use config::{
    DEFAULT_MAX_NEGATIVE_TTL, DEFAULT_MAX_TTL, DEFAULT_TIMEOUT, DEFAULT_UDP_PAYLOAD, ForwardConfig,
    ForwardError, MIN_UDP_PAYLOAD, Policy, Result, resolv_conf_upstreams,
};
pub use forwarder::{ForwardStats, Forwarder, UpstreamStats};
