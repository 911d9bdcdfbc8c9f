//! The process's own metrics, read from `/proc/self` at each scrape: the `process_*` series
//! every Prometheus client library exports (client_golang's names and help, so CoreDNS's
//! dashboards and alerts on memory, CPU and file descriptors work unchanged), and the peak
//! resident memory.
//!
//! Each value is read when it is scraped and left out when it cannot be read (as client_golang
//! does), so a scrape never fails for it. Off Linux there is nothing to export.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Encodes the process series; registered unprefixed, as `process_*` are.
#[derive(Debug)]
pub(super) struct ProcessCollector;

/// One gauge or counter of a scrape: name (a counter's without `_total`), help, type, value.
type Sample = (&'static str, &'static str, MetricType, f64);

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut samples: Vec<Sample> = Vec::with_capacity(8);
        #[cfg(target_os = "linux")]
        linux::read(&mut samples);
        for (name, help, kind, value) in samples {
            let mut e = encoder.encode_descriptor(name, help, None, kind)?;
            match kind {
                MetricType::Counter => e.encode_counter::<NoLabelSet, f64, u64>(&value, None)?,
                _ => e.encode_gauge(&value)?,
            }
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use procfs::process::{LimitValue, Process};

    use super::Sample;
    use prometheus_client::metrics::MetricType;

    /// A limit as client_golang reports it: "unlimited" is the largest `u64`.
    fn limit(value: LimitValue) -> f64 {
        match value {
            LimitValue::Unlimited => u64::MAX as f64,
            LimitValue::Value(v) => v as f64,
        }
    }

    /// Appends what `/proc/self` tells; anything unreadable is left out.
    pub(super) fn read(out: &mut Vec<Sample>) {
        let Ok(me) = Process::myself() else {
            return;
        };
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            out.push((
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                MetricType::Counter,
                (stat.utime + stat.stime) as f64 / ticks,
            ));
            out.push((
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                MetricType::Gauge,
                stat.vsize as f64,
            ));
            out.push((
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                MetricType::Gauge,
                (stat.rss * procfs::page_size()) as f64,
            ));
            if let Ok(boot) = procfs::boot_time_secs() {
                out.push((
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    MetricType::Gauge,
                    boot as f64 + stat.starttime as f64 / ticks,
                ));
            }
        }
        if let Ok(open) = me.fd_count() {
            out.push((
                "process_open_fds",
                "Number of open file descriptors.",
                MetricType::Gauge,
                open as f64,
            ));
        }
        if let Ok(limits) = me.limits() {
            out.push((
                "process_max_fds",
                "Maximum number of open file descriptors.",
                MetricType::Gauge,
                limit(limits.max_open_files.soft_limit),
            ));
            out.push((
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                MetricType::Gauge,
                limit(limits.max_address_space.soft_limit),
            ));
        }
        // The start-up build is where the process peaks (BENCHMARKS.md, tenth pass): the
        // high-water mark shows it long after the resident size has come down.
        if let Ok(Some(kib)) = me.status().map(|s| s.vmhwm) {
            out.push((
                "podns_process_resident_memory_peak_bytes",
                "Largest resident memory size of the process since it started (VmHWM), in bytes.",
                MetricType::Gauge,
                (kib * 1024) as f64,
            ));
        }
    }
}
