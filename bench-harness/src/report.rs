//! A run's outputs, all in one folder: `report.json`, `report.md`, `publish.hgrm` and
//! `e2e.hgrm` (HdrHistogram's percentile-distribution text, values in milliseconds, so
//! HdrHistogram's plotters read them) and `latency.svg`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::collect::Totals;
use crate::workload::Workload;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// From a histogram in microseconds, in milliseconds.
    pub fn from_us(h: &Histogram<u64>) -> Latency {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50: ms(0.5),
            p75: ms(0.75),
            p90: ms(0.9),
            p95: ms(0.95),
            p99: ms(0.99),
            p999: ms(0.999),
            p9999: ms(0.9999),
            max: h.max() as f64 / 1000.0,
            mean: h.mean() / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    pub cpu_model: String,
    pub cpus: usize,
    pub kernel: String,
    pub memory_gib: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub started_unix_ms: u64,
    pub namesrv: String,
    pub brokers: Vec<String>,
    /// The topics this run created (fresh names per run).
    pub topics: Vec<String>,
    pub host: Host,
    pub git_commit: String,
    pub workload: Workload,
    pub measured_secs: f64,
    /// Acked messages per second during the measurement.
    pub publish_rate: f64,
    pub publish_mib_per_sec: f64,
    /// Messages delivered per second during the measurement, over all subscriptions.
    pub consume_rate: f64,
    pub sent_requests: u64,
    pub acked_messages: u64,
    pub received_messages: u64,
    pub publish_latency_ms: Latency,
    pub e2e_latency_ms: Latency,
    pub errors: BTreeMap<String, u64>,
    /// The generator's CPU during the measurement, in cores (1.0 = one core busy).
    pub generator_cpu: f64,
    /// The busiest generator thread's share of a core.
    pub generator_thread_cpu_max: f64,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn new(
        namesrv: &str,
        brokers: &[String],
        topics: &[String],
        workload: &Workload,
        totals: &Totals,
        started_unix_ms: u64,
    ) -> Report {
        let m = &totals.measured;
        let secs = totals.duration.as_secs_f64().max(1e-9);
        let thread_max = totals.thread_cpu.iter().cloned().fold(0.0, f64::max) / secs;
        let mut warnings = Vec::new();
        let cpu = totals.process_cpu / secs;
        if thread_max > 0.9 {
            warnings.push(format!(
                "a generator thread used {:.0} % of a core: the generator may be the bottleneck",
                thread_max * 100.0
            ));
        }
        if cpu > 0.9 {
            warnings.push(format!(
                "the generator used {:.2} cores on a {}-CPU host: it competes with the broker",
                cpu,
                host().cpus
            ));
        }
        let subs = u64::from(workload.subscriptions_per_topic);
        if subs > 0 && m.received < m.acked * subs * 95 / 100 {
            warnings.push(format!(
                "consumers received {} of {} expected messages during the measurement: they fell behind",
                m.received,
                m.acked * subs
            ));
        }
        Report {
            tool: format!("petrel-bench {}", env!("CARGO_PKG_VERSION")),
            started_unix_ms,
            namesrv: namesrv.to_string(),
            brokers: brokers.to_vec(),
            topics: topics.to_vec(),
            host: host(),
            git_commit: git_commit(),
            workload: workload.clone(),
            measured_secs: secs,
            publish_rate: m.acked as f64 / secs,
            publish_mib_per_sec: m.acked_bytes as f64 / secs / (1 << 20) as f64,
            consume_rate: m.received as f64 / secs,
            sent_requests: m.sent,
            acked_messages: m.acked,
            received_messages: m.received,
            publish_latency_ms: Latency::from_us(&m.publish),
            e2e_latency_ms: Latency::from_us(&m.e2e),
            errors: m.errors.clone(),
            generator_cpu: cpu,
            generator_thread_cpu_max: thread_max,
            warnings,
        }
    }

    pub fn write(&self, dir: &Path, totals: &Totals) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let put = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        };
        put("report.json", serde_json::to_string_pretty(self)? + "\n")?;
        put("report.md", self.markdown())?;
        let m = &totals.measured;
        put("publish.hgrm", hgrm(&m.publish))?;
        put("e2e.hgrm", hgrm(&m.e2e))?;
        let series = [("publish", &m.publish), ("end-to-end", &m.e2e)];
        put(
            "latency.svg",
            crate::plot::percentile_spectrum(&self.workload.name, &series)?,
        )?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let w = &self.workload;
        let mut s = String::new();
        let _ = writeln!(s, "# {} against {}\n", w.name, self.namesrv);
        let _ = writeln!(
            s,
            "{} topic(s) × {} queue(s), {} B messages, {} producer(s)/topic ({:?}, {} in flight{}), \
             {} subscription(s) × {} consumer(s), rate {}, {:.1} s measured after {:.1} s warm-up.\n",
            w.topics,
            w.partitions_per_topic,
            w.message_size,
            w.producers_per_topic,
            w.producer_mode,
            w.in_flight(),
            if w.batch_size > 1 { format!(", batches of {}", w.batch_size) } else { String::new() },
            w.subscriptions_per_topic,
            w.consumer_per_subscription,
            if w.producer_rate > 0.0 { format!("{} msg/s", w.producer_rate) } else { "max".into() },
            self.measured_secs,
            w.warmup_duration().as_secs_f64(),
        );
        let _ = writeln!(
            s,
            "| | rate (msg/s) | p50 ms | p99 ms | p99.9 ms | p99.99 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|"
        );
        for (name, rate, l) in [
            ("publish", self.publish_rate, &self.publish_latency_ms),
            ("end-to-end", self.consume_rate, &self.e2e_latency_ms),
        ] {
            let _ = writeln!(
                s,
                "| {name} | {rate:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                l.p50, l.p99, l.p999, l.p9999, l.max
            );
        }
        let _ = writeln!(
            s,
            "\nGenerator CPU: {:.2} cores (busiest thread {:.0} % of a core). Errors: {}.",
            self.generator_cpu,
            self.generator_thread_cpu_max * 100.0,
            if self.errors.is_empty() {
                "none".to_string()
            } else {
                format!("{:?}", self.errors)
            }
        );
        for warning in &self.warnings {
            let _ = writeln!(s, "\n**Warning:** {warning}");
        }
        let _ = writeln!(
            s,
            "\nHost: {} ({} CPUs, {:.0} GiB, Linux {}), commit {}.",
            self.host.cpu_model,
            self.host.cpus,
            self.host.memory_gib,
            self.host.kernel,
            self.git_commit
        );
        s
    }
}

/// HdrHistogram's percentile distribution (`outputPercentileDistribution` with 5 ticks per
/// half distance), values scaled from microseconds to milliseconds.
pub fn hgrm(h: &Histogram<u64>) -> String {
    const SCALE: f64 = 1000.0;
    let mut s = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if h.is_empty() {
        let _ = writeln!(
            s,
            "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
            0.0, 0.0
        );
    } else {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = v.value_iterated_to() as f64 / SCALE;
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
            }
        }
        let _ = writeln!(
            s,
            "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
            h.mean() / SCALE,
            h.stdev() / SCALE
        );
    }
    let _ = writeln!(
        s,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / SCALE,
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets(h.sigfig())
    );
    s
}

/// HdrHistogram's sub-bucket count: the power of two that holds `2 × 10^sigfig` values.
fn sub_buckets(sigfig: u8) -> u64 {
    let magnitude = (2.0 * 10f64.powi(i32::from(sigfig))).log2().ceil() as u32;
    1u64 << magnitude
}

pub fn host() -> Host {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_string(), |(_, v)| v.trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    Host {
        cpu_model,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or("unknown".into(), |s| s.trim().to_string()),
        memory_gib: mem_kib / (1u64 << 20) as f64,
    }
}

/// The commit of the checkout the harness runs from, when there is one.
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or("unknown".into(), |s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_follows_hdrhistograms_layout() {
        let mut h = crate::collect::latency_histogram();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let text = hgrm(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        let first: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(first, ["0.010", "0.000000000000", "1", "1.00"]);
        let last_data = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
        let cols: Vec<&str> = last_data.split_whitespace().collect();
        assert_eq!(cols, ["10.007", "1.000000000000", "1000"]);
        assert!(text.contains("#[Max     =       10.007, Total count    =         1000]"));
    }
}
