//! Resolving a target once: A/AAAA/SRV lookups through `hickory-resolver`.
//!
//! This module owns [`Resolver`] (a configured `hickory-resolver` plus the search list) and
//! [`Resolution`] (one answer: endpoints, TTL, whether the name exists). It is responsible for
//! the resolv.conf search-list rules, for telling "no such name" from "no answer", and for
//! turning SRV records into [`Endpoint`]s with hostnames and ordinals. Watching a target over
//! time belongs to [`discover`](crate::discover).
//!
//! # Why the search list is applied here
//!
//! hickory's own search-list walk moves on to the next candidate name after *any* error, so a
//! timeout on `redis-headless.default.svc.cluster.local.` followed by NXDOMAIN for the bare
//! `redis-headless.` would report NXDOMAIN, and discovery would empty a healthy set. This module
//! builds the candidate names itself (same rules as glibc: `ndots`, then each search domain) and
//! gives hickory only fully qualified names:
//!
//! - NXDOMAIN for a candidate → try the next one;
//! - NODATA (the name exists, no record of this type) → remember it, try the next one;
//! - any other failure → the whole resolution fails ([`Error::Lookup`]) and the caller keeps its
//!   last good answer.
//!
//! A+AAAA are asked separately for the same name (hickory's dual-stack lookup hides a failed
//! half), and hickory's response cache is off: discovery decides when to ask again.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

use crate::endpoint::pod_hostname;
use crate::{Endpoint, Error, LookupKind, Result, Target};

/// At most this many SRV targets are resolved at once when the answer carries no addresses in
/// its additional section.
const TARGET_LOOKUP_CONCURRENCY: usize = 16;

/// One answer for a [`Target`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The endpoints, in answer order (an [`EndpointSet`](crate::EndpointSet) sorts them).
    pub endpoints: Vec<Endpoint>,
    /// The smallest TTL of the records used, or for a negative answer the SOA's negative TTL;
    /// `None` when the answer has no TTL (an IP literal, a negative answer without SOA).
    pub ttl: Option<Duration>,
    /// `false` for NXDOMAIN at every candidate name: the service does not exist or, being
    /// headless, has no ready endpoint. `true` otherwise, including NODATA (empty endpoints).
    pub exists: bool,
    /// The fully qualified name that answered (the last candidate tried for negative answers).
    pub name: String,
}

/// A DNS resolver for targets: `hickory-resolver` with the system or a given nameserver.
///
/// Cheap to clone; clones share connections.
///
/// ```no_run
/// # async fn run() -> podns_client::Result<()> {
/// use podns_client::{Resolver, Target};
/// // As a pod does: /etc/resolv.conf's nameservers, search list and ndots.
/// let resolver = Resolver::system()?;
/// // Or a given server, with the search list of a pod in namespace `default`.
/// let resolver = Resolver::builder()
///     .server("127.0.0.1:5353".parse().unwrap())
///     .pod_search("default", "cluster.local")
///     .build()?;
/// let answer = resolver.resolve(&Target::parse("redis-headless:6379")?).await?;
/// for endpoint in &answer.endpoints {
///     println!("{endpoint}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Resolver {
    /// hickory, configured with the nameservers only (no search list, no cache).
    inner: TokioResolver,
    /// Search domains, fully qualified, in order.
    search: Arc<[Name]>,
    /// resolv.conf `ndots`: names with at least this many dots are tried as-is first.
    ndots: usize,
}

/// Configures a [`Resolver`].
#[derive(Clone, Debug, Default)]
pub struct ResolverBuilder {
    /// A nameserver to use instead of the system's.
    server: Option<SocketAddr>,
    /// Search domains replacing the system's (or the empty list of a given server).
    search: Option<Vec<String>>,
    /// `ndots` replacing the system's (or 1 for a given server).
    ndots: Option<usize>,
    /// Per-query timeout.
    timeout: Option<Duration>,
    /// Attempts per query.
    attempts: Option<usize>,
}

// === impl ResolverBuilder ===

impl ResolverBuilder {
    /// Sends queries to this server (UDP, retried over TCP when the answer is truncated) instead
    /// of the nameservers of `/etc/resolv.conf`. The system search list is then *not* used;
    /// set one with [`search`](Self::search) or [`pod_search`](Self::pod_search).
    #[must_use]
    pub fn server(mut self, addr: SocketAddr) -> Self {
        self.server = Some(addr);
        self
    }

    /// Uses these search domains for relative names.
    #[must_use]
    pub fn search<I, S>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.search = Some(domains.into_iter().map(Into::into).collect());
        self
    }

    /// Uses the search list and `ndots` the kubelet writes into a pod's resolv.conf:
    /// `<namespace>.svc.<zone> svc.<zone> <zone>`, `ndots:5`.
    #[must_use]
    pub fn pod_search(self, namespace: &str, zone: &str) -> Self {
        let zone = zone.trim_end_matches('.');
        self.search([
            format!("{namespace}.svc.{zone}"),
            format!("svc.{zone}"),
            zone.to_owned(),
        ])
        .ndots(5)
    }

    /// Sets resolv.conf's `ndots`.
    #[must_use]
    pub fn ndots(mut self, ndots: usize) -> Self {
        self.ndots = Some(ndots);
        self
    }

    /// Sets the timeout of one query (default: resolv.conf's, or hickory's 5 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets how many times one query is tried (default: resolv.conf's, or hickory's 2).
    #[must_use]
    pub fn attempts(mut self, attempts: usize) -> Self {
        self.attempts = Some(attempts);
        self
    }

    /// Builds the resolver. Reads `/etc/resolv.conf` unless a [`server`](Self::server) is given.
    pub fn build(self) -> Result<Resolver> {
        let (servers, mut search, mut opts) =
            match self.server {
                None => {
                    let (config, opts) = hickory_resolver::system_conf::read_system_conf()
                        .map_err(|e| Error::SystemConfig {
                            reason: e.to_string(),
                        })?;
                    let mut search = config.search().to_vec();
                    if search.is_empty()
                        && let Some(domain) = config.domain()
                    {
                        search.push(domain.clone());
                    }
                    (config.name_servers().to_vec(), search, opts)
                }
                Some(addr) => {
                    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                    for connection in &mut server.connections {
                        connection.port = addr.port();
                    }
                    let mut opts = ResolverOpts::default();
                    opts.ndots = 1;
                    opts.use_hosts_file = ResolveHosts::Never;
                    (vec![server], Vec::new(), opts)
                }
            };
        if servers.is_empty() {
            return Err(Error::NoNameserver);
        }
        if let Some(domains) = self.search {
            search = domains
                .iter()
                .map(|d| {
                    Name::from_ascii(d).map_err(|e| Error::InvalidSearchDomain {
                        domain: d.clone(),
                        reason: e.to_string(),
                    })
                })
                .collect::<Result<_>>()?;
        }
        for name in &mut search {
            name.set_fqdn(true);
        }
        if let Some(ndots) = self.ndots {
            opts.ndots = ndots;
        }
        if let Some(timeout) = self.timeout {
            opts.timeout = timeout;
        }
        if let Some(attempts) = self.attempts {
            opts.attempts = attempts;
        }
        let ndots = opts.ndots;
        // Discovery schedules its own refreshes from the TTL; a cache would hand back the answer
        // it is trying to replace (e.g. right after a connection failure).
        opts.cache_size = 0;
        let inner = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .build()
        .map_err(|e| Error::SystemConfig {
            reason: e.to_string(),
        })?;
        Ok(Resolver {
            inner,
            search: search.into(),
            ndots,
        })
    }
}

// === impl Resolver ===

impl Resolver {
    /// A resolver configured from `/etc/resolv.conf` (nameservers, search list, `ndots`).
    pub fn system() -> Result<Self> {
        Self::builder().build()
    }

    /// A builder, to give a server, search list or timeouts.
    pub fn builder() -> ResolverBuilder {
        ResolverBuilder::default()
    }

    /// The search domains, in order, fully qualified.
    pub fn search_domains(&self) -> Vec<String> {
        self.search.iter().map(Name::to_ascii).collect()
    }

    /// resolv.conf `ndots`.
    pub fn ndots(&self) -> usize {
        self.ndots
    }

    /// Resolves a target once.
    ///
    /// NXDOMAIN and NODATA are answers (`Ok`, see [`Resolution::exists`]); `Err` means no answer
    /// (timeout, SERVFAIL, REFUSED, network) and is [retryable](Error::is_retryable).
    pub async fn resolve(&self, target: &Target) -> Result<Resolution> {
        if let Some(ip) = target.literal_ip() {
            return Ok(Resolution {
                endpoints: vec![Endpoint::new(SocketAddr::new(
                    ip,
                    target.port().unwrap_or(0),
                ))],
                ttl: None,
                exists: true,
                name: ip.to_string(),
            });
        }
        let names = candidate_names(target.name(), &self.search, self.ndots)?;
        let mut negative = Negative::default();
        for name in &names {
            let found = match target.kind() {
                LookupKind::Srv => self.resolve_srv(name, target.port()).await?,
                kind => self.resolve_addrs(name, kind, target.port()).await?,
            };
            match found {
                Found::Answer(resolution) => return Ok(resolution),
                Found::Negative { exists, ttl } => negative.add(exists, ttl),
            }
        }
        let last = names.last().map(Name::to_ascii).unwrap_or_default();
        Ok(Resolution {
            endpoints: Vec::new(),
            ttl: negative.ttl.map(|s| Duration::from_secs(u64::from(s))),
            exists: negative.exists,
            name: last,
        })
    }

    /// A, AAAA or both at one fully qualified name.
    async fn resolve_addrs(
        &self,
        name: &Name,
        kind: LookupKind,
        port: Option<u16>,
    ) -> Result<Found> {
        let answers = self.addresses(name, kind).await?;
        let port = port.unwrap_or(0);
        Ok(match answers {
            Addresses::Some { ips, ttl } => Found::Answer(Resolution {
                endpoints: ips
                    .into_iter()
                    .map(|ip| Endpoint::new(SocketAddr::new(ip, port)))
                    .collect(),
                ttl: Some(Duration::from_secs(u64::from(ttl))),
                exists: true,
                name: name.to_ascii(),
            }),
            Addresses::None { exists, ttl } => Found::Negative { exists, ttl },
        })
    }

    /// The addresses of one fully qualified name, asking both families for [`LookupKind::Ip`]
    /// and [`LookupKind::Srv`] targets.
    async fn addresses(&self, name: &Name, kind: LookupKind) -> Result<Addresses> {
        let types: &[RecordType] = match kind {
            LookupKind::A => &[RecordType::A],
            LookupKind::Aaaa => &[RecordType::AAAA],
            LookupKind::Ip | LookupKind::Srv => &[RecordType::A, RecordType::AAAA],
        };
        let answers = futures_util::future::join_all(types.iter().map(|t| self.query(name, *t)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        let mut ips = Vec::new();
        let mut ttl: Option<u32> = None;
        let mut negative = Negative::default();
        for answer in answers {
            match answer {
                Answer::Records { answers, .. } => {
                    for record in &answers {
                        ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
                        if let Some(ip) = record.data.ip_addr() {
                            ips.push(ip);
                        }
                    }
                }
                Answer::NoData { ttl } => negative.add(true, ttl),
                Answer::NxDomain { ttl } => negative.add(false, ttl),
            }
        }
        Ok(if ips.is_empty() {
            Addresses::None {
                exists: negative.exists,
                ttl: negative.ttl,
            }
        } else {
            Addresses::Some {
                ips,
                ttl: ttl.unwrap_or(0),
            }
        })
    }

    /// SRV at one fully qualified name, then the targets' addresses.
    async fn resolve_srv(&self, name: &Name, port: Option<u16>) -> Result<Found> {
        let (records, additionals) = match self.query(name, RecordType::SRV).await? {
            Answer::Records {
                answers,
                additionals,
            } => (answers, additionals),
            Answer::NoData { ttl } => return Ok(Found::Negative { exists: true, ttl }),
            Answer::NxDomain { ttl } => return Ok(Found::Negative { exists: false, ttl }),
        };
        let service = service_of(name);
        let mut ttl = u32::MAX;
        let mut srvs = Vec::new();
        for record in &records {
            ttl = ttl.min(record.ttl);
            if let RData::SRV(srv) = &record.data
                && port.is_none_or(|p| p == srv.port)
            {
                srvs.push(srv.clone());
            }
        }
        // Addresses of the targets: the additional section when the server sent them (CoreDNS
        // and podns do), else one A+AAAA lookup per distinct target.
        let mut glue: HashMap<Name, Vec<IpAddr>> = HashMap::new();
        for record in &additionals {
            if let Some(ip) = record.data.ip_addr() {
                ttl = ttl.min(record.ttl);
                glue.entry(record.name.to_lowercase()).or_default().push(ip);
            }
        }
        let missing: Vec<Name> = {
            let mut seen = std::collections::HashSet::new();
            srvs.iter()
                .map(|s| s.target.to_lowercase())
                .filter(|t| !glue.contains_key(t) && seen.insert(t.clone()))
                .collect()
        };
        let looked_up: Vec<(Name, Result<Addresses>)> = futures_util::stream::iter(missing)
            .map(|target| async move {
                let found = self.addresses(&target, LookupKind::Srv).await;
                (target, found)
            })
            .buffer_unordered(TARGET_LOOKUP_CONCURRENCY)
            .collect()
            .await;
        for (target, found) in looked_up {
            match found? {
                Addresses::Some { ips, ttl: t } => {
                    ttl = ttl.min(t);
                    glue.insert(target, ips);
                }
                // A target that vanished between the SRV and its address lookup: skip it.
                Addresses::None { .. } => {}
            }
        }
        let mut endpoints = Vec::new();
        for srv in &srvs {
            let target = srv.target.to_lowercase();
            let Some(ips) = glue.get(&target) else {
                continue;
            };
            let target_text = srv.target.to_ascii();
            let hostname = pod_hostname(&target_text, &service);
            for ip in ips {
                let mut endpoint = Endpoint::new(SocketAddr::new(*ip, srv.port))
                    .with_srv(srv.priority, srv.weight);
                if let Some(hostname) = hostname {
                    endpoint = endpoint.with_hostname(&hostname.to_ascii_lowercase());
                }
                endpoints.push(endpoint);
            }
        }
        Ok(Found::Answer(Resolution {
            endpoints,
            ttl: Some(Duration::from_secs(u64::from(ttl.min(u32::MAX - 1)))),
            exists: true,
            name: name.to_ascii(),
        }))
    }

    /// One query for a fully qualified name.
    async fn query(&self, name: &Name, rtype: RecordType) -> Result<Answer> {
        match self.inner.lookup(name.clone(), rtype).await {
            Ok(lookup) => {
                let answers: Vec<Record> = lookup.answers().to_vec();
                if !answers.iter().any(|r| r.record_type() == rtype) {
                    // Only a CNAME (or nothing) for this type: the name exists, no data.
                    return Ok(Answer::NoData { ttl: None });
                }
                Ok(Answer::Records {
                    answers,
                    additionals: lookup.additionals().to_vec(),
                })
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(no_records))) => {
                let ttl = no_records.negative_ttl;
                if no_records.response_code == ResponseCode::NXDomain {
                    Ok(Answer::NxDomain { ttl })
                } else {
                    Ok(Answer::NoData { ttl })
                }
            }
            Err(e) => Err(Error::Lookup {
                name: name.to_ascii(),
                rtype: rtype_str(rtype),
                reason: e.to_string(),
            }),
        }
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("search", &self.search_domains())
            .field("ndots", &self.ndots)
            .finish_non_exhaustive()
    }
}

/// The fully qualified names to try for `name`, in order (resolv.conf(5) rules): an absolute
/// name (trailing dot) only as-is; a name with at least `ndots` dots as-is first, then with each
/// search domain; otherwise with each search domain, then as-is.
pub fn candidate_names(name: &str, search: &[Name], ndots: usize) -> Result<Vec<Name>> {
    let invalid = |e: hickory_resolver::proto::ProtoError| Error::InvalidTarget {
        target: name.to_owned(),
        reason: if e.to_string().contains("too long") {
            "name too long"
        } else {
            "not a valid domain name"
        },
    };
    let mut base = Name::from_ascii(name).map_err(invalid)?;
    if name.ends_with('.') {
        base.set_fqdn(true);
        return Ok(vec![base]);
    }
    let mut absolute = base.clone();
    absolute.set_fqdn(true);
    let dots = name.bytes().filter(|b| *b == b'.').count();
    let mut out = Vec::with_capacity(search.len() + 1);
    if dots >= ndots {
        out.push(absolute.clone());
    }
    for domain in search {
        // A name too long with this suffix is skipped, as glibc does.
        if let Ok(mut full) = base.clone().append_domain(domain) {
            full.set_fqdn(true);
            if !out.contains(&full) {
                out.push(full);
            }
        }
    }
    if dots < ndots && !out.contains(&absolute) {
        out.push(absolute);
    }
    Ok(out)
}

/// The service name an SRV name belongs to: the name without its leading `_port._proto` labels.
fn service_of(name: &Name) -> String {
    let text = name.to_ascii();
    let mut rest = text.as_str();
    while let Some(stripped) = rest.strip_prefix('_') {
        match stripped.split_once('.') {
            Some((_, tail)) => rest = tail,
            None => break,
        }
    }
    rest.to_owned()
}

fn rtype_str(rtype: RecordType) -> &'static str {
    match rtype {
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::SRV => "SRV",
        _ => "other",
    }
}

/// One query's answer.
enum Answer {
    /// Records of the asked type (plus any CNAMEs), and the additional section.
    Records {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// NOERROR without records of the type: the name exists.
    NoData { ttl: Option<u32> },
    /// NXDOMAIN: no such name.
    NxDomain { ttl: Option<u32> },
}

/// The addresses of one name across the asked families.
enum Addresses {
    /// At least one address; the smallest TTL.
    Some { ips: Vec<IpAddr>, ttl: u32 },
    /// No address; whether any family said the name exists.
    None { exists: bool, ttl: Option<u32> },
}

/// What one candidate name gave.
enum Found {
    /// A positive answer: stop searching.
    Answer(Resolution),
    /// A negative answer: go on with the next candidate.
    Negative { exists: bool, ttl: Option<u32> },
}

/// Negative answers seen so far: exists if any was NODATA; the smallest negative TTL.
#[derive(Default)]
struct Negative {
    exists: bool,
    ttl: Option<u32>,
}

impl Negative {
    fn add(&mut self, exists: bool, ttl: Option<u32>) {
        self.exists |= exists;
        if let Some(t) = ttl {
            self.ttl = Some(self.ttl.map_or(t, |s| s.min(t)));
        }
    }
}

#[cfg(test)]
mod tests;
