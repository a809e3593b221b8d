#!/usr/bin/env bash
# pin-irqs.sh: shows (default, --dry-run) or sets (--apply) the CPU affinity of a network
# interface's queue interrupts, relative to the CPUs corekey's shards run on.
#
# Why: a NIC interrupt handled on a shard's CPU steals time from that shard at random moments
# (latency spikes, lower throughput). When the shards leave some CPUs free (cpu-list), the
# queue interrupts go there, spread over them; when the shards use every CPU, queue i goes to
# shard CPU i (round robin), so each shard takes an equal share instead of one shard taking all.
#
# irqbalance rewrites these affinities every few seconds: stop it first
# (systemctl disable --now irqbalance), or it undoes this.
#
# Usage: pin-irqs.sh [--dry-run | --apply] [--shard-cpus LIST] [--irq-cpus LIST] IFACE
#   --shard-cpus LIST  CPUs of the shards, as corekey's cpu-list (default: all online CPUs)
#   --irq-cpus LIST    CPUs for the interrupts (default: online CPUs minus the shard CPUs,
#                      or the shard CPUs when that leaves none)
# LIST is like 0,2-5. Needs root for --apply. Exit codes: 0 done, 1 error, 2 usage.
#
# PIN_IRQS_ROOT (for tests) prefixes /proc and /sys.
set -euo pipefail

root="${PIN_IRQS_ROOT:-}"
mode=dry-run
shard_list=""
irq_list=""
iface=""

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

while (($# > 0)); do
  case "$1" in
    --dry-run) mode=dry-run ;;
    --apply) mode=apply ;;
    --shard-cpus) shift; shard_list="${1:-}" ;;
    --irq-cpus) shift; irq_list="${1:-}" ;;
    -h | --help) usage ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *)
      if [[ -n "$iface" ]]; then
        echo "only one interface, please" >&2
        usage
      fi
      iface="$1"
      ;;
  esac
  shift
done
[[ -n "$iface" ]] || usage

# Expands a CPU list (0,2-4) into one CPU per word.
expand() {
  local part a b out=()
  local IFS=,
  for part in $1; do
    if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
      a=${BASH_REMATCH[1]}
      b=${BASH_REMATCH[2]}
      ((a <= b)) || { echo "bad CPU range: $part" >&2; exit 1; }
      for ((c = a; c <= b; c++)); do out+=("$c"); done
    elif [[ "$part" =~ ^[0-9]+$ ]]; then
      out+=("$part")
    else
      echo "bad CPU list: $1" >&2
      exit 1
    fi
  done
  IFS=' '
  echo "${out[*]}"
}

online=$(expand "$(cat "$root/sys/devices/system/cpu/online")")
if [[ -n "$shard_list" ]]; then
  shards=$(expand "$shard_list")
else
  shards=$online
fi
if [[ -n "$irq_list" ]]; then
  targets=$(expand "$irq_list")
else
  targets=""
  for c in $online; do
    case " $shards " in
      *" $c "*) ;;
      *) targets="$targets $c" ;;
    esac
  done
  targets=${targets# }
  [[ -n "$targets" ]] || targets=$shards
fi

# The interface's queue interrupts: the lines of /proc/interrupts named after the interface
# (eth0-TxRx-3) or after its device (virtio3-input.0 for a virtio NIC), without the
# configuration interrupt, which carries no traffic.
names="$iface"
if [[ -e "$root/sys/class/net/$iface/device" ]]; then
  names="$names|$(basename "$(readlink -f "$root/sys/class/net/$iface/device")")"
fi
irqs=()
while read -r irq _; do
  irqs+=("${irq%:}")
done < <(grep -E "[[:space:]]($names)([-@:_.][^[:space:]]*)?$" "$root/proc/interrupts" | grep -v -- '-config$' || true)
if ((${#irqs[@]} == 0)); then
  echo "no interrupts found for interface $iface" >&2
  exit 1
fi
mapfile -t sorted < <(printf '%s\n' "${irqs[@]}" | sort -n)

read -r -a target_cpus <<<"$targets"
echo "interface $iface: ${#sorted[@]} interrupt(s); shard CPUs: $shards; interrupt CPUs: $targets ($mode)"
i=0
for irq in "${sorted[@]}"; do
  file="$root/proc/irq/$irq/smp_affinity_list"
  cpu=${target_cpus[$((i % ${#target_cpus[@]}))]}
  now=$(cat "$file" 2>/dev/null || echo "?")
  if [[ "$mode" == apply ]]; then
    if echo "$cpu" >"$file"; then
      echo "irq $irq: $now -> $cpu"
    else
      echo "irq $irq: could not write $file (root? managed interrupt?)" >&2
    fi
  else
    echo "irq $irq: $now (would be $cpu)"
  fi
  i=$((i + 1))
done
