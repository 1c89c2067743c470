# ringkv: one non-recursive Makefile; everything it makes goes under $(BUILD).
#
#   make              build libraries, programs and tests (-Wall -Wextra)
#   make test         build, then run the unit and cluster tests
#   make asan         the same tests under AddressSanitizer + UBSan (build/asan)
#   make run          build and run the local demo (see README.md)
#   make bench        build the benchmarks; make bench-storage runs the engine comparison
#   make format       clang-format every source file
#   make WERROR=1     warnings are errors (CI)
#
# Dependencies are Debian packages; scripts/deps.sh installs the missing ones.

BUILD   ?= build
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
SAN     ?=
WERROR  ?=
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wformat=2 -Wvla -Wno-format-nonliteral $(if $(WERROR),-Werror)
SANFLAGS := $(if $(SAN),-fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all)

NODEPS_GOALS := clean format help
ifeq ($(filter $(NODEPS_GOALS),$(MAKECMDGOALS)),)
DEPS_FAILED := $(shell scripts/deps.sh >&2 || echo failed)
ifneq ($(DEPS_FAILED),)
$(error build dependencies are missing; see the messages above)
endif
endif

PKGS       := libzmq libsodium msgpack libxxhash
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

ALL_CFLAGS  := -std=c11 -D_GNU_SOURCE -I. $(PKG_CFLAGS) $(WARN) $(CFLAGS) $(SANFLAGS) -pthread -MMD -MP
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS) -pthread

CORE_SRC := $(wildcard common/*.c) $(wildcard storage/*.c) $(wildcard ring/*.c) \
            $(wildcard gossip/*.c) $(wildcard coordinator/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
CORE_LIB := $(BUILD)/lib/libringkv-core.a

SUPPORT_SRC := $(filter-out tests/support/cluster.c,$(wildcard tests/support/*.c))
SUPPORT_OBJ := $(SUPPORT_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

BIN := $(BUILD)/bin/storage-demo

.PHONY: all test unit asan run bench bench-storage format clean help
all: $(CORE_LIB) $(BIN) $(UNIT_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/bin/storage-demo: $(BUILD)/obj/bench/storage_demo.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(SUPPORT_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) $(CHECK_LIBS) -o $@

test: unit

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; RKV_TEST_TMP=$(abspath $(BUILD))/tmp $$t; done

asan:
	$(MAKE) BUILD=build/asan SAN=address,undefined OPT=-O1 test

run: $(BUILD)/bin/storage-demo
	$(BUILD)/bin/storage-demo $(BUILD)/demo-data

# ---- benchmarks (peers installed on demand, never needed by make/test) ----
BENCH_PEER_LIBS := -llmdb -lleveldb -lrocksdb
$(BUILD)/bin/storage-bench: $(BUILD)/obj/bench/storage_bench.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) $(BENCH_PEER_LIBS) -lstdc++ -o $@

bench-deps:
	scripts/deps.sh bench

bench: bench-deps
	$(MAKE) $(BUILD)/bin/storage-bench

bench-storage: bench
	$(BUILD)/bin/storage-bench $(BENCH_ARGS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

help:
	@sed -n '2,12p' Makefile

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
