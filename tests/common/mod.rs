//! Test harness: real `petrel` processes on loopback, each with its own store in a temp dir,
//! ports chosen by the OS and read from the ready line, killed on drop.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod disk;
pub mod ha;
pub mod java;
pub mod pair;
pub mod relay;

use std::io::{BufRead, BufReader};

use petrel::client::{Client, MessageQueue, PullRequest};
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::remoting::response;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Petrel {
    child: Child,
    pub ready: serde_json::Value,
    pub store: PathBuf,
    stderr: mpsc::Receiver<String>,
}

/// The `petrel` binary: Cargo's for this package's tests; for the other packages that share
/// this harness (`#[path]`), the one in the same target directory, which a workspace test run
/// builds before any test runs.
pub fn petrel_bin() -> PathBuf {
    if let Some(bin) = option_env!("CARGO_BIN_EXE_petrel") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .join("petrel");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p petrel` (or `cargo test --workspace`) first",
        bin.display()
    );
    bin
}

/// Each thread of process `pid`: its name, state, kernel wait channel and kernel stack, from
/// /proc (the stack needs root; it is left out where unreadable).
fn thread_states(pid: u32) -> String {
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("(no /proc/{pid}/task)");
    };
    let mut out = String::new();
    for task in tasks.flatten() {
        let dir = task.path();
        let state = read(dir.join("status"))
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or_default()
            .to_string();
        out.push_str(&format!(
            "- {} {} wchan={} {state}\n{}",
            task.file_name().to_string_lossy(),
            read(dir.join("comm")).trim(),
            read(dir.join("wchan")).trim(),
            read(dir.join("stack"))
        ));
    }
    out
}

/// Properties every test broker gets: any free port, small segments, no pinning (tests run
/// side by side on two cores), patience with a slow disk.
pub fn test_properties(store: &Path) -> Vec<String> {
    vec![
        "listenPort=0".into(),
        "namesrvListenPort=0".into(),
        "shards=1".into(),
        "shardPinning=false".into(),
        "shardIoMemoryBytes=262144".into(),
        "mappedFileSizeCommitLog=16777216".into(),
        // A write stalled 200 ms (RocketMQ's default) happens on a busy two-core machine; the
        // tests that are about flow control set their own.
        "waitTimeMillsInSendQueue=10000".into(),
        // The seed's 5000 messages per second and topic would slow the tests that load a
        // broker; tests/limits.rs sets its own.
        "topicProduceTpsLimit=0".into(),
        "topicConsumeTpsLimit=0".into(),
        format!("storePathRootDir={}", store.display()),
    ]
}

/// Runs `petrel admin <args> -n <namesrv>`: whether it succeeded, its stdout and its stderr.
pub fn admin(namesrv: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(petrel_bin())
        .arg("admin")
        .args(args)
        .args(["-n", namesrv])
        .stdin(Stdio::null())
        .output()
        .expect("petrel admin runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `admin` that must succeed; its stdout.
pub fn admin_ok(namesrv: &str, args: &[&str]) -> String {
    let (ok, out, err) = admin(namesrv, args);
    assert!(ok, "petrel admin {args:?} failed: {err}{out}");
    out
}

/// Runs `petrel <args>` to completion, returning its status and stderr.
pub fn run_to_exit(args: &[String]) -> (ExitStatus, String) {
    let out = Command::new(petrel_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("petrel runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Petrel {
    /// Starts `petrel <role>` on `store` with the test properties plus `extra` (later wins),
    /// logging warnings (or `PETREL_TEST_LOG`, an env_logger filter).
    pub fn start(role: &str, store: &Path, extra: &[&str]) -> Petrel {
        let filter = std::env::var("PETREL_TEST_LOG").unwrap_or_else(|_| "warn".into());
        Petrel::start_logged(role, store, extra, &filter)
    }

    /// `start` with the env_logger filter `log`.
    pub fn start_logged(role: &str, store: &Path, extra: &[&str], log: &str) -> Petrel {
        Petrel::start_with_env(role, store, extra, log, &[])
    }

    /// `start_logged` with `env` added to the process's environment.
    pub fn start_with_env(
        role: &str,
        store: &Path,
        extra: &[&str],
        log: &str,
        env: &[(&str, &str)],
    ) -> Petrel {
        Petrel::launch(Petrel::command(role, store, extra, log, env), role, store)
    }

    /// `start` in a process whose open-files limit (soft and hard) is `limit`.
    pub fn start_with_open_files(role: &str, store: &Path, extra: &[&str], limit: u64) -> Petrel {
        use std::os::unix::process::CommandExt;
        let mut command = Petrel::command(role, store, extra, "warn", &[]);
        // SAFETY: the closure runs in the child between fork and exec and only calls
        // setrlimit, which is async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                let rlimit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Petrel::launch(command, role, store)
    }

    fn command(
        role: &str,
        store: &Path,
        extra: &[&str],
        log: &str,
        env: &[(&str, &str)],
    ) -> Command {
        let mut args = vec![role.to_string()];
        for p in test_properties(store)
            .into_iter()
            .chain(extra.iter().map(|s| s.to_string()))
        {
            args.push("-p".into());
            args.push(p);
        }
        let mut command = Command::new(petrel_bin());
        command
            .args(&args)
            .env("RUST_LOG", log)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn launch(mut command: Command, role: &str, store: &Path) -> Petrel {
        let mut child = command.spawn().expect("petrel starts");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (etx, erx) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[petrel] {line}");
                let _ = etx.send(line);
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        let ready = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(json) = line.strip_prefix("PETREL READY ") {
                        break serde_json::from_str(json).expect("ready line is JSON");
                    }
                }
                Err(_) => {
                    // A start that never finished: say where each thread waits before killing.
                    let threads = thread_states(child.id());
                    let exited = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    panic!(
                        "petrel {role} did not print its ready line within {READY_TIMEOUT:?} (exited: {exited:?}); its threads:\n{threads}"
                    );
                }
            }
        };
        Petrel {
            child,
            ready,
            store: store.to_path_buf(),
            stderr: erx,
        }
    }

    pub fn namesrv(&self) -> String {
        self.ready["namesrvAddr"]
            .as_str()
            .expect("namesrvAddr")
            .to_string()
    }

    pub fn front_door(&self) -> String {
        self.ready["frontDoor"]
            .as_str()
            .expect("frontDoor")
            .to_string()
    }

    /// (broker name, address) of every shard.
    pub fn brokers(&self) -> Vec<(String, String)> {
        self.ready["brokers"]
            .as_array()
            .expect("brokers")
            .iter()
            .map(|b| {
                (
                    b["brokerName"].as_str().unwrap().to_string(),
                    b["addr"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// A master's HA address (`haListenPort`).
    /// The Prometheus exporter's address (`metricsExporterType=PROM`).
    pub fn metrics_addr(&self) -> String {
        self.ready["metricsAddr"]
            .as_str()
            .expect("metricsAddr")
            .to_string()
    }

    pub fn ha_addr(&self) -> String {
        self.ready["haAddr"].as_str().expect("haAddr").to_string()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        self.wait_bounded(Duration::from_secs(30))
    }

    /// SIGKILL, as a crash.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_bounded(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("petrel did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stderr lines printed so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Petrel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns Some, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `petrel standalone` on a fresh temp store, with the test properties plus `extra`.
pub fn standalone(extra: &[&str]) -> (tempfile::TempDir, Petrel) {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Petrel::start("standalone", dir.path(), extra);
    (dir, petrel)
}

/// Creates `topic` through the front door and waits until the route shows it.
pub fn create_topic(client: &mut Client, petrel: &Petrel, topic: &str, queues: i32) {
    client
        .create_topic(&petrel.front_door(), &TopicConfig::new(topic, queues, 6))
        .unwrap();
    eventually(Duration::from_secs(10), || client.route(topic).ok());
}

pub fn queue(topic: &str, broker: &str, id: i32) -> MessageQueue {
    MessageQueue {
        topic: topic.into(),
        broker_name: broker.into(),
        queue_id: id,
    }
}

/// Everything in `q` from offset 0 that matches `sub`, through plain pulls.
pub fn pull_all(
    client: &mut Client,
    addr: &str,
    q: &MessageQueue,
    sub: &str,
) -> Vec<petrel::client::MessageExt> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let req = PullRequest {
            group: "G_pull",
            queue: q,
            offset,
            max: 32,
            subscription: sub,
            suspend: None,
        };
        let r = client.pull(addr, &req).unwrap();
        if r.code == response::PULL_NOT_FOUND {
            return out;
        }
        out.extend(r.messages);
        offset = r.next_begin_offset;
    }
}

/// Runs Apache RocketMQ's own mqadmin (`tests/mqadmin/mqadmin`, rocketmq-tools 5.5.0, resolved
/// by Maven on first use) to completion within `limit`: whether it exited 0, and its stdout
/// and stderr.
pub fn apache_mqadmin(args: &[&str], limit: Duration) -> (bool, String, String) {
    apache_mqadmin_with_env(args, limit, &[])
}

/// `apache_mqadmin` with `env` added (e.g. `ROCKETMQ_HOME`, whose `conf/tools.yml` holds the
/// ACL keys mqadmin signs with).
pub fn apache_mqadmin_with_env(
    args: &[&str],
    limit: Duration,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    use std::io::Read;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mqadmin/mqadmin");
    let mut child = Command::new("bash")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs tests/mqadmin/mqadmin");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped")));
    let err = drain(Box::new(child.stderr.take().expect("piped")));
    let status = wait_or_kill(&mut child, limit);
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let status =
        status.unwrap_or_else(|| panic!("mqadmin {args:?} ran past {limit:?}: {out}{err}"));
    (status.success(), out, err)
}

/// `child`'s exit status, or `None` (and the child killed) if it runs past `limit`.
fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GET_MIN_OFFSET of `q` at `addr`: the oldest offset retention left.
pub fn min_offset(client: &mut Client, addr: &str, q: &MessageQueue) -> i64 {
    let reply = client
        .call_fields(
            addr,
            petrel_shards::remoting::request::GET_MIN_OFFSET,
            &[
                ("topic", q.topic.clone()),
                ("queueId", q.queue_id.to_string()),
            ],
        )
        .unwrap();
    reply.field("offset").unwrap().parse().unwrap()
}

/// `deleteWhen` listing every hour of the day: time-based deletion may run whenever a test
/// does.
pub fn delete_at_every_hour() -> String {
    let hours: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    format!("deleteWhen={}", hours.join(";"))
}

/// The resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}
