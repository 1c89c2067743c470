# shellcheck shell=bash disable=SC2154 # prog, cfg, ids, ready_timeout_s: the caller's
# ring-lib.sh: what bench/ring-bench.sh and bench/handoff-bench.sh share to
# start a local ring of ringkvd nodes and clean up after it. Sourced (bash,
# set -u); it only defines functions.
#
#   die MSG                       "PROG: MSG" on stderr, exit 1
#   need_positive NAME VALUE UNIT die unless VALUE is a positive whole number
#   enter_repo_root [BIN_DIR]     set bin (default build/bin; a relative one is
#                                 the caller's), then cd to the repo root
#   need_binaries                 ringkvd, ringkv, ringkv-bench in $bin; when
#                                 missing and $bin is BUILD/bin, make them
#   make_ring_dir                 dir = a new build/PROG.XXXXXX; pids=(), ok=0;
#                                 traps: on exit stop_ring, then remove $dir if
#                                 ok=1 (and BENCH_KEEP is not 1), else keep it
#                                 and say so; INT and TERM exit 130 and 143
#   stop_ring                     SIGTERM the started nodes, wait for them
#   port_free PORT, free_ports N  ports nothing listens on, from 20000-29999
#   copy_tables "TABLES" [name]   cluster.toml's lines before its first table
#                                 and its TABLES, to stdout ([[...]] never);
#                                 with "name", each one left out is named on
#                                 stderr (check cluster.toml is readable first)
#   start_node INDEX [ARGS...]    ringkvd --node ${ids[INDEX]} ARGS, stderr to
#                                 NODE.log beside $cfg, pid to pids[INDEX]
#   nodes_alive                   1 (with the log's tail) if a started one exited
#   start_ring                    start ids 0-2, wait (ready_timeout_s) until
#                                 each is connected to the two others
#   start_ring_retrying NPORTS CONFIGURE [ARGS...]
#                                 up to three attempts, each on NPORTS free
#                                 ports: CONFIGURE "PORTS" ARGS writes $cfg,
#                                 ringkvd --list checks it, start_ring; 1 if
#                                 all three fail
#
# The caller sets: prog (the script's name, prefixed to its messages), bin
# (by enter_repo_root), dir, pids and ok (by make_ring_dir), cfg (the config
# file), ids (node ids, by index), ready_timeout_s; and ok=1 once it is done.

die() {
    echo "$prog: $*" >&2
    exit 1
}

need_positive() { # NAME VALUE UNIT
    case $2 in
    '' | *[!0-9]* | 0) die "$1 must be a positive number of $3, not \"$2\"" ;;
    esac
}

enter_repo_root() { # [BIN_DIR]
    bin=${1:-build/bin}
    # BIN_DIR may be relative to the caller's directory; everything else runs from the repo root
    if [[ $bin != /* ]] && [ -d "$bin" ]; then
        bin=$(cd "$bin" && pwd)
    fi
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
}

need_binaries() {
    local need=("$bin/ringkvd" "$bin/ringkv" "$bin/ringkv-bench") missing=0 f build
    for f in "${need[@]}"; do
        [ -x "$f" ] || missing=1
    done
    if [ $missing = 1 ]; then
        case $bin in
        */bin) build=${bin%/bin} ;;
        *) die "no ringkvd, ringkv and ringkv-bench in $bin (expected BUILD/bin)" ;;
        esac
        echo "$prog: building into $build" >&2
        make BUILD="$build" "${need[@]}" >&2 || die "make failed"
    fi
}

make_ring_dir() {
    dir=$(mktemp -d "build/$prog.XXXXXX") || die "cannot make a directory under build/"
    pids=()
    ok=0
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# SIGTERM to the nodes this script started; SIGKILL to any still running
# after 30 s.
stop_ring() {
    if [ ${#pids[@]} -gt 0 ]; then
        kill -TERM "${pids[@]}" 2>/dev/null
        local deadline=$((SECONDS + 30)) p alive
        while :; do
            alive=0
            for p in "${pids[@]}"; do
                kill -0 "$p" 2>/dev/null && alive=1
            done
            [ $alive = 0 ] || [ $SECONDS -ge $deadline ] && break
            sleep 0.1 # polling for the exits, with the deadline above
        done
        [ $alive = 1 ] && kill -KILL "${pids[@]}" 2>/dev/null
        wait "${pids[@]}" 2>/dev/null
        pids=()
    fi
}

on_exit() {
    stop_ring
    if [ "$ok" = 1 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$dir"
    else
        echo "$prog: kept $dir (config, data, node logs)" >&2
    fi
}

# true if nothing accepts connections on 127.0.0.1:$1
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints n distinct free ports from 20000-29999 (below the usual ephemeral
# range, so outgoing connections do not take them meanwhile).
free_ports() {
    local n=$1 got=() p tries=0
    while [ ${#got[@]} -lt "$n" ]; do
        tries=$((tries + 1))
        [ $tries -le 1000 ] || return 1
        p=$((20000 + RANDOM % 10000))
        [[ " ${got[*]} " == *" $p "* ]] && continue
        port_free "$p" && got+=("$p")
    done
    echo "${got[@]}"
}

copy_tables() { # "TABLES" [name]
    awk -v keep=" $1 " -v name="${2:-}" -v prog="$prog" '
        /^\[\[/ { on = 0; next }
        /^\[/ {
            t = $0; gsub(/^\[ *| *\].*$/, "", t); on = index(keep, " " t " ") > 0
            if (!on && name == "name") print prog ": left out [" t "] of cluster.toml" > "/dev/stderr"
        }
        on || !seen_table { print }
        /^\[/ { seen_table = 1 }
        ' cluster.toml
}

start_node() { # INDEX [ringkvd args...]
    local i=$1
    shift
    "$bin/ringkvd" --config "$cfg" --node "${ids[$i]}" "$@" 2>>"$(dirname "$cfg")/${ids[$i]}.log" &
    pids[i]=$!
}

# returns 1 (and shows the log's tail) if a started node has exited
nodes_alive() {
    local i
    for i in "${!pids[@]}"; do
        kill -0 "${pids[$i]}" 2>/dev/null && continue
        echo "$prog: node ${ids[$i]} exited; its log:" >&2
        tail -n 5 "$(dirname "$cfg")/${ids[$i]}.log" >&2
        return 1
    done
}

start_ring() {
    local i deadline linked
    for i in 0 1 2; do
        start_node $i
    done
    deadline=$((SECONDS + ready_timeout_s))
    while :; do
        nodes_alive || return 1
        # ready: every node answers and is connected to both others
        linked=$("$bin/ringkv" --config "$cfg" stats 2>/dev/null |
            awk -F'\t' '$2 == "peers_connected" && $3 == 2' | wc -l)
        [ "$linked" = 3 ] && return 0
        [ $SECONDS -lt $deadline ] || {
            echo "$prog: the ring did not answer pings within ${ready_timeout_s}s" >&2
            "$bin/ringkv" --config "$cfg" ping >&2
            return 1
        }
        sleep 0.1
    done
}

start_ring_retrying() { # NPORTS CONFIGURE [ARGS...]
    local n=$1 configure=$2 attempt port_list
    shift 2
    for attempt in 1 2 3; do
        port_list=$(free_ports "$n") || die "no free ports found in 20000-29999"
        # a failed attempt's data dirs remember its ports (MEMBERS): start afresh
        local id
        for id in "${ids[@]}"; do
            rm -rf "${dir:?}/$id"
        done
        "$configure" "$port_list" "$@"
        "$bin/ringkvd" --config "$cfg" --list >/dev/null || die "ringkvd refuses the config $cfg"
        start_ring && return 0
        stop_ring
        echo "$prog: attempt $attempt failed; trying other ports" >&2
    done
    return 1
}
