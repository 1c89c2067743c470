#!/bin/bash
# handoff-bench.sh: the ownership handoff benchmark. Starts a fresh local
# three-node ring, loads it, joins a fourth node, and measures how fast the
# ring streams the fourth node its partitions, next to how fast the same
# ring took the data in.
#
#   bench/handoff-bench.sh [BIN_DIR]     default build/bin
#   BENCH_KEYS=N     keys loaded (default 200000)
#   BENCH_VALUE=B    value bytes (default 1000)
#   BENCH_KEEP=1     keep the ring's directory (config, data, logs) afterwards
#
# The ring: a copy of cluster.toml in a new directory under build/ (its
# [cluster], [storage], [limits], [log] and [hints] tables; the others are
# left out and named on stderr), with N=3 R=2 W=2, sync "interval" (an
# acknowledged write is in the OS, fdatasync'd each sync_interval_ms: the
# load measures the ring, not the disk's flush latency),
# handoff_bytes_per_sec at its maximum (4294967295, docs/configuration.md)
# so the throttle is not what is measured, security "none", client and
# cluster ports that nothing listens on, and data dirs inside that
# directory. Each node's stderr goes to NODE.log there.
#
# Steps:
#   1. start n1-n3, wait (polling, with a deadline) until each is connected
#      to the two others;
#   2. load: ringkv-bench --workload write --preload -w 2 writes every key
#      once (a get for the context, then the put; its "# setup" line gives
#      the time: the bulk-load rate), then writes uniform keys for a few
#      measured seconds (the steady write rate);
#   3. append n4's [[node]] table to the config (as tests/support/cluster.c
#      adds its spares: only after the ring has started, since a node
#      without MEMBERS takes every [[node]] of the file as a member), then
#      start `ringkvd --node n4 --join <n1's cluster address>`;
#   4. poll `ringkv stats NODE` on n1-n4 until all four serve the same
#      ring_epoch with ring_members = 4, handoff_partitions_pending = 0 and
#      store_keys_unowned = 0 (deadline settle_timeout_s);
#   5. print the summary, stop the nodes it started, by pid (SIGTERM, then
#      wait), and remove the directory. On any failure (or Ctrl-C) the trap
#      stops them too, and the directory is kept, with the logs, for a look.
#
# Figures: MB are 10^6 bytes. Load MB/s counts user data (keys x value
# bytes). Handoff bytes are the senders' handoff_bytes_sent (key + stored
# object, once per target it went to), summed over n1-n3; the aggregate
# rate divides them by the wall time from the first poll that saw a
# partition pending to the first that saw the ring settled (polls every
# poll_s), and each sender's rate by its own handoff_busy_ms. n4's expected
# keys: KEYS x (partitions whose preference list holds n4) / Q, from
# `ringkv ring` once settled; its store_keys is printed beside it, not
# compared.
set -u
prog=handoff-bench
# shellcheck source=bench/ring-lib.sh
. "$(dirname "$0")/ring-lib.sh" || exit 1
enter_repo_root "${1:-}"

keys=${BENCH_KEYS:-200000}
value=${BENCH_VALUE:-1000}
clients=50
write_seconds=3         # measured seconds of the steady write run after the preload
ready_timeout_s=30
settle_timeout_s=600
poll_s=0.25
handoff_rate_max=4294967295 # the top of handoff_bytes_per_sec's range
sync_policy=interval

need_positive BENCH_KEYS "$keys" keys
need_positive BENCH_VALUE "$value" bytes

# ---- binaries ----
need_binaries

# ---- the ring ----
make_ring_dir
cfg=$dir/cluster.toml
ids=(n1 n2 n3 n4)

# Tables of cluster.toml the copy keeps; any other is left out and named on
# stderr ([security] is replaced by mode = "none"; [resp] would need ports
# of its own; [[node]] tables are written here).
copied_tables="cluster storage limits log hints"
ports=()

# [[node]] table of node i (0-based) on its ports.
node_table() {
    cat <<EOF

[[node]]
id = "${ids[$1]}"
host = "127.0.0.1"
client_port = ${ports[$1]}
cluster_port = ${ports[$(($1 + 4))]}
data_dir = "${ids[$1]}"
EOF
}

# Writes the config: cluster.toml's settings with N/R/W, sync and the
# handoff rate pinned (their lines dropped, ours put first in their table),
# none of its [[node]] tables, and n1-n3 on the given ports. Clears n1-n3's
# data dirs first: a retry starts fresh, with no MEMBERS from a failed one.
write_config() { # "PORTS"
    read -r -a ports <<<"$1"
    rm -rf "${dir:?}"/n[1-3]
    [ -r cluster.toml ] || die "no cluster.toml in $(pwd)"
    copy_tables "$copied_tables" name |
        awk -v rate="$handoff_rate_max" -v sync="$sync_policy" '
            /^\[/ { t = $0; gsub(/^\[ *| *\].*$/, "", t) }
            t == "cluster" && /^(replicas|read_quorum|write_quorum|handoff_bytes_per_sec) *=/ { next }
            t == "storage" && /^sync *=/ { next }
            { print }
            /^\[cluster\]/ {
                print "replicas = 3"; print "read_quorum = 2"; print "write_quorum = 2"
                print "handoff_bytes_per_sec = " rate
            }
            /^\[storage\]/ { print "sync = \"" sync "\"" }
            ' >"$cfg"
    grep -q '^\[storage\]' "$cfg" || printf '\n[storage]\nsync = "%s"\n' "$sync_policy" >>"$cfg"
    printf '\n[security]\nmode = "none"\nkeys_dir = "keys"\n' >>"$cfg"
    local i
    for i in 0 1 2; do
        node_table $i >>"$cfg"
    done
}

# name<TAB>value lines of NODE's statistics ("" if it does not answer)
stats_of() {
    "$bin/ringkv" --config "$cfg" stats "$1" 2>/dev/null |
        awk -F'\t' -v id="$1" '$1 == id && NF == 3 { print $2 "\t" $3 }'
}

# value of NAME in stats text ("" if absent)
stat() { # TEXT NAME
    awk -F'\t' -v k="$2" '$1 == k { print $2; exit }' <<<"$1"
}

start_ring_retrying 8 write_config || die "the ring did not start (logs in $dir)"

# ---- load ----
echo "handoff-bench: loading $keys keys of $value bytes (W=2, $clients clients)" >&2
report=$dir/load.txt
t0=$EPOCHREALTIME
line=$("$bin/ringkv-bench" --config "$cfg" --clients $clients --keys "$keys" --value "$value" \
    --dist uniform --workload write -w 2 --preload --duration $write_seconds --csv 2>"$report")
rc=$?
t1=$EPOCHREALTIME
cat "$report" >&2
if [ $rc != 0 ] || [ -z "$line" ]; then
    die "load: ringkv-bench failed (exit $rc)"
fi
machine=$(grep -m1 '^# ringkv-bench: nproc' "$report")
setup=$(grep -m1 '^# setup:' "$report")
load_s=$(sed -nE 's/.* in ([0-9.]+) s .*/\1/p' <<<"$setup")
[ -n "$load_s" ] || die "load: no \"# setup: ... in S s\" line in ringkv-bench's report"
write_ops_s=$(cut -d, -f10 <<<"$line")
write_errors=$(cut -d, -f24 <<<"$line")
data_mb=$(awk "BEGIN{printf \"%.1f\", $keys * $value / 1e6}")
load_mbs=$(awk "BEGIN{printf \"%.2f\", $keys * $value / 1e6 / $load_s}")
write_mbs=$(awk "BEGIN{printf \"%.2f\", $write_ops_s * $value / 1e6}")
bench_s=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")

# ---- join n4 ----
node_table 3 >>"$cfg"
declare -A before
for i in 0 1 2; do
    s=$(stats_of "${ids[$i]}")
    [ -n "$s" ] || die "${ids[$i]} does not answer stats before the join"
    before[${ids[$i]}.bytes]=$(stat "$s" handoff_bytes_sent)
    before[${ids[$i]}.busy]=$(stat "$s" handoff_busy_ms)
    before[${ids[$i]}.keys]=$(stat "$s" store_keys)
done
epoch_before=$(stat "$(stats_of n1)" ring_epoch)

echo "handoff-bench: starting n4 with --join 127.0.0.1:${ports[4]}" >&2
join_t0=$EPOCHREALTIME
start_node 3 --join "127.0.0.1:${ports[4]}"
first_pending=""
settled_t=""
deadline=$((SECONDS + settle_timeout_s))
declare -A last
while :; do
    nodes_alive || die "a node exited during the join (logs in $dir)"
    now=$EPOCHREALTIME
    settled=1 pending_any=0 epochs=""
    for id in "${ids[@]}"; do
        s=$(stats_of "$id")
        last[$id]=$s
        if [ -z "$s" ]; then
            settled=0
            continue
        fi
        p=$(stat "$s" handoff_partitions_pending)
        [ "${p:-0}" -gt 0 ] && pending_any=1
        epochs+="$(stat "$s" ring_epoch) "
        if [ "$(stat "$s" ring_members)" != 4 ] || [ "$p" != 0 ] ||
            [ "$(stat "$s" store_keys_unowned)" != 0 ]; then
            settled=0
        fi
    done
    [ $pending_any = 1 ] && [ -z "$first_pending" ] && first_pending=$now
    if [ $settled = 1 ] && [ "$(tr ' ' '\n' <<<"$epochs" | sort -u | grep -c .)" = 1 ] &&
        [ "${epochs%% *}" != "$epoch_before" ]; then
        settled_t=$now
        break
    fi
    if [ $SECONDS -ge $deadline ]; then
        for id in "${ids[@]}"; do
            s=${last[$id]}
            echo "handoff-bench: $id: epoch $(stat "$s" ring_epoch) members $(stat "$s" ring_members)" \
                "pending $(stat "$s" handoff_partitions_pending) unowned $(stat "$s" store_keys_unowned)" >&2
        done
        die "the ring did not settle within ${settle_timeout_s}s of n4's start (logs in $dir)"
    fi
    sleep $poll_s
done

# ---- figures ----
join_s=$(awk "BEGIN{printf \"%.2f\", $settled_t - $join_t0}")
if [ -n "$first_pending" ]; then
    stream_s=$(awk "BEGIN{printf \"%.2f\", $settled_t - $first_pending}")
    pending_at=$(awk "BEGIN{printf \"%.2f\", $first_pending - $join_t0}")
else
    stream_s=""
    pending_at=""
fi
bytes_total=0
keys_sent_total=0
sender_lines=()
for i in 0 1 2; do
    id=${ids[$i]}
    s=${last[$id]}
    b=$(($(stat "$s" handoff_bytes_sent) - ${before[$id.bytes]}))
    ms=$(($(stat "$s" handoff_busy_ms) - ${before[$id.busy]}))
    ks=$(stat "$s" handoff_keys_sent)
    bytes_total=$((bytes_total + b))
    keys_sent_total=$((keys_sent_total + ks))
    rate=$(awk "BEGIN{ if ($ms > 0) printf \"%.2f\", $b / 1e6 / ($ms / 1000); else print \"-\" }")
    sender_lines+=("$(printf '#   %s: %s MB sent, %s keys, busy %s ms: %s MB/s; keys %s -> %s, dropped %s' \
        "$id" "$(awk "BEGIN{printf \"%.1f\", $b / 1e6}")" "$ks" "$ms" "$rate" \
        "${before[$id.keys]}" "$(stat "$s" store_keys)" "$(stat "$s" handoff_keys_dropped)")")
done
n4_keys=$(stat "${last[n4]}" store_keys)
n4_sent=$(stat "${last[n4]}" handoff_bytes_sent)
if [ -n "$stream_s" ] && awk "BEGIN{exit !($stream_s > 0)}"; then
    handoff_mbs=$(awk "BEGIN{printf \"%.2f\", $bytes_total / 1e6 / $stream_s}")
    n4_mbs=$(awk "BEGIN{printf \"%.2f\", $n4_keys * $value / 1e6 / $stream_s}")
else
    handoff_mbs="-" n4_mbs="-"
fi

ringtxt=$("$bin/ringkv" --config "$cfg" ring 2>/dev/null)
q=$(awk -F'\t' '$1 == "ring" { sub(/^partitions /, "", $4); print $4 }' <<<"$ringtxt")
n4_parts=$(awk -F'\t' '$1 == "partition" && ("," $3 ",") ~ /,n4,/' <<<"$ringtxt" | wc -l)
n4_owns=$(awk -F'\t' '$1 == "node" && $2 == "n4" { sub(/^owns /, "", $6); print $6 }' <<<"$ringtxt")
if [ -n "$q" ] && [ "$q" -gt 0 ]; then
    n4_expected=$(awk "BEGIN{printf \"%.0f\", $keys * $n4_parts / $q}")
else
    n4_expected="-"
fi
# the same span from the senders' logs, to the millisecond: the first
# "partitions to hand over" to the last "handoff done" of n1-n3 ("" if the
# logs do not say)
log_span() {
    local first last
    first=$(grep -h ' partitions to hand over' "$dir"/n[1-3].log | cut -d' ' -f1 | sort | head -n1)
    last=$(grep -h ' handoff done' "$dir"/n[1-3].log | cut -d' ' -f1 | sort | tail -n1)
    [ -n "$first" ] && [ -n "$last" ] || return 0
    first=$(date -d "$first" +%s.%N 2>/dev/null) && last=$(date -d "$last" +%s.%N 2>/dev/null) &&
        awk "BEGIN{printf \"%.2f\", $last - $first}"
}
log_s=$(log_span)
ratio() { awk "BEGIN{ if (\"$1\" == \"-\" || $2 <= 0) print \"-\"; else printf \"%.2f\", $1 / $2 }"; }
copies=$(ratio "$keys_sent_total" "$n4_keys")

echo ""
echo "$machine"
echo "# ring: 3 nodes on 127.0.0.1 + n4 joined, N=3 R=2 W=2, sync \"$sync_policy\"," \
    "security \"none\", handoff_bytes_per_sec = $handoff_rate_max (the maximum: not the limit)"
echo "# data: $keys keys x $value B = $data_mb MB of user data (x3 replicas)"
echo "# load: preload (get + put W=2 per key, $clients clients) in $load_s s: $load_mbs MB/s;" \
    "then write-only $write_seconds s: $write_ops_s puts/s = $write_mbs MB/s ($write_errors errors);" \
    "ringkv-bench ran $bench_s s"
echo "# join: n4 settled $join_s s after its start (first partition pending at +${pending_at:-?} s," \
    "streaming to settled ${stream_s:-?} s; polls every $poll_s s;" \
    "senders' logs: first \"to hand over\" to last \"handoff done\" ${log_s:-?} s)"
echo "# handoff: $(awk "BEGIN{printf \"%.1f\", $bytes_total / 1e6}") MB sent by n1-n3" \
    "in ${stream_s:-?} s: $handoff_mbs MB/s aggregate; $keys_sent_total keys sent" \
    "= $copies per key n4 holds (a key counts once, however many targets it went to);" \
    "bytes sent = $(ratio "$bytes_total" "($n4_keys * $value)")x n4's new values"
for l in "${sender_lines[@]}"; do
    echo "$l"
done
[ "${n4_sent:-0}" = 0 ] || echo "#   n4 itself sent $n4_sent bytes"
echo "# n4 holds $n4_keys keys ($(awk "BEGIN{printf \"%.1f\", $n4_keys * $value / 1e6}") MB of values:" \
    "$n4_mbs MB/s received); expected ~$n4_expected (n4 in the preference list of" \
    "$n4_parts of $q partitions, first owner of ${n4_owns:-?})"
echo "# handoff / load: $(ratio "$handoff_mbs" "$load_mbs") (bytes sent aggregate / preload MB/s)," \
    "$(ratio "$n4_mbs" "$load_mbs") (n4's new data / preload MB/s);" \
    "against the write-only rate: $(ratio "$handoff_mbs" "$write_mbs"), $(ratio "$n4_mbs" "$write_mbs")"
ok=1
