//! petrel-bench: drives any RocketMQ-protocol name server through the wire protocol with
//! OpenMessaging-style workloads and writes latency histogram reports; compares two targets
//! round by round; measures this machine's disk and loopback ceilings and what idle
//! connections cost a broker.

mod ceiling;
mod collect;
mod compare;
mod connections;
mod consumer;
mod plot;
mod producer;
mod report;
mod run;
mod setup;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "petrel-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Changes to the workload file for one invocation (recorded in the report's workload).
#[derive(clap::Args, Clone)]
struct Overrides {
    /// Replaces `producerRate` (msg/s over all producers; 0 = max rate).
    #[arg(long)]
    rate: Option<f64>,
    /// Replaces `testDurationMinutes`, in seconds.
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Replaces `warmupDurationMinutes`, in seconds.
    #[arg(long)]
    warmup_secs: Option<f64>,
    /// Replaces `inFlight`.
    #[arg(long)]
    in_flight: Option<u32>,
}

impl Overrides {
    fn load(&self, path: &std::path::Path) -> anyhow::Result<workload::Workload> {
        let mut w = workload::Workload::load(path)?;
        if let Some(rate) = self.rate {
            w.producer_rate = rate;
        }
        if let Some(secs) = self.duration_secs {
            w.test_duration_minutes = secs / 60.0;
        }
        if let Some(secs) = self.warmup_secs {
            w.warmup_duration_minutes = secs / 60.0;
        }
        if self.in_flight.is_some() {
            w.in_flight = self.in_flight;
        }
        w.validate()
            .map_err(|e| e.context(format!("workload {} with the overrides", path.display())))?;
        Ok(w)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Runs a workload against one name server and writes the report to --out.
    Run {
        /// The name server, HOST:PORT.
        #[arg(long)]
        namesrv: String,
        /// A workload YAML file (OpenMessaging Benchmark's field names).
        #[arg(long)]
        workload: PathBuf,
        /// The folder for report.json, report.md, *.hgrm and latency.svg.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Runs a workload against A and B alternately, A B A B …, and reports each round's
    /// ratio A/B and the median ratio.
    Compare {
        #[arg(long)]
        a: String,
        #[arg(long)]
        b: String,
        /// A name for A in the summary.
        #[arg(long, default_value = "A")]
        a_label: String,
        /// A name for B in the summary.
        #[arg(long, default_value = "B")]
        b_label: String,
        #[arg(long)]
        workload: PathBuf,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Measures this machine's limits: sequential append to --dir (no fsync; fdatasync per
    /// group) and loopback TCP (streaming; ping-pong latency per message size).
    Ceiling {
        /// A folder on the filesystem the broker stores to.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Message sizes in bytes.
        #[arg(long, value_delimiter = ',', default_values_t = [100usize, 1024, 65536])]
        sizes: Vec<usize>,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Measures what idle connections cost a broker on this host: some carry pipelined
    /// sends first, then all sit idle; reports bytes of broker RSS per connection and an
    /// honest client's send latency among them.
    Connections {
        /// A broker's client port, HOST:PORT (a shard's address in routes).
        #[arg(long)]
        broker: String,
        /// The broker's process id (its VmRSS is read from /proc).
        #[arg(long)]
        pid: u32,
        /// An existing topic with queue 0 on that broker.
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 300)]
        loaded: usize,
        #[arg(long, default_value_t = 2400)]
        idle: usize,
        /// Pipelined sends per loaded connection.
        #[arg(long, default_value_t = 8)]
        sends: usize,
        #[arg(long, default_value_t = 16384)]
        body_bytes: usize,
        /// Seconds to let the broker give idle buffers back.
        #[arg(long, default_value_t = 4.0)]
        settle_secs: f64,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            namesrv,
            workload,
            out,
            overrides,
        } => overrides
            .load(&workload)
            .and_then(|w| run::run(&namesrv, &w, &out))
            .map(|r| println!("{}", r.markdown())),
        Command::Compare {
            a,
            b,
            a_label,
            b_label,
            workload,
            rounds,
            out,
            overrides,
        } => overrides.load(&workload).and_then(|w| {
            let sides = compare::Sides {
                a: (a_label, a),
                b: (b_label, b),
            };
            compare::compare(&sides, &w, rounds, &out).map(|c| println!("{}", c.markdown()))
        }),
        Command::Ceiling {
            dir,
            out,
            sizes,
            seconds,
        } => ceiling::measure(&dir, &sizes, seconds)
            .and_then(|c| c.write(&out).map(|()| println!("{}", c.markdown()))),
        Command::Connections {
            broker,
            pid,
            topic,
            loaded,
            idle,
            sends,
            body_bytes,
            settle_secs,
            out,
        } => {
            let plan = connections::Plan {
                broker: &broker,
                pid,
                topic: &topic,
                loaded,
                idle,
                sends,
                body_bytes,
                settle: std::time::Duration::from_secs_f64(settle_secs),
            };
            connections::measure(&plan)
                .and_then(|r| r.write(&out).map(|()| println!("{}", r.markdown())))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("petrel-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
