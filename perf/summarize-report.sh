#!/usr/bin/env bash
# Writes OUT_DIR/summary.md from what perf/run-report.sh left in OUT_DIR: one table per
# reference (Petrel = A, the reference = B; medians over rounds and the median of the per-round
# ratios A/B), Petrel's max rate against this machine's ceiling, and SYNC_FLUSH against
# ASYNC_FLUSH.
#
#   perf/summarize-report.sh OUT_DIR
set -euo pipefail

[[ $# -eq 1 && -d $1 ]] || { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
OUT="$1"
SUMMARY="$OUT/summary.md"

fmt_row() { # compare.json metric label
  jq -r --arg m "$2" --arg what "$3" '
    .metrics[$m] as $x
    | "| \(.workload.name) \(if .workload.producerRate > 0 then "@ \(.workload.producerRate | floor) msg/s" else "(max rate)" end) | \($what) | \($x.median_a * 1000 | round / 1000) | \($x.median_b * 1000 | round / 1000) | \(if $x.median_ratio == null then "–" else ($x.median_ratio * 100 | round / 100 | tostring) end) | \(.rounds) |"' "$1"
}

{
  echo "# Petrel performance report"
  echo
  echo "Made by \`perf/run-report.sh\`; the exact commands are in \`commands.txt\`. Every comparison"
  echo "ran Petrel (A) and the reference (B) alternately, A B A B …, on the same host in the same"
  echo "session; ratios are medians of per-round ratios A/B. Latencies in ms, rates in msg/s."
  if [[ -f $OUT/ceiling/ceiling.md ]]; then
    echo
    sed -n '3p' "$OUT/ceiling/ceiling.md"
  fi
  for dir in "$OUT"/*/; do
    label="$(basename "$dir")"
    [[ $label == ceiling ]] && continue
    compares=("$dir"*/compare.json)
    [[ -f ${compares[0]} ]] || continue
    echo
    echo "## Petrel vs $label"
    echo
    echo "| workload | metric | Petrel | $label | Petrel/$label | rounds |"
    echo "|---|---|---:|---:|---:|---:|"
    for c in "${compares[@]}"; do
      fmt_row "$c" publish_rate "publish rate"
      fmt_row "$c" publish_latency_ms.p99 "publish p99"
      fmt_row "$c" e2e_latency_ms.p99 "end-to-end p99"
      fmt_row "$c" generator_cpu "generator CPU (cores)"
    done
  done
  max="$OUT/apache/max-rate-16p-1kb/compare.json"
  ceiling="$OUT/ceiling/ceiling.json"
  if [[ -f $max && -f $ceiling ]]; then
    echo
    echo "## Petrel against this host's ceiling (1 KiB, 16 queues, max rate, ASYNC_FLUSH)"
    echo
    jq -rn --slurpfile m "$max" --slurpfile c "$ceiling" '
      ($m[0].metrics.publish_rate.median_a) as $rate
      | ($c[0].sizes[] | select(.message_size == 1024)) as $s
      | "Petrel \($rate | round) msg/s = \($rate / $s.tcp_stream_msgs_per_sec * 1000 | round / 10) % of loopback TCP streaming (\($s.tcp_stream_msgs_per_sec | round) msg/s) and \($rate / $s.disk_no_fsync_msgs_per_sec * 1000 | round / 10) % of sequential append without fsync (\($s.disk_no_fsync_msgs_per_sec | round) msg/s)."'
  fi
  sync="$OUT/apache-sync-flush/max-rate-16p-1kb/compare.json"
  if [[ -f $max && -f $sync ]]; then
    echo
    jq -rn --slurpfile a "$max" --slurpfile s "$sync" '
      ($a[0].metrics.publish_rate.median_a) as $async | ($s[0].metrics.publish_rate.median_a) as $sync
      | "SYNC_FLUSH (group commit): Petrel \($sync | round) msg/s = \($sync / $async * 100 | round) % of its ASYNC_FLUSH rate (\($async | round) msg/s), from two separate comparisons in the same session."'
  fi
} >"$SUMMARY"
echo "$SUMMARY"
