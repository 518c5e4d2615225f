//! The same workload against two targets, alternating A B A B … over several rounds. Each
//! round gives a ratio A/B per metric, and the summary is the median of those ratios: a
//! machine that drifts during the comparison moves both sides of a round alike, so it cannot
//! fake a difference the way comparing two separate averages could.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::report::Report;
use crate::run;
use crate::workload::Workload;

pub struct Sides {
    /// (label, name server address)
    pub a: (String, String),
    pub b: (String, String),
}

#[derive(Debug, Serialize)]
pub struct Side {
    pub label: String,
    pub namesrv: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Metric {
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    /// A/B per round; null where B was 0.
    pub ratio: Vec<Option<f64>>,
    pub median_a: f64,
    pub median_b: f64,
    pub median_ratio: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub a: Side,
    pub b: Side,
    pub workload: Workload,
    pub rounds: u32,
    /// Keyed `publish_rate`, `consume_rate`, `publish_latency_ms.p99`, `e2e_latency_ms.p99`,
    /// `publish_latency_ms.p50`, `e2e_latency_ms.p50`, `generator_cpu`.
    pub metrics: BTreeMap<String, Metric>,
}

type Pick = fn(&Report) -> f64;

const METRICS: [(&str, Pick); 7] = [
    ("publish_rate", |r| r.publish_rate),
    ("consume_rate", |r| r.consume_rate),
    ("publish_latency_ms.p50", |r| r.publish_latency_ms.p50),
    ("publish_latency_ms.p99", |r| r.publish_latency_ms.p99),
    ("e2e_latency_ms.p50", |r| r.e2e_latency_ms.p50),
    ("e2e_latency_ms.p99", |r| r.e2e_latency_ms.p99),
    ("generator_cpu", |r| r.generator_cpu),
];

pub fn compare(sides: &Sides, w: &Workload, rounds: u32, out: &Path) -> anyhow::Result<Comparison> {
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let mut metrics: BTreeMap<String, Metric> = BTreeMap::new();
    for round in 1..=rounds {
        let mut reports = Vec::new();
        for (side, (label, addr)) in [("a", &sides.a), ("b", &sides.b)] {
            log::info!("round {round}/{rounds}: {label} ({addr})");
            let dir = out.join(format!("round-{round}-{side}"));
            let report = run::run(addr, w, &dir)
                .with_context(|| format!("round {round}, {label} ({addr})"))?;
            reports.push(report);
        }
        for (name, pick) in METRICS {
            let m = metrics.entry(name.to_string()).or_default();
            let (a, b) = (pick(&reports[0]), pick(&reports[1]));
            m.a.push(a);
            m.b.push(b);
            m.ratio.push((b != 0.0).then(|| a / b));
        }
    }
    for m in metrics.values_mut() {
        m.median_a = median(m.a.iter().copied()).unwrap_or(0.0);
        m.median_b = median(m.b.iter().copied()).unwrap_or(0.0);
        m.median_ratio = median(m.ratio.iter().flatten().copied());
    }
    let comparison = Comparison {
        a: Side {
            label: sides.a.0.clone(),
            namesrv: sides.a.1.clone(),
        },
        b: Side {
            label: sides.b.0.clone(),
            namesrv: sides.b.1.clone(),
        },
        workload: w.clone(),
        rounds,
        metrics,
    };
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("compare.json"),
        serde_json::to_string_pretty(&comparison)? + "\n",
    )?;
    std::fs::write(out.join("compare.md"), comparison.markdown())?;
    Ok(comparison)
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Comparison {
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# {}: {} (A, {}) vs {} (B, {}), {} round(s)\n",
            self.workload.name,
            self.a.label,
            self.a.namesrv,
            self.b.label,
            self.b.namesrv,
            self.rounds
        );
        let _ = writeln!(
            s,
            "| metric | median A | median B | median A/B | A/B per round |\n|---|---:|---:|---:|---|"
        );
        for (name, m) in &self.metrics {
            let rounds: Vec<String> = m
                .ratio
                .iter()
                .map(|r| r.map_or("–".into(), |r| format!("{r:.2}")))
                .collect();
            let _ = writeln!(
                s,
                "| {name} | {:.3} | {:.3} | {} | {} |",
                m.median_a,
                m.median_b,
                m.median_ratio.map_or("–".into(), |r| format!("{r:.2}")),
                rounds.join(" ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians_of_odd_even_and_empty_sets() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), Some(2.5));
        assert_eq!(median([f64::NAN].into_iter()), None);
    }
}
