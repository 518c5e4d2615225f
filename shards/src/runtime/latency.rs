//! A latency histogram owned by one shard: recorded on the hot path without allocating (the
//! counts are allocated once), copied out whole for the metrics exporter.

use std::cell::RefCell;
use std::time::Instant;

use hdrhistogram::Histogram;

/// The longest latency told apart: anything slower counts as this.
const MAX_MICROS: u64 = 60_000_000;

pub struct Latency(RefCell<Histogram<u64>>);

impl Default for Latency {
    fn default() -> Self {
        // 1 µs to 60 s with two significant digits: about 27 KiB of counts.
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("the bounds are valid");
        Latency(RefCell::new(histogram))
    }
}

impl Latency {
    /// Counts the time since `since`, in microseconds.
    pub fn record(&self, since: Instant) {
        let micros = (since.elapsed().as_micros() as u64).clamp(1, MAX_MICROS);
        self.0.borrow_mut().saturating_record(micros);
    }

    /// Every latency recorded so far, in microseconds.
    pub fn snapshot(&self) -> Histogram<u64> {
        self.0.borrow().clone()
    }
}
