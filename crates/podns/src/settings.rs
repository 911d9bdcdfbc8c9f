//! The effective configuration: command-line flags over the config file over defaults.
//!
//! This module owns what `podns serve --config FILE` reads and how it combines with flags.
//! Everything here can change while podns runs (the file is watched; SIGHUP re-reads it): the
//! zone's options, the view filters and forwarding. A flag given on the command line always
//! wins over the file, so an operator's explicit `--ttl 5` is never undone by a reload. The
//! file's keys and their CoreDNS equivalents are documented in `docs/configuration.md`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::cli::ClusterArgs;

/// The config file (`--config`), as written; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileConfig {
    zones: Option<Vec<String>>,
    reverse_zones: Option<Vec<String>>,
    ttl: Option<u32>,
    negative_ttl: Option<u32>,
    pods: Option<String>,
    endpoint_pod_names: Option<bool>,
    no_endpoints: Option<bool>,
    namespaces: Option<Vec<String>>,
    labels: Option<String>,
    fallthrough: Option<Vec<String>>,
    forward: Option<FileForward>,
}

/// The `forward:` section of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileForward {
    upstreams: Option<Vec<String>>,
    timeout_ms: Option<u64>,
    cache_entries: Option<usize>,
    max_ttl: Option<u64>,
    max_negative_ttl: Option<u64>,
    max_concurrent: Option<usize>,
}

impl FileConfig {
    /// Reads and parses `path`; errors name the file and the offending key.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        let value: serde_json::Value = serde_saphyr::from_str(&text)
            .map_err(|err| anyhow::anyhow!("{}: not YAML: {err}", path.display()))?;
        // An empty file is an empty configuration.
        let value = if value.is_null() {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            value
        };
        serde_path_to_error::deserialize(value)
            .map_err(|err| anyhow::anyhow!("{}: {}: {}", path.display(), err.path(), err.inner()))
    }
}

/// Where forwarded queries go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Upstreams {
    /// Forwarding is off: names outside the served zones are REFUSED.
    None,
    /// The `nameserver` lines of a resolv.conf file, read at start and on every reload.
    ResolvConf(PathBuf),
    /// These servers.
    Servers(Vec<SocketAddr>),
}

impl Upstreams {
    /// Parses `--upstream` values: `none`, a path (contains `/`), or `IP[:PORT]`s.
    pub(crate) fn parse(values: &[String]) -> anyhow::Result<Self> {
        if values.iter().any(|v| v == "none") {
            if values.len() > 1 {
                bail!("upstream `none` cannot be combined with other upstreams");
            }
            return Ok(Self::None);
        }
        if let [path] = values
            && path.contains('/')
        {
            return Ok(Self::ResolvConf(PathBuf::from(path)));
        }
        let mut servers = Vec::with_capacity(values.len());
        for value in values {
            let server = if let Ok(addr) = value.parse::<SocketAddr>() {
                addr
            } else if let Ok(ip) = value.parse::<IpAddr>() {
                SocketAddr::new(ip, 53)
            } else {
                bail!(
                    "upstream {value:?} is neither `none`, a resolv.conf path, nor IP[:PORT] \
                     (IPv6 with a port as [::1]:53)"
                );
            };
            servers.push(server);
        }
        if servers.is_empty() {
            return Ok(Self::None);
        }
        Ok(Self::Servers(servers))
    }

    /// The servers to use now (reads a resolv.conf); empty means forwarding is off.
    pub(crate) fn resolve(&self) -> anyhow::Result<Vec<SocketAddr>> {
        match self {
            Self::None => Ok(Vec::new()),
            Self::Servers(servers) => Ok(servers.clone()),
            Self::ResolvConf(path) => Ok(podns_forward::resolv_conf_upstreams(path)?),
        }
    }
}

/// Where upstreams come from when nothing says otherwise (CoreDNS `forward . /etc/resolv.conf`).
const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

/// The upstreams used when neither a flag nor the config file names any.
pub(crate) fn default_upstreams() -> Upstreams {
    Upstreams::ResolvConf(PathBuf::from(DEFAULT_RESOLV_CONF))
}

/// Forwarding settings (`forward:` / `--upstream`, `--forward-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ForwardSettings {
    pub(crate) upstreams: Upstreams,
    pub(crate) timeout: Duration,
    pub(crate) cache_entries: usize,
    pub(crate) max_ttl: Duration,
    pub(crate) max_negative_ttl: Duration,
    pub(crate) max_concurrent: usize,
}

impl ForwardSettings {
    /// The forwarder's configuration, or `None` when forwarding is off.
    pub(crate) fn forward_config(
        &self,
        listen: Option<SocketAddr>,
    ) -> anyhow::Result<Option<podns_forward::ForwardConfig>> {
        let upstreams = self.upstreams.resolve()?;
        if upstreams.is_empty() {
            return Ok(None);
        }
        if let Some(listen) = listen
            && let Some(own) = upstreams.iter().find(|u| is_self(**u, listen))
        {
            bail!(
                "upstream {own} is podns itself ({listen}): forwarding would loop \
                 (give --upstream, or run podns with dnsPolicy: Default)"
            );
        }
        Ok(Some(podns_forward::ForwardConfig {
            upstreams,
            timeout: self.timeout,
            cache_capacity: self.cache_entries,
            max_ttl: self.max_ttl,
            max_negative_ttl: self.max_negative_ttl,
            max_in_flight: self.max_concurrent,
            ..podns_forward::ForwardConfig::default()
        }))
    }
}

/// Whether `upstream` is the address podns itself answers on.
fn is_self(upstream: SocketAddr, listen: SocketAddr) -> bool {
    upstream.port() == listen.port()
        && (upstream.ip() == listen.ip()
            || (listen.ip().is_unspecified() && upstream.ip().is_loopback()))
}

/// Everything a reload may change, resolved.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) zone: podns_zone::ZoneConfig,
    pub(crate) view: podns_cluster::ViewConfig,
    pub(crate) controller: podns_cluster::ControllerConfig,
    pub(crate) forward: ForwardSettings,
}

impl Settings {
    /// Combines `flags` over `file` (if any) over the defaults, and validates the result.
    pub(crate) fn resolve(
        flags: &ClusterArgs,
        file: Option<&FileConfig>,
        listen: Option<SocketAddr>,
    ) -> anyhow::Result<Self> {
        let empty = FileConfig::default();
        let file = file.unwrap_or(&empty);
        let file_forward = file.forward.as_ref();
        let defaults = podns_zone::ZoneConfig::default();

        let mut nameservers = flags.nameserver_ips.clone();
        if nameservers.is_empty() {
            nameservers.extend(listen.map(|a| a.ip()).filter(|ip| !ip.is_unspecified()));
        }
        let cluster_domains = pick(&flags.cluster_domains, &file.zones)
            .map(|zones| {
                zones
                    .iter()
                    .map(|z| z.trim_end_matches('.').to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or(defaults.cluster_domains.clone());
        let pods = match pick(&flags.pods, &file.pods).map(String::as_str) {
            None => defaults.pods,
            Some("disabled") => podns_zone::PodMode::Disabled,
            Some("insecure") => podns_zone::PodMode::Insecure,
            Some("verified") => podns_zone::PodMode::Verified,
            Some(other) => bail!("pods: {other:?} is not disabled, insecure or verified"),
        };
        let fallthrough = match pick(&flags.fallthrough, &file.fallthrough) {
            None => defaults.fallthrough.clone(),
            // A bare `--fallthrough` falls through for every zone, as CoreDNS's bare option.
            Some(zones) if zones.is_empty() && flags.fallthrough.is_some() => vec![".".to_owned()],
            Some(zones) if zones.iter().any(|z| z == "none") => Vec::new(),
            Some(zones) => zones.clone(),
        };
        let zone = podns_zone::ZoneConfig {
            cluster_domains,
            reverse_zones: pick(&flags.reverse_zones, &file.reverse_zones)
                .cloned()
                .unwrap_or(defaults.reverse_zones.clone()),
            ttl: pick(&flags.ttl, &file.ttl).copied().unwrap_or(defaults.ttl),
            negative_ttl: pick(&flags.negative_ttl, &file.negative_ttl)
                .copied()
                .unwrap_or(defaults.negative_ttl),
            nameservers,
            pods,
            endpoint_pod_names: pick(&flags.endpoint_pod_names, &file.endpoint_pod_names)
                .copied()
                .unwrap_or(defaults.endpoint_pod_names),
            no_endpoints: pick(&flags.no_endpoints, &file.no_endpoints)
                .copied()
                .unwrap_or(defaults.no_endpoints),
            fallthrough,
        };
        zone.validate().context("zone configuration")?;

        let labels = pick(&flags.labels, &file.labels);
        let view = podns_cluster::ViewConfig {
            namespaces: pick(&flags.namespaces, &file.namespaces)
                .map(|ns| ns.iter().cloned().collect())
                .unwrap_or_default(),
            labels: labels
                .filter(|l| !l.trim().is_empty())
                .map(|l| podns_cluster::LabelSelector::parse(l))
                .transpose()
                .context("labels")?,
            ..podns_cluster::ViewConfig::default()
        };

        let upstream_values = match (
            &flags.upstreams,
            file_forward.and_then(|f| f.upstreams.as_ref()),
        ) {
            (Some(values), _) | (None, Some(values)) => values.clone(),
            (None, None) => vec![DEFAULT_RESOLV_CONF.to_owned()],
        };
        let forward_defaults = podns_forward::ForwardConfig::default();
        let forward = ForwardSettings {
            upstreams: Upstreams::parse(&upstream_values)?,
            timeout: pick(
                &flags.forward_timeout_ms,
                &file_forward.and_then(|f| f.timeout_ms),
            )
            .map_or(forward_defaults.timeout, |ms| Duration::from_millis(*ms)),
            cache_entries: pick(
                &flags.cache_entries,
                &file_forward.and_then(|f| f.cache_entries),
            )
            .copied()
            .unwrap_or(forward_defaults.cache_capacity),
            max_ttl: file_forward
                .and_then(|f| f.max_ttl)
                .map_or(forward_defaults.max_ttl, Duration::from_secs),
            max_negative_ttl: file_forward
                .and_then(|f| f.max_negative_ttl)
                .map_or(forward_defaults.max_negative_ttl, Duration::from_secs),
            max_concurrent: file_forward
                .and_then(|f| f.max_concurrent)
                .unwrap_or(forward_defaults.max_in_flight),
        };

        Ok(Self {
            zone,
            view,
            controller: flags.controller_config(),
            forward,
        })
    }
}

/// The flag's value if given, else the file's.
fn pick<'a, T>(flag: &'a Option<T>, file: &'a Option<T>) -> Option<&'a T> {
    flag.as_ref().or(file.as_ref())
}

/// Parses `5s`, `500ms`, `2m` or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 5s, 500ms, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("{text:?}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn upstreams() {
        assert_eq!(Upstreams::parse(&["none".into()]).unwrap(), Upstreams::None);
        assert_eq!(
            Upstreams::parse(&["/etc/resolv.conf".into()]).unwrap(),
            Upstreams::ResolvConf("/etc/resolv.conf".into())
        );
        assert_eq!(
            Upstreams::parse(&["127.0.0.1".into(), "[::1]:5300".into()]).unwrap(),
            Upstreams::Servers(vec![
                "127.0.0.1:53".parse().unwrap(),
                "[::1]:5300".parse().unwrap()
            ])
        );
        assert!(Upstreams::parse(&["none".into(), "127.0.0.1".into()]).is_err());
        assert!(Upstreams::parse(&["resolver.example".into()]).is_err());
    }

    #[test]
    fn forwarding_to_itself_is_refused() {
        let settings = ForwardSettings {
            upstreams: Upstreams::Servers(vec!["127.0.0.1:53".parse().unwrap()]),
            timeout: Duration::from_secs(2),
            cache_entries: 10,
            max_ttl: Duration::from_secs(30),
            max_negative_ttl: Duration::from_secs(30),
            max_concurrent: 10,
        };
        assert!(
            settings
                .forward_config(Some("0.0.0.0:53".parse().unwrap()))
                .is_err()
        );
        assert!(
            settings
                .forward_config(Some("127.0.0.1:5353".parse().unwrap()))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn file_errors_name_the_file_and_key() {
        let dir = std::env::temp_dir().join(format!("podns-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("podns.yaml");
        std::fs::write(&path, "ttl: 30\nforward:\n  timeoutMs: soon\n").unwrap();
        let err = FileConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("podns.yaml"), "{err}");
        assert!(err.contains("forward.timeoutMs"), "{err}");
        std::fs::write(&path, "ttl: 30\nzonez: [a]\n").unwrap();
        let err = FileConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("zonez"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
