#!/usr/bin/env bash
# Produces a performance report: this machine's ceiling, then Petrel against each reference
# broker with `petrel-bench compare` (A = Petrel, B = the reference, alternating per round),
# for the shipped workloads scaled by DURATION/WARMUP. Petrel restarts on a fresh store before
# each workload (a max-rate run writes gigabytes and nothing is deleted by retention yet); a
# reference stays up across the workloads of one flush mode, so its JIT stays warm. Everything
# lands in OUT_DIR, with the commands that were run in OUT_DIR/commands.txt, and
# OUT_DIR/summary.md sums it up. Keep the machine otherwise idle meanwhile.
#
#   perf/run-report.sh OUT_DIR [apache] [rust] [rust-nomicrobatch]
#
# Environment: ROUNDS (3), DURATION (20 s measured per run), WARMUP (5 s per run),
# STORE_PARENT (where Petrel's store goes; default ${TMPDIR:-/tmp}).
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
[[ $# -ge 1 && $1 != -h && $1 != --help ]] || { usage; exit 2; }

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
REFS=("$@")
[[ ${#REFS[@]} -gt 0 ]] || REFS=(apache)
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-5}"
STORE_PARENT="${STORE_PARENT:-${TMPDIR:-/tmp}}"
BENCH="$ROOT/target/release/petrel-bench"
WL="$ROOT/bench-harness/workloads"
REF="$ROOT/perf/reference-broker.sh"
CMDS="$OUT/commands.txt"
PETREL_PID=""
PETREL_STORE=""

log() { printf 'run-report: %s\n' "$*" >&2; }
record() { printf '%s\n' "$*" >>"$CMDS"; log "$*"; "$@"; }

stop_petrel() {
  if [[ -n $PETREL_PID ]]; then
    kill -TERM "$PETREL_PID" 2>/dev/null || true
    wait "$PETREL_PID" 2>/dev/null || true
    PETREL_PID=""
  fi
  [[ -z $PETREL_STORE ]] || rm -rf "$PETREL_STORE"
  PETREL_STORE=""
}
trap 'stop_petrel' EXIT

# Starts petrel standalone with free ports; sets PETREL_NS.
start_petrel() {
  local flush="$1" ready
  stop_petrel
  PETREL_STORE="$(mktemp -d "$STORE_PARENT/petrel-report.XXXXXX")"
  echo "petrel standalone -p flushDiskType=$flush -p topicProduceTpsLimit=0 -p topicConsumeTpsLimit=0 (free ports, store $PETREL_STORE)" >>"$CMDS"
  coproc PETREL_PROC { exec "$ROOT/target/release/petrel" standalone -p namesrvListenPort=0 \
    -p listenPort=0 -p "flushDiskType=$flush" -p "storePathRootDir=$PETREL_STORE" \
    -p topicProduceTpsLimit=0 -p topicConsumeTpsLimit=0 \
    2>"$OUT/petrel-$flush.log"; }
  PETREL_PID=$PETREL_PROC_PID
  read -r -t 60 ready <&"${PETREL_PROC[0]}" || { log "petrel did not start"; exit 1; }
  PETREL_NS="$(jq -r .namesrvAddr <<<"${ready#PETREL READY }")"
}

# Starts a reference broker; sets REF_NS.
start_ref() {
  local kind="$1" flush="$2" extra=() ready
  case $kind in
    rust-nomicrobatch) extra=(--micro-batch off); kind=rust ;;
  esac
  "$REF" "$kind" stop >/dev/null 2>&1 || true
  echo "$REF $kind start --flush $flush ${extra[*]}" >>"$CMDS"
  ready="$("$REF" "$kind" start --flush "$flush" "${extra[@]}" | grep '^REFERENCE READY ')"
  REF_NS="$(jq -r .namesrvAddr <<<"${ready#REFERENCE READY }")"
  echo "${ready#REFERENCE READY }" >"$OUT/reference-$1-$flush.json"
}

compare() { # name workload rounds duration [overrides...]
  local name="$1" workload="$2" rounds="$3" duration="$4"
  shift 4
  start_petrel "$FLUSH"
  record "$BENCH" compare --a "$PETREL_NS" --b "$REF_NS" --a-label Petrel --b-label "$LABEL" \
    --workload "$WL/$workload" --rounds "$rounds" --duration-secs "$duration" \
    --warmup-secs "$WARMUP" --out "$OUT/$LABEL/$name" "$@" >/dev/null
}

median_a() { jq -r ".metrics[\"$2\"].median_a" "$OUT/$LABEL/$1/compare.json"; }

: >"$CMDS"
log "building release binaries"
cargo build --release -p petrel -p petrel-bench --manifest-path "$ROOT/Cargo.toml" >&2
record "$BENCH" ceiling --dir "$STORE_PARENT" --out "$OUT/ceiling" >/dev/null

for ref in "${REFS[@]}"; do
  LABEL="$ref"
  FLUSH=ASYNC_FLUSH
  start_ref "$ref" "$FLUSH"
  compare max-rate-16p-1kb max-rate-1-topic-16-partitions-1kb.yaml "$ROUNDS" "$DURATION"
  half="$(median_a max-rate-16p-1kb publish_rate | awk '{printf "%d", $1 / 2}')"
  compare half-rate-16p-1kb 1-topic-16-partitions-1kb.yaml "$ROUNDS" "$DURATION" --rate "$half"
  compare 10k-16p-1kb 1-topic-16-partitions-1kb.yaml "$ROUNDS" "$DURATION" --rate 10000
  if [[ $ref == apache ]]; then
    compare max-rate-1p-1c-100b max-rate-1-topic-1-partition-1p-1c-100b.yaml 1 "$DURATION"
    compare max-rate-1p-1c-1kb max-rate-1-topic-1-partition-1p-1c-1kb.yaml 1 "$DURATION"
    # 64 KiB messages at max rate write fast; ten seconds keep the stores small.
    compare max-rate-1p-1c-64kb max-rate-1-topic-1-partition-1p-1c-64kb.yaml 1 10
    compare sync-16p-1kb sync-1-topic-16-partitions-1kb.yaml 1 "$DURATION"
    compare batch-16p-1kb max-rate-1-topic-16-partitions-1kb-batch.yaml 1 "$DURATION"
    "$REF" "$ref" stop >/dev/null 2>&1 || true
    LABEL="$ref-sync-flush"
    FLUSH=SYNC_FLUSH
    start_ref "$ref" "$FLUSH"
    compare max-rate-16p-1kb max-rate-1-topic-16-partitions-1kb.yaml "$ROUNDS" "$DURATION"
  fi
  "$REF" "$ref" stop >/dev/null 2>&1 || true
done
stop_petrel
"$ROOT/perf/summarize-report.sh" "$OUT" >/dev/null
log "done: $OUT"
