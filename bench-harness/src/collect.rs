//! The run's clock and phases, and how measurements travel: every actor thread records into
//! its own histograms and sends them to the collector every 100 ms and at every phase change
//! (the interval-histogram pattern of HdrHistogram's recorders), so no lock is shared on the
//! hot path. The collector moves the run through its phases and keeps what the measurement
//! phase recorded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    Warmup = 0,
    /// Producers run and consumers wait until the backlog is built.
    Backlog = 1,
    Measure = 2,
    /// Producers have stopped; consumers catch up. Not measured.
    Drain = 3,
    Done = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Warmup,
            1 => Phase::Backlog,
            2 => Phase::Measure,
            3 => Phase::Drain,
            _ => Phase::Done,
        }
    }
}

/// One monotonic clock for every actor, and the phase they all follow.
pub struct Clock {
    start: Instant,
    start_unix_us: u64,
    phase: AtomicU8,
}

impl Clock {
    pub fn new(phase: Phase) -> Arc<Clock> {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is past 1970");
        Arc::new(Clock {
            start: Instant::now(),
            start_unix_us: unix.as_micros() as u64,
            phase: AtomicU8::new(phase as u8),
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Microseconds since the Unix epoch at `ns` on this clock: what goes into message bodies,
    /// so that consumers (same host) measure end-to-end latency against the intended send time.
    pub fn unix_us(&self, ns: u64) -> u64 {
        self.start_unix_us + ns / 1000
    }

    pub fn now_unix_us(&self) -> u64 {
        self.unix_us(self.now_ns())
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }
}

/// Latencies are recorded in microseconds, up to a minute, at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// What one actor recorded in one phase since its last report.
pub struct Interval {
    pub phase: Phase,
    pub publish: Histogram<u64>,
    pub e2e: Histogram<u64>,
    pub sent: u64,
    pub acked: u64,
    pub acked_bytes: u64,
    pub received: u64,
    pub errors: BTreeMap<String, u64>,
    /// CPU seconds this thread used while the phase was `Measure` (its last report only).
    pub measure_cpu: Option<f64>,
}

impl Interval {
    fn new(phase: Phase) -> Interval {
        Interval {
            phase,
            publish: latency_histogram(),
            e2e: latency_histogram(),
            sent: 0,
            acked: 0,
            acked_bytes: 0,
            received: 0,
            errors: BTreeMap::new(),
            measure_cpu: None,
        }
    }

    /// Adds `other`'s counts and histograms to this one's.
    fn add(&mut self, other: &Interval) {
        self.publish.add(&other.publish).expect("same bounds");
        self.e2e.add(&other.e2e).expect("same bounds");
        self.sent += other.sent;
        self.acked += other.acked;
        self.acked_bytes += other.acked_bytes;
        self.received += other.received;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

const REPORT_EVERY_NS: u64 = 100_000_000;

/// An actor thread's recording end.
pub struct Recorder {
    clock: Arc<Clock>,
    tx: Sender<Interval>,
    cur: Interval,
    last_report_ns: u64,
    cpu_at_measure_start: Option<f64>,
    measure_cpu: f64,
}

impl Recorder {
    pub fn new(clock: Arc<Clock>, tx: Sender<Interval>) -> Recorder {
        let phase = clock.phase();
        let mut r = Recorder {
            cur: Interval::new(phase),
            last_report_ns: clock.now_ns(),
            clock,
            tx,
            cpu_at_measure_start: None,
            measure_cpu: 0.0,
        };
        r.enter(phase);
        r
    }

    pub fn sent(&mut self, requests: u64) {
        self.cur.sent += requests;
    }

    pub fn acked(&mut self, latency_us: u64, messages: u64, bytes: u64) {
        self.cur
            .publish
            .saturating_record_n(latency_us.max(1), messages);
        self.cur.acked += messages;
        self.cur.acked_bytes += bytes;
    }

    pub fn received(&mut self, e2e_us: u64) {
        self.cur.e2e.saturating_record(e2e_us.max(1));
        self.cur.received += 1;
    }

    pub fn error(&mut self, key: &str, count: u64) {
        *self.cur.errors.entry(key.to_string()).or_default() += count;
    }

    /// Reports the interval when the phase changed or 100 ms passed. Returns the phase.
    pub fn tick(&mut self) -> Phase {
        let phase = self.clock.phase();
        let now = self.clock.now_ns();
        if phase != self.cur.phase || now - self.last_report_ns >= REPORT_EVERY_NS {
            self.report(phase);
            self.last_report_ns = now;
        }
        phase
    }

    fn report(&mut self, next: Phase) {
        let prev = self.cur.phase;
        if next != prev {
            self.leave(prev);
            self.enter(next);
        }
        let done = std::mem::replace(&mut self.cur, Interval::new(next));
        // A closed channel means the collector is gone; the run is over anyway.
        let _ = self.tx.send(done);
    }

    fn enter(&mut self, phase: Phase) {
        if phase == Phase::Measure {
            self.cpu_at_measure_start = Some(thread_cpu_secs());
        }
    }

    fn leave(&mut self, phase: Phase) {
        if phase == Phase::Measure {
            if let Some(start) = self.cpu_at_measure_start.take() {
                self.measure_cpu += thread_cpu_secs() - start;
            }
        }
    }

    /// The last report, with this thread's CPU time during the measurement.
    pub fn finish(mut self) {
        let phase = self.cur.phase;
        self.leave(phase);
        self.cur.measure_cpu = Some(self.measure_cpu);
        let _ = self.tx.send(self.cur);
    }
}

fn thread_cpu_secs() -> f64 {
    cpu_secs(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU seconds of the whole generator process.
pub fn process_cpu_secs() -> f64 {
    cpu_secs(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_secs(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// What a run recorded, over all actors.
pub struct Totals {
    /// Everything the measurement phase recorded.
    pub measured: Interval,
    /// Sends acked in any phase, and messages received in any phase.
    pub acked_all: u64,
    pub received_all: u64,
    /// How long the measurement phase lasted.
    pub duration: Duration,
    pub process_cpu: f64,
    pub thread_cpu: Vec<f64>,
}

impl Totals {
    fn new() -> Totals {
        Totals {
            measured: Interval::new(Phase::Measure),
            acked_all: 0,
            received_all: 0,
            duration: Duration::ZERO,
            process_cpu: 0.0,
            thread_cpu: Vec::new(),
        }
    }

    fn add(&mut self, i: &Interval) {
        self.acked_all += i.acked;
        self.received_all += i.received;
        if let Some(cpu) = i.measure_cpu {
            self.thread_cpu.push(cpu);
        }
        if i.phase == Phase::Measure {
            self.measured.add(i);
        }
    }
}

/// How the collector moves through the phases.
pub struct Schedule {
    pub warmup: Duration,
    /// Bytes to publish before consumers start; 0 for none.
    pub backlog_bytes: u64,
    pub measure: Duration,
    /// Subscriptions that each should receive every acked message.
    pub subscriptions: u64,
    /// The longest consumers may take to catch up once producers stop.
    pub drain_max: Duration,
}

/// Live figures for the progress display, once a second.
pub struct Live {
    pub phase: Phase,
    pub elapsed: Duration,
    pub publish_rate: f64,
    pub consume_rate: f64,
    pub publish_p99_us: u64,
    pub e2e_p99_us: u64,
}

/// Runs the phases in the calling thread until the last actor reported (or `Done` plus the
/// drain limit), merging what the actors send.
pub fn collect(
    clock: &Clock,
    rx: Receiver<Interval>,
    schedule: &Schedule,
    mut live: impl FnMut(&Live),
) -> Totals {
    let mut totals = Totals::new();
    let mut phase_started = Instant::now();
    let mut measure_started = None;
    let mut cpu_at_measure = 0.0;
    let mut backlog_acked_bytes = 0u64;
    let mut second = Interval::new(Phase::Warmup);
    let mut last_live = Instant::now();
    let started = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(i) => {
                second.add(&i);
                if i.phase == Phase::Backlog {
                    backlog_acked_bytes += i.acked_bytes;
                }
                totals.add(&i);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let phase = clock.phase();
        let in_phase = phase_started.elapsed();
        let next = match phase {
            Phase::Warmup if in_phase >= schedule.warmup => Some(if schedule.backlog_bytes > 0 {
                Phase::Backlog
            } else {
                Phase::Measure
            }),
            Phase::Backlog if backlog_acked_bytes >= schedule.backlog_bytes => Some(Phase::Measure),
            Phase::Measure if in_phase >= schedule.measure => Some(Phase::Drain),
            Phase::Drain
                if in_phase >= schedule.drain_max
                    || totals.received_all >= totals.acked_all * schedule.subscriptions =>
            {
                Some(Phase::Done)
            }
            _ => None,
        };
        if let Some(next) = next {
            if next == Phase::Measure {
                measure_started = Some(Instant::now());
                cpu_at_measure = process_cpu_secs();
            }
            if phase == Phase::Measure {
                totals.duration = measure_started.map_or(Duration::ZERO, |s| s.elapsed());
                totals.process_cpu = process_cpu_secs() - cpu_at_measure;
            }
            clock.set_phase(next);
            phase_started = Instant::now();
        }
        if last_live.elapsed() >= Duration::from_secs(1) {
            let secs = last_live.elapsed().as_secs_f64();
            live(&Live {
                phase,
                elapsed: started.elapsed(),
                publish_rate: second.acked as f64 / secs,
                consume_rate: second.received as f64 / secs,
                publish_p99_us: second.publish.value_at_quantile(0.99),
                e2e_p99_us: second.e2e.value_at_quantile(0.99),
            });
            second = Interval::new(Phase::Warmup);
            last_live = Instant::now();
        }
    }
    totals
}
