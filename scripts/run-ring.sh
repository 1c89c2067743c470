#!/bin/bash
# run-ring.sh: what `make run` does. Starts every [[node]] of the cluster
# file in the foreground, each line of its log prefixed with its id; Ctrl-C
# (or SIGTERM) stops them all, by their pids, and waits for them to finish.
#
#   scripts/run-ring.sh [BIN_DIR] [CONFIG]     defaults: build/bin cluster.toml
set -u
bin=${1:-build/bin}
config=${2:-${RINGKV_CONFIG:-cluster.toml}}

ids=$("$bin/ringkvd" --config "$config" --list) || exit 1
# the key pairs of the nodes and of a local client, on first start
"$bin/ringkv" --config "$config" keygen --cluster | sed "s/^/run-ring: /" >&2 || exit 1
pids=()
stop() {
    trap '' INT TERM
    echo "run-ring: stopping ${#live[@]} nodes" >&2
    kill -TERM "${live[@]}" 2>/dev/null
    wait "${live[@]}" 2>/dev/null
    exit 0
}
trap stop INT TERM
for id in $ids; do
    # the node's pid is $! (its stderr goes through sed in a subshell)
    "$bin/ringkvd" --config "$config" --node "$id" 2> >(sed -u "s/^/[$id] /" >&2) &
    pids+=("$!")
done
live=("${pids[@]}")
echo "run-ring: ${#pids[@]} nodes of $config running (pids ${pids[*]}); Ctrl-C stops them" >&2
echo "run-ring: try  $bin/ringkv put hello world  and  $bin/ringkv get hello" >&2
# A node that dies (or is killed to try the ring without it) is reported;
# the others keep serving. Returns when every node has exited.
while [ "${#live[@]}" -gt 0 ]; do
    wait -n -p gone "${live[@]}"
    status=$?
    rest=()
    for p in "${live[@]}"; do [ "$p" != "$gone" ] && rest+=("$p"); done
    live=("${rest[@]}")
    echo "run-ring: node pid $gone exited with status $status; ${#live[@]} still running" >&2
done
