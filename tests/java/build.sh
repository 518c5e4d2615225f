#!/usr/bin/env bash
# Builds the RocketMQ Java-client interop driver used by Petrel's Rust
# integration tests, if needed, and prints the jar path on the last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
jar="$here/target/petrel-interop.jar"
stale=0
if [[ ! -f "$jar" ]]; then
  stale=1
elif [[ "$here/pom.xml" -nt "$jar" ]]; then
  stale=1
elif [[ -n "$(find "$here/src" -type f -newer "$jar" -print -quit)" ]]; then
  stale=1
fi
if [[ $stale -eq 1 ]]; then
  mvn -q -B -f "$here/pom.xml" package -DskipTests >&2
fi
echo "$jar"
