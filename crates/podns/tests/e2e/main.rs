//! End-to-end tests: the real `podns` binary on an ephemeral loopback port, asked with real
//! `dig` (bind9-dnsutils; `scripts/test` installs it when missing, and these tests fail rather
//! than skip without it).
//!
//! - `seeds`: every dig output in the seed texts, reproduced on the matching `examples/` folder.
//! - `spec`: the DNS spec's rules as a resolver sees them, over UDP and TCP.
//! - `reload`: manifests edited under a running server; a broken edit keeps the last good zone.
//! - `get`: `podns get` shows what the answers come from.
//! - `client`: podns-client and `podns resolve` follow the served zone.
//! - `cluster`: `--kubeconfig` against a fake API server: events, outage, readiness, SIGTERM
//!   (`spec` and `seeds` also run in cluster mode, through the same fake API server).
//! - `config`: the CoreDNS-style options as flags and in a reloaded config file; query metrics.
//! - `baddata`: cluster data DNS cannot use as it is: skipped, logged, the rest answered.
//! - `overload`: offered load above capacity, a bounded soak: load shed, RSS flat, recovery.
//! - `forward`: names outside the zones go to an upstream the test runs on loopback.

mod baddata;
mod client;
mod cluster;
mod config;
mod forward;
mod get;
mod harness;
mod overload;
mod reload;
mod seeds;
mod spec;
