#!/bin/bash
# ring-bench.sh: the ring benchmark. Starts a fresh local three-node ring,
# runs ringkv-bench over the standard workloads, prints one summary table,
# and stops the ring.
#
#   bench/ring-bench.sh [BIN_DIR]        default build/bin
#   BENCH_SECONDS=N  measured seconds per run (default 10)
#   BENCH_KEEP=1     keep the ring's directory (config, data, logs) afterwards
#
# The ring: a copy of cluster.toml in a new directory under build/, with
# N=3 R=2 W=2 and sync "always" (as cluster.toml has them, enforced here),
# client and cluster ports that nothing listens on, and data dirs inside that
# directory. Each node's stderr goes to NODE.log there. The script waits
# until every node reports itself connected to the two others (`ringkv
# stats`, peers_connected; polling, with a deadline), runs
# the workloads below on 100-byte values over 100000 uniform keys, then stops
# the nodes it started, by pid (SIGTERM, then wait), and removes the
# directory. On any failure (or Ctrl-C) the trap stops the ring too, and the
# directory is kept, with the logs, for a look.
#
#   write-only  50 clients  W=2
#   read-only   50 clients  R=2, after --preload
#   95/5        50 clients
#   50/50       50 clients
#   write-only   1 client   W=2 (single-client put latency)
#
# Each run's full report (ringkv-bench's stderr) is printed as it goes; the
# summary at the end takes ops/s and latency of all the run's ops.
set -u
prog=ring-bench
# shellcheck source=bench/ring-lib.sh
. "$(dirname "$0")/ring-lib.sh" || exit 1
enter_repo_root "${1:-}"

seconds=${BENCH_SECONDS:-10}
keys=100000
value=100
ready_timeout_s=30

need_positive BENCH_SECONDS "$seconds" seconds

# ---- binaries ----
need_binaries

# ---- the ring ----
make_ring_dir
cfg=$dir/cluster.toml
ids=(n1 n2 n3)

# Tables of cluster.toml the copy keeps; any other is left out (not named),
# so the benchmark never depends on files the copy cannot see (key files).
# A [security] table with the run's mode ("curve" or "none") is written
# instead, and the summary names each row's mode.
copied_tables="cluster storage limits log"

# Writes the config: cluster.toml's settings with N/R/W/sync pinned, none
# of its [[node]] tables, and three nodes on the given ports.
write_config() { # "PORTS" MODE
    local ports
    read -r -a ports <<<"$1"
    [ -r cluster.toml ] || die "no cluster.toml in $(pwd)"
    copy_tables "$copied_tables" |
        sed -E -e 's/^replicas *=.*/replicas = 3/' \
            -e 's/^read_quorum *=.*/read_quorum = 2/' \
            -e 's/^write_quorum *=.*/write_quorum = 2/' \
            -e 's/^sync *=.*/sync = "always"/' >"$cfg"
    printf '\n[security]\nmode = "%s"\nkeys_dir = "keys"\n' "$2" >>"$cfg"
    for i in 1 2 3; do
        cat >>"$cfg" <<EOF

[[node]]
id = "n$i"
host = "127.0.0.1"
client_port = ${ports[$((i - 1))]}
cluster_port = ${ports[$((i + 2))]}
data_dir = "n$i"
EOF
    done
    if [ "$2" = curve ]; then
        "$bin/ringkv" --config "$cfg" keygen --cluster >/dev/null || die "keygen failed"
    fi
}

rows=()
machine=""
run() { # MODE LABEL CLIENTS ARGS...
    local mode=$1 label=$2 clients=$3
    shift 3
    echo "" >&2
    echo "ring-bench: == $mode: $label, $clients clients: ringkv-bench $*" >&2
    local line report rc
    report=$dir/report.$((${#rows[@]} + 1)).txt
    line=$("$bin/ringkv-bench" --config "$cfg" --clients "$clients" --keys $keys \
        --value $value --dist uniform --duration "$seconds" --csv "$@" 2>"$report")
    rc=$?
    cat "$report" >&2
    [ -n "$machine" ] || machine=$(grep -m1 '^# ringkv-bench: nproc' "$report")
    if [ $rc != 0 ] || [ -z "$line" ]; then
        die "$mode $label, $clients clients: ringkv-bench failed (exit $rc)"
    fi
    rows+=("$mode,$label,$line")
}

# The same workloads on a ring with CurveZMQ (the default) and on a plain
# one, in one run: the difference is what encryption costs.
for mode in ${BENCH_MODES:-curve none}; do
    base=$dir/$mode
    mkdir -p "$base" || die "cannot make $base"
    cfg=$base/cluster.toml
    start_ring_retrying 6 write_config "$mode" || die "the ring did not start (logs in $base)"
    run "$mode" write-only 50 --workload write -w 2
    run "$mode" read-only 50 --workload read -r 2 --preload
    run "$mode" 95/5 50 --workload 95/5 -r 2 -w 2
    run "$mode" 50/50 50 --workload 50/50 -r 2 -w 2
    run "$mode" write-only 1 --workload write -w 2
    stop_ring
done

echo ""
echo "$machine"
echo "# ring: 3 nodes on 127.0.0.1, N=3 R=2 W=2, sync \"always\"; $keys uniform keys," \
    "$value-byte values, ${seconds} s measured per run after 1 s warmup; latency per call, in us"
printf '%-6s %-12s %8s %10s %10s %10s %10s %8s\n' mode workload clients ops/s "p50 us" \
    "p99 us" "p99.9 us" errors
for r in "${rows[@]}"; do
    IFS=, read -r -a f <<<"$r"
    printf '%-6s %-12s %8s %10s %10s %10s %10s %8s\n' "${f[0]}" "${f[1]}" "${f[4]}" "${f[11]}" \
        "${f[12]}" "${f[13]}" "${f[14]}" "${f[25]}"
done

field() { cut -d, -f"$2" <<<"${rows[$1]}"; } # row index, field (1-based)
if [ "${#rows[@]}" = 10 ]; then
    for i in 0 1 2 3 4; do
        echo "# CurveZMQ cost, $(field $i 2) $(field $i 5) clients: secured / plain ops/s =" \
            "$(awk "BEGIN{printf \"%.2f\", $(field $i 12) / $(field $((i + 5)) 12)}")"
    done
fi
target() { # label ok text
    if [ "$2" = 1 ]; then echo "# target $1: met ($3)"; else echo "# target $1: NOT met ($3)"; fi
}
w50=$(field 0 12) r50=$(field 1 12) p50w1=$(field 4 13)
target "write-only 50 clients >= 30000 puts/s ($(field 0 1))" \
    "$(awk "BEGIN{print ($w50 >= 30000)}")" "$w50"
target "read-only 50 clients >= 40000 gets/s ($(field 1 1))" \
    "$(awk "BEGIN{print ($r50 >= 40000)}")" "$r50"
target "write-only 1 client p50 < 250 us ($(field 4 1))" \
    "$(awk "BEGIN{print ($p50w1 < 250)}")" "$p50w1 us"
for i in "${!rows[@]}"; do
    sib=$(field "$i" 28) nf=$(field "$i" 27)
    [ "$sib" = 0 ] || echo "# warning: $(field "$i" 1) $(field "$i" 2): $sib reads returned siblings"
    [ "$nf" = 0 ] || echo "# note: $(field "$i" 1) $(field "$i" 2): $nf reads found no value"
done
ok=1
