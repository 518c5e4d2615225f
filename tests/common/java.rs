//! The Java interop driver (`tests/java`, the stock `org.apache.rocketmq:rocketmq-client`
//! 5.5.0): built by Maven on first use, run as a subprocess printing one JSON object per line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Builds the driver once per test binary and returns the jar's path.
fn jar() -> &'static str {
    static JAR: OnceLock<String> = OnceLock::new();
    JAR.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/java/build.sh");
        let out = Command::new("bash")
            .arg(script)
            .output()
            .expect("bash runs tests/java/build.sh");
        assert!(
            out.status.success(),
            "building the Java driver failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .expect("jar path")
            .trim()
            .to_string()
    })
}

/// A running driver process: its JSON lines arrive on `lines`; killed on drop.
pub struct Driver {
    child: Child,
    pub lines: mpsc::Receiver<Value>,
    /// Where a broadcasting consumer keeps its offsets; removed with the driver.
    _offsets: tempfile::TempDir,
}

impl Driver {
    pub fn start(args: &[&str]) -> Driver {
        Driver::start_with_env(args, &[])
    }

    /// `start` with `env` added to the driver's environment (e.g. its ACL keys).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Driver {
        let log_dir = std::env::temp_dir().join("petrel-interop-logs");
        let offsets = tempfile::tempdir().expect("a temp dir");
        let mut child = Command::new("java")
            .args([
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-jar",
                jar(),
            ])
            .args(args)
            .env("PETREL_INTEROP_LOG_DIR", log_dir)
            .env("PETREL_INTEROP_OFFSET_DIR", offsets.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("java runs");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("driver printed non-JSON: {line}"));
                let _ = tx.send(value);
            }
        });
        Driver {
            child,
            lines: rx,
            _offsets: offsets,
        }
    }

    /// Reads lines until one has `done` (returned with everything before it) or `started`.
    pub fn read_until(&self, key: &str, limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("driver gave no `{key}` line; got {out:?}"));
            assert!(line.get("error").is_none(), "driver failed: {line}");
            if line.get(key).is_some() {
                out.push(line);
                return out;
            }
            out.push(line);
        }
    }

    /// Waits for the driver to exit within `limit`, whatever its status, and returns every
    /// line it printed, errors included.
    pub fn all_lines(mut self, limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.child.try_wait().expect("driver status").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::iter::from_fn(|| self.lines.recv_timeout(Duration::from_secs(1)).ok()).collect()
    }

    pub fn finish(mut self, limit: Duration) -> Vec<Value> {
        let lines = self.read_until("done", limit);
        let status = self.child.wait().expect("driver exits");
        assert!(status.success(), "driver exit status {status:?}");
        lines
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the driver's producer: `count` messages from index `first` in `mode`; all must be acked.
pub fn produce_from(ns: &str, topic: &str, count: usize, mode: &str, first: usize) -> Vec<Value> {
    let count_text = count.to_string();
    let first_text = first.to_string();
    let args = [
        "produce",
        ns,
        topic,
        &count_text,
        mode,
        "petrel_interop_producer",
        &first_text,
    ];
    let lines = Driver::start(&args).finish(Duration::from_secs(180));
    let done = lines.last().unwrap();
    assert_eq!(done["sent"], count, "{mode}: {done}");
    assert_eq!(done["failed"], 0, "{mode}: {done}");
    lines[..lines.len() - 1].to_vec()
}

pub fn produce(ns: &str, topic: &str, count: usize, mode: &str) -> Vec<Value> {
    produce_from(ns, topic, count, mode, 0)
}
