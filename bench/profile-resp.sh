#!/bin/bash
# profile-resp.sh: instructions per command inside one ringkvd serving the
# Redis protocol, counted by valgrind's callgrind (repeatable on a noisy
# machine: it counts instructions, not seconds).
#
#   bench/profile-resp.sh [BIN_DIR] [TEST] [REQUESTS] [CLIENTS]
#        defaults: build/bin set 20000 10
#
# Starts a plain three-node ring on loopback (sync "always", RESP ports),
# node n1 under callgrind, sends it REQUESTS redis-benchmark commands of
# TEST (set or get, 100-byte values, 100,000 random keys) from CLIENTS
# connections, stops it and prints n1's instructions per command, then its
# top functions by exclusive cost. Kernel time is not counted (nor, for
# get, the writes that fill the store: they run before n1 is profiled).
set -u
bin=$(cd "${1:-build/bin}" && pwd) || exit 1
test=${2:-set}
requests=${3:-20000}
clients=${4:-10}
cd "$(dirname "$0")/.." || exit 1
for tool in valgrind callgrind_annotate redis-benchmark redis-cli; do
    command -v $tool >/dev/null ||
        { echo "profile-resp: $tool is needed (apt-get install valgrind redis-tools)" >&2; exit 1; }
done
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
        printf 'cluster_port = %d\nresp_port = %d\ndata_dir = "n%d"\n' \
            $((port + 10 + i)) $((port + 20 + i)) $i
    done
} >"$dir/cluster.toml"
cfg=$dir/cluster.toml
start_ring() { # $1: a command to run n1 under (may be empty)
    $1 "$bin/ringkvd" --config "$cfg" --node n1 2>>"$dir/n1.log" &
    pids[0]=$!
    for i in 2 3; do
        [ -n "${pids[$((i - 1))]:-}" ] && kill -0 "${pids[$((i - 1))]}" 2>/dev/null && continue
        "$bin/ringkvd" --config "$cfg" --node n$i 2>>"$dir/n$i.log" &
        pids[$((i - 1))]=$!
    done
    deadline=$((SECONDS + 60))
    until [ "$("$bin/ringkv" --config "$cfg" stats 2>/dev/null |
        awk -F'\t' '$2 == "peers_connected" && $3 == 2' | wc -l)" = 3 ]; do
        [ $SECONDS -lt $deadline ] || { echo "profile-resp: ring not ready" >&2; exit 1; }
        for p in "${pids[@]}"; do # a node that could not start (a port taken?) says why
            kill -0 "$p" 2>/dev/null || { tail -n 3 "$dir"/n*.log >&2; exit 1; }
        done
        sleep 0.2
    done
}
if [ "$test" = get ]; then # something to read, written before n1 is measured
    start_ring ""
    redis-benchmark -p $((port + 21)) -t set -n 100000 -c 50 -d 100 -r 100000 -q >/dev/null
    kill -TERM "${pids[0]}"
    wait "${pids[0]}" 2>/dev/null
fi
start_ring "valgrind --tool=callgrind --callgrind-out-file=$dir/callgrind.out"
# start-up (for get: recovering the store) goes to callgrind.out.1; the
# final file counts the measured commands only
callgrind_control --dump "${pids[0]}" >/dev/null 2>&1
before=$("$bin/ringkv" --config "$cfg" stats n1 | awk -F'\t' '$2 == "resp_commands" { print $3 }')
redis-benchmark -p $((port + 21)) -t "$test" -n "$requests" -c "$clients" -d 100 -r 100000 \
    -q 2>&1 | tr '\r' '\n' | grep 'per second' >"$dir/bench.txt"
after=$("$bin/ringkv" --config "$cfg" stats n1 | awk -F'\t' '$2 == "resp_commands" { print $3 }')
kill -TERM "${pids[0]}"
wait "${pids[0]}" 2>/dev/null
totals() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'; }
total=$(totals "$dir/callgrind.out")
startup=$(totals "$dir/callgrind.out.1")
ops=$((after - before))
echo "# profile-resp: $test, $ops commands from $clients clients; under callgrind: $(cat "$dir/bench.txt")"
echo "# instructions in n1 (all threads, user space) for them: $total (start-up before: $startup)"
awk -v t="$total" -v o="$ops" 'BEGIN { printf "# instructions per command: %.0f\n", t / o }'
echo "# where they go: inclusive cost of ringkvd's own functions"
callgrind_annotate --inclusive=yes "$dir/callgrind.out" 2>/dev/null | grep -E 'ringkvd\]' |
    grep -v -e 'below main' -e 'main.c:main' | sed -n '1,25p'
echo "# callgrind output: $dir/callgrind.out"
