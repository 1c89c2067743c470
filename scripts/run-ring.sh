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
pids=()
stop() {
    trap '' INT TERM
    echo "run-ring: stopping ${#pids[@]} nodes" >&2
    kill -TERM "${pids[@]}" 2>/dev/null
    wait "${pids[@]}" 2>/dev/null
    exit 0
}
trap stop INT TERM
for id in $ids; do
    # the node's pid is $! (its stderr goes through sed in a subshell)
    "$bin/ringkvd" --config "$config" --node "$id" 2> >(sed -u "s/^/[$id] /" >&2) &
    pids+=("$!")
done
echo "run-ring: ${#pids[@]} nodes of $config running (pids ${pids[*]}); Ctrl-C stops them" >&2
echo "run-ring: try  $bin/ringkv put hello world  and  $bin/ringkv get hello" >&2
# returns when a node exits; then stop the others too
wait -n "${pids[@]}"
echo "run-ring: a node exited" >&2
stop
