#!/bin/sh
# deps.sh: install the Debian packages ringkv builds against, but only the
# ones pkg-config cannot find. Called by the Makefile before every build, so
# on a fresh Debian 12 machine `make test` (as root) needs no other step.
#
#   scripts/deps.sh          build and test dependencies
#   scripts/deps.sh bench    plus the peer engines the benchmarks compare with
#   scripts/deps.sh capture  plus tcpdump, for the test that reads the wire
#   scripts/deps.sh fuzz     plus clang, for the libFuzzer targets
set -eu

need=""
add() { need="$need $1"; }

command -v pkg-config >/dev/null 2>&1 || add pkg-config
has() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1" 2>/dev/null; }

has libzmq    || add libzmq3-dev
has libxxhash || add libxxhash-dev
has libsodium || add libsodium-dev
has check     || add check

if [ "${1:-}" = fuzz ]; then      # make fuzz / fuzz-ci: clang's libFuzzer
    command -v clang >/dev/null 2>&1 || add clang
fi

if [ "${1:-}" = capture ]; then   # the traffic-capture test
    command -v tcpdump >/dev/null 2>&1 || add tcpdump
fi

if [ "${1:-}" = bench ]; then
    [ -f /usr/include/lmdb.h ]         || add liblmdb-dev
    [ -f /usr/include/leveldb/c.h ]    || add libleveldb-dev
    [ -f /usr/include/rocksdb/c.h ]    || add librocksdb-dev
    command -v redis-server >/dev/null 2>&1    || add redis-server # bench/compare
    command -v redis-benchmark >/dev/null 2>&1 || add redis-tools  # redis-cli too
fi

[ -z "$need" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing Debian packages:$need" >&2
    echo "deps.sh: run as root, or: sudo apt-get install$need" >&2
    exit 1
fi
echo "deps.sh: installing$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >&2
