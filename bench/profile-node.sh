#!/bin/bash
# profile-node.sh: instructions per operation inside one ringkvd, counted by
# valgrind's callgrind (repeatable on a noisy machine: it counts
# instructions, not seconds).
#
#   bench/profile-node.sh [BIN_DIR] [WORKLOAD] [SECONDS]
#        defaults: build/bin write 10
#
# Starts a plain three-node ring on loopback (sync "always"), node n1 under
# callgrind, drives it with ringkv-bench (4 clients, W=2/R=2), stops it, and
# prints n1's instructions per operation it handled (client requests plus
# replica reads and writes), then the top functions by inclusive cost.
# Kernel time (syscalls, fdatasync) is not counted.
set -u
bin=$(cd "${1:-build/bin}" && pwd) || exit 1
workload=${2:-write}
seconds=${3:-10}
cd "$(dirname "$0")/.." || exit 1
command -v valgrind >/dev/null || { echo "profile-node: valgrind is needed" >&2; exit 1; }
dir=$(mktemp -d build/profile.XXXXXX) || exit 1
pids=()
cleanup() { kill -TERM "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; }
trap cleanup EXIT

# below the ephemeral range (32768-60999 on Linux), where outgoing connections live
port=$((20000 + RANDOM % 12000))
{
    printf '[cluster]\nname = "profile"\nrequest_timeout_ms = 10000\n'
    printf '[storage]\nsync = "always"\n[security]\nmode = "none"\n'
    for i in 1 2 3; do
        printf '[[node]]\nid = "n%d"\nhost = "127.0.0.1"\nclient_port = %d\n' $i $((port + i))
        printf 'cluster_port = %d\ndata_dir = "n%d"\n' $((port + 10 + i)) $i
    done
} >"$dir/cluster.toml"
cfg=$dir/cluster.toml
valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
    "$bin/ringkvd" --config "$cfg" --node n1 2>"$dir/n1.log" &
pids+=("$!")
for i in 2 3; do
    "$bin/ringkvd" --config "$cfg" --node n$i 2>"$dir/n$i.log" &
    pids+=("$!")
done
deadline=$((SECONDS + 60))
until [ "$("$bin/ringkv" --config "$cfg" stats 2>/dev/null |
    awk -F'\t' '$2 == "peers_connected" && $3 == 2' | wc -l)" = 3 ]; do
    [ $SECONDS -lt $deadline ] || { echo "profile-node: ring not ready" >&2; exit 1; }
    sleep 0.2
done
"$bin/ringkv-bench" --config "$cfg" --clients 4 --keys 10000 --workload "$workload" \
    --duration "$seconds" --warmup 1 >"$dir/bench.txt" 2>&1 || { cat "$dir/bench.txt"; exit 1; }
ops=$("$bin/ringkv" --config "$cfg" stats n1 |
    awk -F'\t' '$2 == "client_requests" || $2 == "replica_gets" || $2 == "replica_puts" \
        { n += $3 } END { print n }')
kill -TERM "${pids[0]}"
wait "${pids[0]}" 2>/dev/null
total=$(callgrind_annotate "$dir/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
echo "# profile-node: workload $workload, $seconds s, 4 clients; n1 handled $ops operations"
echo "# instructions in n1 (all threads, user space): $total"
awk -v t="$total" -v o="$ops" 'BEGIN { printf "# instructions per operation: %.0f\n", t / o }'
callgrind_annotate --inclusive=yes "$dir/callgrind.out" 2>/dev/null |
    grep -E '^ *[0-9,]+ +\(' | grep -E 'ringkvd\]|libzmq|libc' | sed -n '6,30p'
echo "# callgrind output: $dir/callgrind.out"
