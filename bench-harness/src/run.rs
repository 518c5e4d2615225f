//! One run of a workload against one name server: plan, start the actors (consumers first, so
//! they start at the end of the fresh queues), collect, write the outputs.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};

use crate::collect::{self, Clock, Phase, Schedule};
use crate::report::Report;
use crate::workload::Workload;
use crate::{consumer, producer, setup};

pub fn run(namesrv: &str, w: &Workload, out: &Path) -> anyhow::Result<Report> {
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_millis() as u64;
    let run_id = format!(
        "pb{:x}{:x}",
        started_unix_ms % 0xFFFF_FFFF,
        std::process::id()
    );
    let plan = setup::prepare(namesrv, w, &run_id)?;
    log::info!(
        "{}: started: {} producer(s), {} consumer connection(s) on {:?}",
        w.name,
        plan.producers.len(),
        plan.consumers.len(),
        plan.brokers
    );
    let clock = Clock::new(Phase::Warmup);
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::new();
    for spec in plan.consumers {
        threads.push(consumer::spawn(spec, clock.clone(), tx.clone()));
    }
    for spec in plan.producers {
        threads.push(producer::spawn(spec, clock.clone(), tx.clone()));
    }
    drop(tx);
    let schedule = Schedule {
        warmup: w.warmup_duration(),
        backlog_bytes: w.backlog_bytes(),
        measure: w.test_duration(),
        subscriptions: u64::from(w.subscriptions_per_topic),
        drain_max: Duration::from_secs(5),
    };
    let bar = ProgressBar::new((schedule.warmup + schedule.measure).as_secs().max(1));
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let totals = collect::collect(&clock, rx, &schedule, |live| {
        bar.set_position(live.elapsed.as_secs());
        bar.set_message(format!(
            "{:?}: publish {:.0} msg/s p99 {:.2} ms, consume {:.0} msg/s e2e p99 {:.2} ms",
            live.phase,
            live.publish_rate,
            live.publish_p99_us as f64 / 1000.0,
            live.consume_rate,
            live.e2e_p99_us as f64 / 1000.0,
        ));
    });
    bar.finish_and_clear();
    for t in threads {
        let _ = t.join();
    }
    let report = Report::new(
        namesrv,
        &plan.brokers,
        &plan.topics,
        w,
        &totals,
        started_unix_ms,
    );
    report.write(out, &totals)?;
    for warning in &report.warnings {
        log::warn!("{warning}");
    }
    if totals.measured.acked == 0 {
        bail!(
            "no send was acknowledged during the measurement (errors: {:?}); the report is in {}",
            totals.measured.errors,
            out.display()
        );
    }
    Ok(report)
}
