#!/usr/bin/env bash
# Prints what this host offers a Petrel broker and warns about what will hurt. Changes nothing.
set -u
store=${1:-./petrel-data}
warn() { printf 'WARN  %s\n' "$*"; }
info() { printf 'ok    %s\n' "$*"; }

cpus=$(nproc)
info "CPUs online: $cpus (one shard per CPU by default)"
disabled=$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)
if [ "$disabled" != "0" ]; then warn "io_uring is disabled (kernel.io_uring_disabled=$disabled): glommio cannot start"; else info "io_uring allowed"; fi
memlock=$(ulimit -l)
if [ "$memlock" != "unlimited" ] && [ "$memlock" -lt 512 ]; then warn "memlock limit ${memlock} KiB is below 512 KiB: executors will not start"; else info "memlock limit: $memlock"; fi
mkdir -p "$store" 2>/dev/null
fs=$(df -T "$store" 2>/dev/null | awk 'NR==2 {print $2}')
case "$fs" in
  tmpfs) warn "store $store is on tmpfs: nothing survives a reboot" ;;
  "") warn "cannot tell the filesystem of $store" ;;
  *) info "store $store on $fs" ;;
esac
thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)
case "$thp" in *"[always]"*) warn "transparent huge pages are 'always': expect latency spikes; prefer madvise" ;; *) info "THP: $thp" ;; esac
swappiness=$(cat /proc/sys/vm/swappiness 2>/dev/null || echo unknown)
info "vm.swappiness: $swappiness (tuning/sysctl-petrel.conf sets 1)"
