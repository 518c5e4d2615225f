#!/usr/bin/env bash
# Starts and stops a reference broker on loopback so the bench harness can compare Petrel with
# it on the same machine: Apache RocketMQ 5.x (name server + one master broker), fetched from
# Maven Central, or rocketmq-rust (its name server + one master broker), built from crates.io;
# both into a cache outside the repo. Run with --help for the interface.
set -euo pipefail

PROG="reference-broker.sh"
REF_ROOT="${PETREL_REFERENCE_HOME:-$HOME/.cache/petrel-reference}"
APACHE_DIR="$REF_ROOT/apache"     # state dir: install cache, state file, logs
RUST_DIR="$REF_ROOT/rust"         # the same for rocketmq-rust
# Set by main for the reference it runs (apache or rust).
IMPL=""
REF_NAME=""
REF_DIR=""
STATE_FILE=""
LOG_DIR=""
START_TIMEOUT="${PETREL_REFERENCE_START_TIMEOUT:-90}"
STOP_TIMEOUT="${PETREL_REFERENCE_STOP_TIMEOUT:-30}"
STORE_PARENT="${PETREL_REFERENCE_STORE_PARENT:-${TMPDIR:-/tmp}}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

usage() {
  cat <<EOF
Usage: $PROG apache start [--flush ASYNC_FLUSH|SYNC_FLUSH] [-p key=value]...
       $PROG apache stop
       $PROG apache status
       $PROG apache install
       $PROG rust start [--flush ASYNC_FLUSH|SYNC_FLUSH] [--micro-batch on|off] [-p key=value]...
       $PROG rust stop
       $PROG rust status
       $PROG rust install
       $PROG -h | --help

apache start   Installs Apache RocketMQ 5.x from Maven Central once (newest 5.x release whose
               broker and name server resolve with all dependencies; pin one with
               PETREL_APACHE_ROCKETMQ_VERSION), then starts its name server and one
               ASYNC_MASTER broker on 127.0.0.1 with free ports and a fresh temp store, waits
               (at most PETREL_REFERENCE_START_TIMEOUT=${START_TIMEOUT}s) until the name server
               serves a route for TBW102 through this broker, and prints one line on stdout:
                 REFERENCE READY {"namesrvAddr":..,"brokerAddr":..,"version":..,
                   "flushDiskType":..,"jvm":..,"stateDir":..,"namesrvJvm":..,"storeDir":..}
               ("jvm" is the broker's JVM options, "namesrvJvm" the name server's). Everything
               else goes to stderr. --flush defaults to ASYNC_FLUSH. Each -p key=value is
               appended to the generated broker.conf (later keys win).
               If it already runs, start changes nothing, prints the running instance's READY
               JSON to stderr and exits 1: run stop first. On failure both processes are
               stopped, the store is removed, the logs are kept and it exits 1.
apache stop    SIGTERM to the broker, then the name server; SIGKILL after
               PETREL_REFERENCE_STOP_TIMEOUT=${STOP_TIMEOUT}s (name server: at most 10s);
               removes the temp store. A graceful broker stop takes about 10s. Exits 0,
               also when nothing runs.
apache status  Prints "running" and the READY JSON (exit 0), "not running" (exit 3) or
               "degraded" when only one of the two processes is alive (exit 1).
apache install Only installs (resolves the classpath); prints the version.

rust start     Builds rocketmq-rust ${RUST_VERSION} once (crates.io rocketmq-namesrv and
               rocketmq-broker with cargo install --locked -j 2; about 25 minutes on 2 cores
               here), then, as apache start, starts its name server (rocketmq-namesrv-rust)
               and one ASYNC_MASTER broker (rocketmq-broker-rust, broker-a in DefaultCluster)
               on 127.0.0.1 with free ports and a fresh temp store, waits for the TBW102 route
               and prints one line on stdout:
                 REFERENCE READY {"namesrvAddr":..,"brokerAddr":..,"version":"${RUST_VERSION}",
                   "flushDiskType":..,"commitLogMicroBatchEnabled":true|false,"stateDir":..,
                   "storeDir":..,"impl":"rocketmq-rust"}
               (flushDiskType and commitLogMicroBatchEnabled as the broker itself reads its
               config file). --flush defaults to ASYNC_FLUSH. --micro-batch sets the store's
               commitLogMicroBatchEnabled; without it the crate's default applies, which is
               on: the CommitLog append sequencer then waits up to
               commitLogMicroBatchMaxWaitMicros (50) for more requests whenever a batch is not
               full, which tokio's 1 ms timer rounds up to about 1 ms per lone append; off
               appends each request on its own.
               The config is a generated TOML file ([broker], [store]). Each -p key=value goes
               into it (later keys win): a dotted key names the TOML path
               (store.commitLogMicroBatchMaxWaitMicros=0); a Java name is mapped as the
               crate's properties converter maps it (brokerName, brokerIP1, bindAddress, ...);
               any other key lands in [broker] or, if the broker rejects it there, in [store].
               true, false and integers are typed, other values are strings. Already running,
               failure: as apache start.
rust stop      As apache stop (SIGTERM starts rocketmq-rust's graceful shutdown).
rust status    As apache status.
rust install   Only installs (builds both binaries unless present); prints the version.

State dirs: ${APACHE_DIR}
            (\$PETREL_REFERENCE_HOME/apache): Maven repository and classpath per version,
            state.env (pids, ports, dirs), logs/ (process output, GC logs, RocketMQ's own
            logs: rocketmqlogs/ the broker's, namesrv-rocketmqlogs/ the name server's; kept
            after stop, cleared at the next start).
            ${RUST_DIR}
            (\$PETREL_REFERENCE_HOME/rust): bin/ (the binaries), target/ (cargo's build
            cache), install-*.log, state.env, logs/ (namesrv.out and broker.out, the
            processes' only logs; broker-config.out, the broker's effective config). The two
            references keep separate state and can run at the same time.
Store:      a fresh mktemp dir under PETREL_REFERENCE_STORE_PARENT (default \${TMPDIR:-/tmp}),
            which also holds the JVMs' user.home and java.io.tmpdir (rust: HOME and
            ROCKETMQ_HOME with the generated config files); removed by stop.
JVM options: PETREL_REFERENCE_BROKER_JVM / PETREL_REFERENCE_NAMESRV_JVM replace the default
            tuning options (see the comments in this script); JAVA_HOME picks the java.
EOF
}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# JVM options.
# Followed: distribution/bin/runbroker.sh and runserver.sh of RocketMQ 5.x, Java >= 9 branch
# (G1 with 16 MiB regions, G1ReservePercent=25, IHOP 30, SoftRefLRUPolicyMSPerMB=0, rotating GC
# log, -OmitStackTraceInFastThrow, -UseLargePages; the name server with Metaspace 128m/320m).
# Differences and why:
#  - Heaps: runbroker.sh uses -Xms8g -Xmx8g and runserver.sh -Xms4g -Xmx4g, sized for a
#    dedicated server. This box has 2 cores and 24 GiB shared with the load generator, and the
#    commit log lives in the page cache, so the broker gets 4g and the name server (a small
#    route table) 1g. No -Xmn: the 5.x scripts set it only on the CMS (Java < 8) branch; with G1
#    a fixed young generation would switch off G1's pause-time driven sizing.
#  - -XX:MaxDirectMemorySize 15g -> 8g (scaled to the machine; the default store config does
#    not use the transient store pool, so this is only a ceiling).
#  - No -XX:+AlwaysPreTouch: pre-touching the heap slows start-up; note that the first seconds
#    of a run then pay the page faults of a fresh heap (warm up before measuring).
#  - No -XX:-UseBiasedLocking: biased locking is off by default since JDK 15 and the flag only
#    prints a deprecation warning on 17.
#  - No numactl --interleave=all: one NUMA node here.
#  - GC logs go to the state dir's logs/ instead of /dev/shm, so they outlive stop.
#  - No --add-opens: RocketMQ 5.x's broker and name server start on Java 17 without them.
# ---------------------------------------------------------------------------------------------
DEFAULT_BROKER_JVM="-server -Xms4g -Xmx4g -XX:+UseG1GC -XX:G1HeapRegionSize=16m -XX:G1ReservePercent=25 -XX:InitiatingHeapOccupancyPercent=30 -XX:SoftRefLRUPolicyMSPerMB=0 -XX:-OmitStackTraceInFastThrow -XX:MaxDirectMemorySize=8g -XX:-UseLargePages"
DEFAULT_NAMESRV_JVM="-server -Xms1g -Xmx1g -XX:MetaspaceSize=128m -XX:MaxMetaspaceSize=320m -XX:+UseG1GC -XX:G1HeapRegionSize=16m -XX:G1ReservePercent=25 -XX:InitiatingHeapOccupancyPercent=30 -XX:SoftRefLRUPolicyMSPerMB=0 -XX:-OmitStackTraceInFastThrow -XX:-UseLargePages"

# ---------------------------------------------------------------------------------------------
# Install: resolve org.apache.rocketmq:rocketmq-broker and rocketmq-namesrv with Maven into
# $APACHE_DIR/m2 and write the classpath once to $APACHE_DIR/<version>/classpath.
# ---------------------------------------------------------------------------------------------
M2_REPO="$APACHE_DIR/m2"

mvn_q() { mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$M2_REPO" "$@"; }

# Prints the 5.x versions published for both artifacts, newest first.
list_candidate_versions() {
  local a meta
  for a in rocketmq-broker rocketmq-namesrv; do
    # Resolving the RELEASE meta-version downloads the artifact's maven-metadata.
    mvn_q dependency:get -Dartifact="org.apache.rocketmq:$a:RELEASE:pom" -Dtransitive=false \
      >>"$APACHE_DIR/versions.log" 2>&1 \
      || die "could not read the versions of org.apache.rocketmq:$a from Maven (see $APACHE_DIR/versions.log)"
  done
  for a in rocketmq-broker rocketmq-namesrv; do
    for meta in "$M2_REPO/org/apache/rocketmq/$a"/maven-metadata-*.xml; do
      [[ -f $meta ]] || continue
      sed -n 's:.*<version>\(5\.[0-9][0-9.]*\)</version>.*:\1:p' "$meta"
    done | sort -u
  done | sort | uniq -d | sort -rV
}

# Resolves one version; succeeds if every jar resolved.
resolve_version() {
  local v="$1" dir="$APACHE_DIR/$1"
  mkdir -p "$dir"
  cat >"$dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>petrel.reference</groupId>
  <artifactId>apache-rocketmq-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.rocketmq</groupId><artifactId>rocketmq-broker</artifactId><version>$v</version></dependency>
    <dependency><groupId>org.apache.rocketmq</groupId><artifactId>rocketmq-namesrv</artifactId><version>$v</version></dependency>
  </dependencies>
</project>
EOF
  rm -f "$dir/classpath.tmp"
  if mvn_q -f "$dir/pom.xml" dependency:build-classpath -Dmdep.outputFile="$dir/classpath.tmp" >"$dir/install.log" 2>&1 \
    && [[ -s "$dir/classpath.tmp" ]]; then
    mv "$dir/classpath.tmp" "$dir/classpath"
    return 0
  fi
  log "Apache RocketMQ $v does not resolve from Maven Central: $(grep -m1 -o 'Could not [^(]*' "$dir/install.log" || tail -n1 "$dir/install.log")"
  return 1
}

classpath_ok() {
  local cp="$1" jar
  [[ -s $cp ]] || return 1
  while IFS= read -r -d ':' jar; do
    [[ -f $jar ]] || return 1
  done < <(tr -d '\n' <"$cp"; printf ':')
}

# Sets VERSION and CLASSPATH_FILE, installing if needed.
ensure_installed() {
  local v candidates=()
  mkdir -p "$APACHE_DIR"
  if [[ -n "${PETREL_APACHE_ROCKETMQ_VERSION:-}" ]]; then
    candidates=("$PETREL_APACHE_ROCKETMQ_VERSION")
  elif [[ -s "$APACHE_DIR/version" ]]; then
    candidates=("$(cat "$APACHE_DIR/version")")
  fi
  if ((${#candidates[@]})) && classpath_ok "$APACHE_DIR/${candidates[0]}/classpath"; then
    VERSION="${candidates[0]}"
    CLASSPATH_FILE="$APACHE_DIR/$VERSION/classpath"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: needed once to fetch Apache RocketMQ from Maven Central"
  local t0=$SECONDS
  if ((${#candidates[@]} == 0)); then
    log "looking up Apache RocketMQ 5.x releases on Maven Central"
    : >"$APACHE_DIR/versions.log"
    mapfile -t candidates < <(list_candidate_versions)
    ((${#candidates[@]})) || die "no 5.x release of rocketmq-broker and rocketmq-namesrv found on Maven Central"
    log "candidates, newest first: ${candidates[*]}"
  fi
  for v in "${candidates[@]}"; do
    log "installing Apache RocketMQ $v (broker + namesrv and dependencies) into $M2_REPO"
    if resolve_version "$v"; then
      VERSION="$v"
      CLASSPATH_FILE="$APACHE_DIR/$v/classpath"
      [[ -n "${PETREL_APACHE_ROCKETMQ_VERSION:-}" ]] || printf '%s\n' "$v" >"$APACHE_DIR/version"
      log "installed Apache RocketMQ $v in $((SECONDS - t0))s ($(du -sh "$M2_REPO" | cut -f1) in $M2_REPO)"
      return 0
    fi
  done
  die "no Apache RocketMQ 5.x version resolved (tried: ${candidates[*]}); see $APACHE_DIR/<version>/install.log"
}

# ---------------------------------------------------------------------------------------------
# Install (rust): cargo install the name server and broker crates once into $RUST_DIR/bin, with
# their own target dir in $RUST_DIR/target (kept, so a second crate and a rebuild reuse it).
# ---------------------------------------------------------------------------------------------
RUST_VERSION="1.0.0"
RUST_NAMESRV_BIN="$RUST_DIR/bin/rocketmq-namesrv-rust"
RUST_BROKER_BIN="$RUST_DIR/bin/rocketmq-broker-rust"

# Sets VERSION, building if needed.
ensure_installed_rust() {
  local crate bin t0=$SECONDS
  mkdir -p "$RUST_DIR"
  VERSION="$RUST_VERSION"
  [[ -x $RUST_NAMESRV_BIN && -x $RUST_BROKER_BIN ]] && return 0
  command -v cargo >/dev/null || die "cargo not found: needed once to build rocketmq-rust from crates.io"
  for crate in rocketmq-namesrv rocketmq-broker; do
    bin="$RUST_NAMESRV_BIN"
    [[ $crate == rocketmq-broker ]] && bin="$RUST_BROKER_BIN"
    [[ -x $bin ]] && continue
    log "building $crate $RUST_VERSION from crates.io into $RUST_DIR (cargo install, 2 jobs; about 25 min on 2 cores)"
    if ! CARGO_TARGET_DIR="$RUST_DIR/target" cargo install --locked --version "$RUST_VERSION" \
      --root "$RUST_DIR" -j 2 "$crate" >"$RUST_DIR/install-$crate.log" 2>&1 </dev/null; then
      log "cargo install $crate $RUST_VERSION failed; last lines of $RUST_DIR/install-$crate.log:"
      tail -n 30 "$RUST_DIR/install-$crate.log" >&2
      exit 1
    fi
    [[ -x $bin ]] || die "cargo install $crate succeeded but $bin is missing (see $RUST_DIR/install-$crate.log)"
  done
  log "installed rocketmq-rust $RUST_VERSION in $((SECONDS - t0))s ($(du -sh "$RUST_DIR/target" 2>/dev/null | cut -f1) build cache in $RUST_DIR/target)"
}

# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------
# True if pid is alive and is one of ours (its command line carries the store marker: the JVMs'
# -Dpetrel.reference.store=..., or its environment: the rust binaries'
# PETREL_REFERENCE_STORE=..., as they take no free-form argument), so a recycled pid is never
# signalled.
is_ours() {
  local pid="$1" marker="$2"
  local args f
  [[ -n $pid && -n $marker ]] || return 1
  for f in cmdline environ; do
    [[ -r /proc/$pid/$f ]] || continue
    # No pipe into grep -q here: under pipefail an early grep exit fails the pipeline (SIGPIPE).
    args="$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/$f")" || continue
    [[ $'\n'$args$'\n' == *$'\n'"$marker"$'\n'* ]] && return 0
  done
  return 1
}

# True while pid exists and is not a zombie (the JVMs are our children until this script exits,
# so a dead one lingers as a zombie that kill -0 would still find).
alive() {
  local pid="$1" stat
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ ${stat:0:1} != Z ]]
}

load_state() {
  [[ -f $STATE_FILE ]] || return 1
  # shellcheck source=/dev/null
  source "$STATE_FILE"
}

write_state() {
  {
    printf 'STORE_DIR=%q\n' "$STORE_DIR"
    printf 'MARKER=%q\n' "$MARKER"
    printf 'NAMESRV_PID=%q\n' "${NAMESRV_PID:-}"
    printf 'BROKER_PID=%q\n' "${BROKER_PID:-}"
    printf 'NAMESRV_PORT=%q\n' "$NAMESRV_PORT"
    printf 'BROKER_PORT=%q\n' "$BROKER_PORT"
    printf 'VERSION=%q\n' "$VERSION"
    printf 'FLUSH=%q\n' "$FLUSH"
    printf 'MICRO_BATCH=%q\n' "${MICRO_BATCH:-}"
    printf 'READY_JSON=%q\n' "${READY_JSON:-}"
  } >"$STATE_FILE.tmp"
  mv "$STATE_FILE.tmp" "$STATE_FILE"
}

now_ms() { date +%s%3N; }

# SIGTERM, wait up to $4 seconds, then SIGKILL.
stop_pid() {
  local name="$1" pid="$2" marker="$3" timeout="$4" t0 deadline
  is_ours "$pid" "$marker" || return 0
  log "stopping $name (pid $pid)"
  t0="$(now_ms)"
  deadline=$((t0 + timeout * 1000))
  kill -TERM "$pid" 2>/dev/null || true
  while is_ours "$pid" "$marker" && (($(now_ms) < deadline)); do
    sleep 0.1
  done
  if is_ours "$pid" "$marker"; then
    log "$name (pid $pid) still alive ${timeout}s after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$(($(now_ms) + 10000))
    while is_ours "$pid" "$marker" && (($(now_ms) < deadline)); do
      sleep 0.1
    done
    ! is_ours "$pid" "$marker" || die "$name (pid $pid) survived SIGKILL"
  fi
  local ms=$(($(now_ms) - t0))
  log "$name stopped after $((ms / 1000)).$((ms % 1000 / 100))s"
}

remove_store() {
  local dir="$1"
  [[ -n $dir && ( $dir == */petrel-reference-apache.* || $dir == */petrel-reference-rust.* ) ]] || return 0
  rm -rf -- "$dir"
}

# Stops whatever the state file names and removes its store and the state file.
teardown() {
  stop_pid broker "${BROKER_PID:-}" "$MARKER" "$STOP_TIMEOUT"
  # The name server keeps nothing worth a graceful stop, and its shutdown hook sometimes
  # waits much longer when stopped seconds after start-up: give it at most 10 s.
  stop_pid namesrv "${NAMESRV_PID:-}" "$MARKER" "$((STOP_TIMEOUT < 10 ? STOP_TIMEOUT : 10))"
  remove_store "${STORE_DIR:-}"
  rm -f "$STATE_FILE"
}

# Picks a free name-server port and a broker listenPort whose VIP (listenPort-2) and HA
# (listenPort+1) neighbours are free too. Ports come from below the kernel's ephemeral range so
# outgoing connections made later cannot grab them. Prints "namesrvPort brokerPort".
pick_ports() {
  python3 - <<'EOF'
import random, socket
lo = 20000
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        eph = int(f.read().split()[0])
except OSError:
    eph = 32768
hi = max(lo + 1000, min(eph, 65000)) - 2

def free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()

rng = random.SystemRandom()
for _ in range(500):
    ns = rng.randrange(lo, hi)
    br = rng.randrange(lo + 2, hi)
    group = {ns, br - 2, br - 1, br, br + 1}
    if len(group) == 5 and all(free(p) for p in group):
        print(ns, br)
        break
else:
    raise SystemExit("no free ports found")
EOF
}

# Asks the name server for TBW102's route (remoting code 105, JSON header) until it names the
# broker, a watched process dies, or $1 seconds pass. Run it in the background only: it execs.
wait_for_route() {
  exec python3 - "$NAMESRV_PORT" "127.0.0.1:$BROKER_PORT" "$1" "$NAMESRV_PID" "$BROKER_PID" <<'EOF'
import json, os, socket, struct, sys, time
port, want, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
pids = [int(p) for p in sys.argv[4:]]
deadline = time.monotonic() + timeout
last = "no answer yet"

def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf

def query(opaque):
    header = json.dumps({"code": 105, "language": "JAVA", "version": 0, "opaque": opaque,
                         "flag": 0, "extFields": {"topic": "TBW102"},
                         "serializeTypeCurrentRPC": "JSON"}).encode()
    frame = struct.pack(">II", 4 + len(header), len(header)) + header
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(frame)
        total = struct.unpack(">I", recv_exact(s, 4))[0]
        data = recv_exact(s, total)
    hlen = struct.unpack(">I", data[:4])[0] & 0xFFFFFF
    head = json.loads(data[4:4 + hlen])
    return head, data[4 + hlen:].decode("utf-8", "replace")

opaque = 0
while True:
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                dead = f.read().rsplit(") ", 1)[1].startswith("Z")
        except (OSError, IndexError):
            dead = True
        if dead:
            print(f"process {pid} exited while waiting for the route", file=sys.stderr)
            sys.exit(2)
    opaque += 1
    try:
        head, body = query(opaque)
        if head.get("code") == 0 and want in body and "broker-a" in body:
            sys.exit(0)
        last = f"code {head.get('code')}: {head.get('remark') or body[:200]}"
    except (OSError, ValueError) as e:
        last = f"{type(e).__name__}: {e}"
    if time.monotonic() > deadline:
        print(f"no route for TBW102 via {want} after {timeout:.0f}s; last answer: {last}",
              file=sys.stderr)
        sys.exit(1)
    time.sleep(0.25)
EOF
}

json_str() {
  python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"
}

POLL_PID=""

start_failed() {
  local why="$1" f files
  [[ -z $POLL_PID ]] || kill "$POLL_PID" 2>/dev/null || true
  log "start failed: $why"
  files=("$LOG_DIR/namesrv.out" "$LOG_DIR/broker.out" "$LOG_DIR/rocketmqlogs/broker.log")
  if [[ $IMPL == rust ]]; then
    # The broker's config check runs before anything starts: only of interest if it failed.
    files=("$LOG_DIR/namesrv.out" "$LOG_DIR/broker.out")
    [[ -n ${NAMESRV_PID:-} ]] || files=("$LOG_DIR/broker-config.out" "${files[@]}")
  fi
  for f in "${files[@]}"; do
    if [[ -s $f ]]; then
      log "---- last lines of $f"
      # rocketmq-rust colours its console log and has no switch for it: strip the escapes.
      tail -n 25 "$f" | sed $'s/\x1b\\[[0-9;]*m//g' >&2
    fi
  done
  teardown
  die "$REF_NAME did not start; logs kept in $LOG_DIR"
}

# Starts Apache RocketMQ's name server and broker. Uses cmd_start's locals (STORE_DIR, ports,
# props, t0, deadline, ready_json), as the rust variant below does.
launch_apache() {
  mkdir -p "$LOG_DIR/rocketmqlogs" "$LOG_DIR/namesrv-rocketmqlogs" "$STORE_DIR/home/logs" \
    "$STORE_DIR/namesrv-home/logs" "$STORE_DIR/tmp" "$STORE_DIR/store/commitlog" "$STORE_DIR/rocketmq-home/conf"
  # RocketMQ writes its logs to ${user.home}/logs/rocketmqlogs: keep them in the state dir. The
  # name server gets its own user.home because it picks the broker's logback file (file names
  # broker*.log) whenever the broker jar is on the classpath.
  ln -s "$LOG_DIR/rocketmqlogs" "$STORE_DIR/home/logs/rocketmqlogs"
  ln -s "$LOG_DIR/namesrv-rocketmqlogs" "$STORE_DIR/namesrv-home/logs/rocketmqlogs"

  local conf="$STORE_DIR/rocketmq-home/conf" p
  cat >"$conf/namesrv.conf" <<EOF
listenPort=$NAMESRV_PORT
bindAddress=127.0.0.1
EOF
  # As distribution/conf/broker.conf (cluster, name, id, role, deleteWhen, fileReservedTime),
  # plus loopback, ports, the temp store and auto-creation of topics.
  cat >"$conf/broker.conf" <<EOF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
deleteWhen=04
fileReservedTime=48
brokerRole=ASYNC_MASTER
flushDiskType=$FLUSH
autoCreateTopicEnable=true
brokerIP1=127.0.0.1
bindAddress=127.0.0.1
namesrvAddr=127.0.0.1:$NAMESRV_PORT
listenPort=$BROKER_PORT
storePathRootDir=$STORE_DIR/store
storePathCommitLog=$STORE_DIR/store/commitlog
EOF
  for p in "${props[@]+"${props[@]}"}"; do
    printf '%s\n' "$p" >>"$conf/broker.conf"
  done

  local broker_jvm_s="${PETREL_REFERENCE_BROKER_JVM:-$DEFAULT_BROKER_JVM}"
  local namesrv_jvm_s="${PETREL_REFERENCE_NAMESRV_JVM:-$DEFAULT_NAMESRV_JVM}"
  local broker_jvm namesrv_jvm
  read -r -a broker_jvm <<<"$broker_jvm_s"
  read -r -a namesrv_jvm <<<"$namesrv_jvm_s"
  broker_jvm+=("-Xlog:gc*:file=$LOG_DIR/rmq_broker_gc_%p_%t.log:time,tags:filecount=5,filesize=30M")
  namesrv_jvm+=("-Xlog:gc*:file=$LOG_DIR/rmq_srv_gc_%p_%t.log:time,tags:filecount=5,filesize=30M")
  local sysprops=("$MARKER" "-Djava.io.tmpdir=$STORE_DIR/tmp" "-Drocketmq.home.dir=$STORE_DIR/rocketmq-home")
  local cp
  cp="$(tr -d '\n' <"$CLASSPATH_FILE")"

  log "starting Apache RocketMQ $VERSION name server on 127.0.0.1:$NAMESRV_PORT (store $STORE_DIR)"
  ROCKETMQ_HOME="$STORE_DIR/rocketmq-home" setsid "$JAVA" "${namesrv_jvm[@]}" "${sysprops[@]}" "-Duser.home=$STORE_DIR/namesrv-home" -cp "$cp" \
    org.apache.rocketmq.namesrv.NamesrvStartup -c "$conf/namesrv.conf" \
    >"$LOG_DIR/namesrv.out" 2>&1 </dev/null 9>&- &
  NAMESRV_PID=$!
  write_state

  # One deadline for the whole start-up: the name server's boot, then the broker's route.
  deadline=$((SECONDS + START_TIMEOUT))
  until grep -q 'boot success' "$LOG_DIR/namesrv.out" 2>/dev/null; do
    alive "$NAMESRV_PID" || start_failed "the name server exited"
    ((SECONDS < deadline)) || start_failed "the name server did not boot in ${START_TIMEOUT}s"
    sleep 0.1
  done
  is_ours "$NAMESRV_PID" "$MARKER" || start_failed "pid $NAMESRV_PID is not the name server's JVM"
  log "name server up after $((SECONDS - t0))s"

  log "starting broker on 127.0.0.1:$BROKER_PORT (flushDiskType=$FLUSH)"
  ROCKETMQ_HOME="$STORE_DIR/rocketmq-home" setsid "$JAVA" "${broker_jvm[@]}" "${sysprops[@]}" "-Duser.home=$STORE_DIR/home" -cp "$cp" \
    org.apache.rocketmq.broker.BrokerStartup -c "$conf/broker.conf" -n "127.0.0.1:$NAMESRV_PORT" \
    >"$LOG_DIR/broker.out" 2>&1 </dev/null 9>&- &
  BROKER_PID=$!
  write_state

  ready_json="{\"namesrvAddr\":\"127.0.0.1:$NAMESRV_PORT\",\"brokerAddr\":\"127.0.0.1:$BROKER_PORT\",\"version\":\"$VERSION\",\"flushDiskType\":\"$FLUSH\",\"jvm\":$(json_str "${broker_jvm[*]}"),\"stateDir\":$(json_str "$APACHE_DIR"),\"namesrvJvm\":$(json_str "${namesrv_jvm[*]}"),\"storeDir\":$(json_str "$STORE_DIR")}"
}

# ---------------------------------------------------------------------------------------------
# rocketmq-rust configuration (read from the 1.0.0 crates' sources):
#  - Name server (rocketmq-namesrv, src/bin/namesrv_bootstrap_server.rs): -c FILE, read with the
#    `config` crate, so the format follows the extension (TOML here). Keys: NamesrvConfig's
#    camelCase aliases (src/config.rs: rocketmqHome, kvConfigPath, configStorePath, ...) plus the
#    transport's listenPort and bindAddress (RuntimeTransportOverrides; default 0.0.0.0:9876).
#    kvConfigPath and configStorePath default to ~/rocketmq-namesrv/: moved into the store.
#  - Broker (rocketmq-broker, src/command.rs, src/bin/broker_bootstrap_server.rs): -c FILE,
#    canonical TOML (.toml) or Java properties (.conf/.properties, converted). TOML is used
#    because the converter has no key for the listener's bind address. Sections
#    (src/config/raw.rs, all deny unknown keys): [broker] = BrokerConfig
#    (src/config/broker_config.rs: brokerIp1, listenPort, namesrvAddr, storePathRootDir,
#    autoCreateTopicEnable, [broker.brokerIdentity] brokerName/brokerClusterName/brokerId,
#    [broker.brokerServerConfig] bindAddress) and [store] = rocketmq-store's MessageStoreConfig
#    (src/config/message_store_config.rs: brokerRole, flushDiskType, storePathRootDir,
#    storePathCommitLog, deleteWhen, fileReservedTime, haListenAddress, haListenPort,
#    commitLogMicroBatchEnabled). -n ADDR overrides namesrvAddr. The HA port does not follow
#    listenPort as in Java (default 10912): set to listenPort+1 on 127.0.0.1.
#  - Both need ROCKETMQ_HOME (else the working directory) and keep defaults under $HOME, which
#    points into the store. Logs go to stdout only (no file logging by default). SIGTERM starts
#    a graceful shutdown bounded by ROCKETMQ_SHUTDOWN_TIMEOUT_SECONDS (default 45).
#  - commitLogMicroBatchEnabled (default true; maxItems 32, maxBytes 1 MiB, maxWaitMicros 50):
#    the CommitLog append sequencer waits up to maxWait for adjacent requests whenever a batch is
#    not full; tokio's timer has 1 ms resolution, so a lone append waits about 1 ms
#    (rocketmq-store-local src/commit_log/append/sequencer.rs). off = one request per batch.
# ---------------------------------------------------------------------------------------------

# Writes the broker's TOML file $1 for binary $2 from the base settings ("path=value") given
# before "--" and the -p overrides after it. A -p key is a dotted path (store.haSendHeartbeatInterval),
# a Java name the crate's own properties converter maps elsewhere (brokerName, brokerClusterName,
# brokerId, brokerIP1, brokerIP2, bindAddress, storePathRootDir, logFilter), a key already set, or else
# goes into [broker] or, if the broker's parser rejects it there, [store]: the converter's order,
# tried with the broker itself (-p prints the config and exits, opening nothing). Values: true,
# false and plain integers are typed, the rest are strings (a typed value the parser rejects is
# retried as a string).
write_rust_broker_conf() {
  python3 - "$@" <<'EOF'
import json, os, re, subprocess, sys, tempfile

out, binary = sys.argv[1], sys.argv[2]
base, props = [], []
dest = base
for a in sys.argv[3:]:
    if a == "--" and dest is base:
        dest = props
        continue
    dest.append(a)

JAVA = {
    "brokerName": [["broker", "brokerIdentity", "brokerName"]],
    "brokerClusterName": [["broker", "brokerIdentity", "brokerClusterName"]],
    "brokerId": [["broker", "brokerIdentity", "brokerId"]],
    "brokerIP1": [["broker", "brokerIp1"]],
    "brokerIP2": [["broker", "brokerIp2"]],
    "bindAddress": [["broker", "brokerServerConfig", "bindAddress"]],
    "storePathRootDir": [["broker", "storePathRootDir"], ["store", "storePathRootDir"]],
    "logFilter": [["logFilter"]],
}

def typed(v):
    if v in ("true", "false"):
        return v == "true"
    if re.fullmatch(r"-?(0|[1-9][0-9]*)", v):
        return int(v)
    return v

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(v)

def toml_key(k):
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

def render(conf):
    lines = []
    def emit(table, path):
        scalars = [(k, v) for k, v in table.items() if not isinstance(v, dict)]
        tables = [(k, v) for k, v in table.items() if isinstance(v, dict)]
        if path and scalars:
            lines.append("[" + ".".join(toml_key(p) for p in path) + "]")
        for k, v in scalars:
            lines.append(f"{toml_key(k)} = {toml_value(v)}")
        for k, v in tables:
            emit(v, path + [k])
    emit(conf, [])
    return "\n".join(lines) + "\n"

def put(conf, path, value):
    for p in path[:-1]:
        conf = conf.setdefault(p, {})
        if not isinstance(conf, dict):
            sys.exit(f"-p {'.'.join(path)}: {p} is a value, not a section")
    if isinstance(conf.get(path[-1]), dict):
        sys.exit(f"-p {'.'.join(path)}: is a section, not a value")
    conf[path[-1]] = value

def set_paths(conf, key):
    hits = []
    def walk(table, path):
        for k, v in table.items():
            if isinstance(v, dict):
                walk(v, path + [k])
            elif k == key:
                hits.append(path + [k])
    walk(conf, [])
    return hits

def accepted(conf):
    fd, name = tempfile.mkstemp(suffix=".toml", dir=os.path.dirname(out))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(render(conf))
        r = subprocess.run([binary, "-c", name, "-p"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        lines = [l for l in re.sub(r"\x1b\[[0-9;]*m", "", r.stderr).splitlines() if l.strip()]
        return r.returncode == 0, (lines[-1].strip() if lines else f"exit {r.returncode}")
    finally:
        os.unlink(name)

conf = {}
for item in base:
    k, v = item.split("=", 1)
    put(conf, k.split("."), typed(v))

for item in props:
    k, v = item.split("=", 1)
    paths = [k.split(".")] if "." in k else JAVA.get(k) or set_paths(conf, k)
    if paths:
        for p in paths:
            put(conf, p, typed(v))
        continue
    why = ""
    found = None
    for section in ("broker", "store"):
        for value in dict.fromkeys([typed(v), v]):
            trial = json.loads(json.dumps(conf))
            put(trial, [section, k], value)
            ok, why = accepted(trial)
            if ok:
                found = trial
                break
        if found:
            break
    if not found:
        sys.exit(f"-p {k}={v}: neither [broker] nor [store] of the broker accepts it (its last error: {why})")
    conf = found

with open(out, "w") as f:
    f.write(render(conf))
EOF
}

# True once something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts rocketmq-rust's name server and broker (see the configuration notes above).
launch_rust() {
  local home="$STORE_DIR/rocketmq-home"
  local conf="$home/conf"
  mkdir -p "$LOG_DIR" "$conf" "$STORE_DIR/home" "$STORE_DIR/namesrv-home" "$STORE_DIR/namesrv" \
    "$STORE_DIR/store/commitlog"
  cat >"$conf/namesrv.toml" <<EOF
rocketmqHome = $(json_str "$home")
kvConfigPath = $(json_str "$STORE_DIR/namesrv/kvConfig.json")
configStorePath = $(json_str "$STORE_DIR/namesrv/rocketmq-namesrv.properties")
listenPort = $NAMESRV_PORT
bindAddress = "127.0.0.1"
EOF
  # As the apache broker.conf (cluster, name, id, role, deleteWhen, fileReservedTime, loopback,
  # ports, the temp store, auto-creation of topics), plus the HA listener and micro-batching.
  local base=(
    "broker.brokerIdentity.brokerClusterName=DefaultCluster"
    "broker.brokerIdentity.brokerName=broker-a"
    "broker.brokerIdentity.brokerId=0"
    "broker.brokerServerConfig.bindAddress=127.0.0.1"
    "broker.brokerIp1=127.0.0.1"
    "broker.listenPort=$BROKER_PORT"
    "broker.namesrvAddr=127.0.0.1:$NAMESRV_PORT"
    "broker.storePathRootDir=$STORE_DIR/store"
    "broker.autoCreateTopicEnable=true"
    "store.brokerRole=ASYNC_MASTER"
    "store.flushDiskType=$FLUSH"
    "store.deleteWhen=04"
    "store.fileReservedTime=48"
    "store.storePathRootDir=$STORE_DIR/store"
    "store.storePathCommitLog=$STORE_DIR/store/commitlog"
    "store.haListenAddress=127.0.0.1"
    "store.haListenPort=$((BROKER_PORT + 1))"
  )
  case "$want_micro" in
    on) base+=("store.commitLogMicroBatchEnabled=true") ;;
    off) base+=("store.commitLogMicroBatchEnabled=false") ;;
  esac
  ROCKETMQ_HOME="$home" HOME="$STORE_DIR/home" write_rust_broker_conf "$conf/broker.toml" "$RUST_BROKER_BIN" \
    "${base[@]}" -- "${props[@]+"${props[@]}"}" 2>"$LOG_DIR/broker-config.out" \
    || start_failed "the broker configuration was rejected: $(tail -n 1 "$LOG_DIR/broker-config.out")"
  # The broker's own reading of the final file (-p: print all items and exit): validates it and
  # gives the effective values for the READY line. The file goes into the log too, as the store
  # (and the file with it) is removed on failure and the broker's error names no key.
  {
    echo "---- $conf/broker.toml"
    cat "$conf/broker.toml"
    echo "---- $RUST_BROKER_BIN -c $conf/broker.toml -p"
  } >>"$LOG_DIR/broker-config.out"
  ROCKETMQ_HOME="$home" HOME="$STORE_DIR/home" "$RUST_BROKER_BIN" -c "$conf/broker.toml" -p \
    >>"$LOG_DIR/broker-config.out" 2>&1 </dev/null 9>&- \
    || start_failed "the broker rejected its config file (rocketmq-rust's error names no key: check the -p values' types)"
  local eff_flush eff_micro
  eff_flush="$(sed -n 's/^ *flushDiskType: *//p' "$LOG_DIR/broker-config.out" | tail -n 1)"
  eff_micro="$(sed -n 's/^ *commitLogMicroBatchEnabled: *//p' "$LOG_DIR/broker-config.out" | tail -n 1)"
  [[ $eff_micro == true || $eff_micro == false ]] \
    || start_failed "the broker's printed config has no commitLogMicroBatchEnabled (see $LOG_DIR/broker-config.out)"
  [[ -n $eff_flush ]] || eff_flush="$FLUSH"
  MICRO_BATCH="$eff_micro"

  log "starting rocketmq-rust $VERSION name server on 127.0.0.1:$NAMESRV_PORT (store $STORE_DIR)"
  PETREL_REFERENCE_STORE="$STORE_DIR" ROCKETMQ_HOME="$home" HOME="$STORE_DIR/namesrv-home" \
    setsid "$RUST_NAMESRV_BIN" -c "$conf/namesrv.toml" >"$LOG_DIR/namesrv.out" 2>&1 </dev/null 9>&- &
  NAMESRV_PID=$!
  write_state

  # One deadline for the whole start-up: the name server's listener, then the broker's route.
  deadline=$((SECONDS + START_TIMEOUT))
  until port_open "$NAMESRV_PORT"; do
    alive "$NAMESRV_PID" || { exited_process; start_failed "$EXITED"; }
    ((SECONDS < deadline)) || start_failed "the name server did not listen on 127.0.0.1:$NAMESRV_PORT in ${START_TIMEOUT}s"
    sleep 0.1
  done
  is_ours "$NAMESRV_PID" "$MARKER" || start_failed "pid $NAMESRV_PID is not the name server"
  log "name server up after $((SECONDS - t0))s"

  log "starting broker on 127.0.0.1:$BROKER_PORT (flushDiskType=$eff_flush, commitLogMicroBatchEnabled=$eff_micro)"
  PETREL_REFERENCE_STORE="$STORE_DIR" ROCKETMQ_HOME="$home" HOME="$STORE_DIR/home" \
    setsid "$RUST_BROKER_BIN" -c "$conf/broker.toml" -n "127.0.0.1:$NAMESRV_PORT" \
    >"$LOG_DIR/broker.out" 2>&1 </dev/null 9>&- &
  BROKER_PID=$!
  write_state

  ready_json="{\"namesrvAddr\":\"127.0.0.1:$NAMESRV_PORT\",\"brokerAddr\":\"127.0.0.1:$BROKER_PORT\",\"version\":\"$VERSION\",\"flushDiskType\":$(json_str "$eff_flush"),\"commitLogMicroBatchEnabled\":$eff_micro,\"stateDir\":$(json_str "$RUST_DIR"),\"storeDir\":$(json_str "$STORE_DIR"),\"impl\":\"rocketmq-rust\"}"
}

# Sets EXITED to name the started process that has exited, with its exit status (both are
# children of this shell, so wait returns a dead one's status at once; not in a subshell, which
# could not wait for them).
EXITED=""
exited_process() {
  local which pid rc
  for which in broker "name server"; do
    pid="$BROKER_PID"
    [[ $which == broker ]] || pid="$NAMESRV_PID"
    if [[ -n $pid ]] && ! alive "$pid"; then
      rc=0
      wait "$pid" 2>/dev/null || rc=$?
      EXITED="the $which (pid $pid) exited with status $rc"
      return 0
    fi
  done
  EXITED="a JVM exited"
  [[ $IMPL == apache ]] || EXITED="a process exited"
}

cmd_start() {
  local want_flush="ASYNC_FLUSH" want_micro="" props=()
  while (($#)); do
    case "$1" in
      --flush) (($# >= 2)) || die "--flush needs ASYNC_FLUSH or SYNC_FLUSH"; want_flush="$2"; shift 2 ;;
      --flush=*) want_flush="${1#--flush=}"; shift ;;
      --micro-batch | --micro-batch=*)
        [[ $IMPL == rust ]] || die "$IMPL start: --micro-batch is a rocketmq-rust setting (rust start only)"
        if [[ $1 == --micro-batch ]]; then
          (($# >= 2)) || die "--micro-batch needs on or off"; want_micro="$2"; shift 2
        else
          want_micro="${1#--micro-batch=}"; shift
        fi
        ;;
      -p) (($# >= 2)) || die "-p needs key=value"; props+=("$2"); shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) die "$IMPL start: unknown argument '$1' (see --help)" ;;
    esac
  done
  case "$want_flush" in
    ASYNC_FLUSH | SYNC_FLUSH) ;;
    *) die "--flush must be ASYNC_FLUSH or SYNC_FLUSH, not '$want_flush'" ;;
  esac
  case "$want_micro" in
    "" | on | off) ;;
    *) die "--micro-batch must be on or off, not '$want_micro'" ;;
  esac
  local p
  for p in "${props[@]+"${props[@]}"}"; do
    [[ $p == ?*=* ]] || die "-p expects key=value, got '$p'"
  done
  [[ $IMPL == rust ]] || command -v "$JAVA" >/dev/null || die "java not found ($JAVA)"
  command -v python3 >/dev/null || die "python3 not found (used to pick ports and poll the route)"

  local STORE_DIR="" MARKER="" NAMESRV_PID="" BROKER_PID="" NAMESRV_PORT="" BROKER_PORT="" VERSION="" FLUSH="" MICRO_BATCH="" READY_JSON=""
  if load_state; then
    if is_ours "${BROKER_PID:-}" "$MARKER" || is_ours "${NAMESRV_PID:-}" "$MARKER"; then
      log "$IMPL reference broker is already running (broker pid ${BROKER_PID:-?}, namesrv pid ${NAMESRV_PID:-?}); run '$PROG $IMPL stop' first"
      [[ -z ${READY_JSON:-} ]] || log "running: $READY_JSON"
      exit 1
    fi
    log "cleaning up a stale state (processes gone)"
    teardown
  fi

  local CLASSPATH_FILE
  if [[ $IMPL == rust ]]; then
    ensure_installed_rust
  else
    ensure_installed
  fi

  local t0=$SECONDS deadline ready_json=""
  FLUSH="$want_flush" NAMESRV_PID="" BROKER_PID="" MICRO_BATCH="" READY_JSON=""
  mkdir -p "$STORE_PARENT"
  STORE_DIR="$(mktemp -d "$STORE_PARENT/petrel-reference-$IMPL.XXXXXX")"
  if [[ $IMPL == rust ]]; then
    MARKER="PETREL_REFERENCE_STORE=$STORE_DIR"
  else
    MARKER="-Dpetrel.reference.store=$STORE_DIR"
  fi
  read -r NAMESRV_PORT BROKER_PORT < <(pick_ports) || { remove_store "$STORE_DIR"; die "could not pick free ports"; }
  [[ -n ${BROKER_PORT:-} ]] || { remove_store "$STORE_DIR"; die "could not pick free ports"; }
  write_state
  # Interrupted half-way: stop what was started rather than leave it to a later stop.
  trap 'trap - INT TERM; start_failed "interrupted"' INT TERM

  rm -rf "$LOG_DIR"
  if [[ $IMPL == rust ]]; then
    launch_rust
  else
    launch_apache
  fi

  # In the background so that an INT/TERM trap runs at once instead of after the poll.
  local rc=0
  wait_for_route $((deadline - SECONDS > 1 ? deadline - SECONDS : 1)) &
  POLL_PID=$!
  wait "$POLL_PID" || rc=$?
  POLL_PID=""
  case $rc in
    0) ;;
    1) start_failed "the name server served no TBW102 route through the broker within ${START_TIMEOUT}s" ;;
    2) exited_process; start_failed "$EXITED during start-up" ;;
    *) start_failed "polling the route failed (exit $rc)" ;;
  esac
  local what="broker's JVM"
  [[ $IMPL == rust ]] && what="broker's process"
  is_ours "$BROKER_PID" "$MARKER" || start_failed "pid $BROKER_PID is not the $what"

  READY_JSON="$ready_json"
  write_state
  trap - INT TERM
  log "ready in $((SECONDS - t0))s (broker pid $BROKER_PID, namesrv pid $NAMESRV_PID)"
  printf 'REFERENCE READY %s\n' "$READY_JSON"
}

cmd_stop() {
  (($# == 0)) || die "$IMPL stop takes no arguments"
  local STORE_DIR="" MARKER="" NAMESRV_PID="" BROKER_PID="" NAMESRV_PORT="" BROKER_PORT="" VERSION="" FLUSH="" MICRO_BATCH="" READY_JSON=""
  if ! load_state; then
    log "$IMPL reference broker is not running"
    return 0
  fi
  teardown
  log "$IMPL reference broker stopped; store removed (logs kept in $LOG_DIR)"
}

cmd_status() {
  (($# == 0)) || die "$IMPL status takes no arguments"
  local STORE_DIR="" MARKER="" NAMESRV_PID="" BROKER_PID="" NAMESRV_PORT="" BROKER_PORT="" VERSION="" FLUSH="" MICRO_BATCH="" READY_JSON=""
  if ! load_state; then
    echo "not running"
    exit 3
  fi
  local b=0 n=0
  is_ours "$BROKER_PID" "$MARKER" && b=1
  is_ours "$NAMESRV_PID" "$MARKER" && n=1
  if ((b && n)); then
    echo "running (broker pid $BROKER_PID, namesrv pid $NAMESRV_PID) ${READY_JSON}"
    exit 0
  elif ((b || n)); then
    local bs="down" ns="down"
    ((b)) && bs="up (pid $BROKER_PID)"
    ((n)) && ns="up (pid $NAMESRV_PID)"
    echo "degraded: broker $bs, namesrv $ns; run '$PROG $IMPL stop'"
    exit 1
  fi
  echo "not running (stale state: run '$PROG $IMPL stop' to clean up)"
  exit 3
}

cmd_install() {
  local VERSION CLASSPATH_FILE
  if [[ $IMPL == rust ]]; then
    ensure_installed_rust
    echo "$VERSION $RUST_DIR/bin"
    return 0
  fi
  ensure_installed
  echo "$VERSION $CLASSPATH_FILE"
}

main() {
  (($#)) || { usage >&2; exit 2; }
  case "$1" in
    -h | --help) usage; exit 0 ;;
    apache) IMPL=apache REF_DIR="$APACHE_DIR" REF_NAME="Apache RocketMQ"; shift ;;
    rust) IMPL=rust REF_DIR="$RUST_DIR" REF_NAME="rocketmq-rust"; shift ;;
    *) log "unknown reference '$1' (apache or rust)"; usage >&2; exit 2 ;;
  esac
  STATE_FILE="$REF_DIR/state.env"
  LOG_DIR="$REF_DIR/logs"
  (($#)) || { usage >&2; exit 2; }
  local cmd="$1"
  shift
  case "$cmd" in
    -h | --help) usage; exit 0 ;;
    start | stop | install)
      mkdir -p "$REF_DIR"
      # One start/stop/install at a time (per reference: apache and rust can run side by side).
      exec 9>"$REF_DIR/.lock"
      flock -w 600 9 || die "another $PROG run holds $REF_DIR/.lock"
      "cmd_$cmd" "$@"
      ;;
    status) cmd_status "$@" ;;
    *) log "unknown command '$cmd' (start, stop, status, install)"; usage >&2; exit 2 ;;
  esac
}

main "$@"
