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

PKGS       := libzmq libsodium libxxhash
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

ALL_CFLAGS  := -std=c11 -D_GNU_SOURCE -I. $(PKG_CFLAGS) $(WARN) $(CFLAGS) $(SANFLAGS) -pthread -MMD -MP
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS) -pthread

CORE_SRC := $(wildcard common/*.c) $(wildcard storage/*.c) $(wildcard ring/*.c) \
            $(wildcard gossip/*.c) $(wildcard coordinator/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
CORE_LIB := $(BUILD)/lib/libringkv-core.a

NODE_SRC := $(wildcard node/*.c)
NODE_OBJ := $(NODE_SRC:%.c=$(BUILD)/obj/%.o)

# libringkv: the client and what it needs of common/ and ring/ (no storage,
# no coordinator). The shared library is built from position-independent
# objects and exports only ringkv_* (client/libringkv.map).
CLIENT_SRC := client/client.c common/err.c common/alloc.c common/log.c common/buf.c \
              common/clock.c common/codec.c common/wire.c common/object.c common/toml.c \
              common/config.c common/cert.c storage/policy.c ring/ring.c
CLIENT_LIB := $(BUILD)/lib/libringkv.a
CLIENT_SO  := $(BUILD)/lib/libringkv.so.1
VERSION    := 0.1.0
PREFIX     ?= /usr/local
DESTDIR    ?=

SUPPORT_SRC := $(filter-out tests/support/cluster.c,$(wildcard tests/support/*.c))
SUPPORT_OBJ := $(SUPPORT_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
CLUSTER_SRC := $(wildcard tests/cluster/test_*.c)
CLUSTER_BIN := $(CLUSTER_SRC:tests/cluster/%.c=$(BUILD)/tests/%)
CLUSTER_SUPPORT := $(BUILD)/obj/tests/support/cluster.o $(BUILD)/obj/tests/support/testutil.o \
                   $(BUILD)/obj/tests/support/testrun.o

BIN := $(BUILD)/bin/ringkvd $(BUILD)/bin/ringkv $(BUILD)/bin/storage-demo \
       $(if $(wildcard bench/ringkv_bench.c),$(BUILD)/bin/ringkv-bench)

.PHONY: all test unit cluster examples asan run bench bench-storage format clean help install \
        fuzz fuzz-ci
all: $(CORE_LIB) $(CLIENT_LIB) $(CLIENT_SO) $(BIN) $(UNIT_BIN) \
     $(CLUSTER_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -c $< -o $@

$(CLIENT_LIB): $(CLIENT_SRC:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(CLIENT_SO): $(CLIENT_SRC:%.c=$(BUILD)/pic/%.o) client/libringkv.map
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -shared -Wl,-soname,libringkv.so.1 \
	    -Wl,--version-script=client/libringkv.map $(filter %.o,$^) $(PKG_LIBS) -o $@
	ln -sf libringkv.so.1 $(BUILD)/lib/libringkv.so

$(BUILD)/bin/ringkvd: $(NODE_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -lm -o $@

$(BUILD)/bin/ringkv: $(BUILD)/obj/client/cli.o $(CLIENT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -o $@

# ringkv-bench: the libringkv mode and the RESP mode (bench/bench.h)
RINGKV_BENCH_OBJ := $(addprefix $(BUILD)/obj/bench/,ringkv_bench.o bench_async.o bench_util.o \
                    bench_resp.o resp_reply.o machine.o)
$(BUILD)/bin/ringkv-bench: $(RINGKV_BENCH_OBJ) $(CLIENT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -lm -o $@

$(BUILD)/bin/storage-demo: $(BUILD)/obj/bench/storage_demo.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -o $@

$(UNIT_BIN): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(SUPPORT_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) $(CHECK_LIBS) -o $@

$(CLUSTER_BIN): $(BUILD)/tests/%: $(BUILD)/obj/tests/cluster/%.o $(CLUSTER_SUPPORT) $(CLIENT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) $(CHECK_LIBS) -o $@

install: $(CLIENT_LIB) $(CLIENT_SO) $(BUILD)/bin/ringkv $(BUILD)/bin/ringkvd
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 644 client/ringkv.h $(DESTDIR)$(PREFIX)/include/ringkv.h
	install -m 644 $(CLIENT_LIB) $(DESTDIR)$(PREFIX)/lib/libringkv.a
	install -m 755 $(CLIENT_SO) $(DESTDIR)$(PREFIX)/lib/libringkv.so.1
	ln -sf libringkv.so.1 $(DESTDIR)$(PREFIX)/lib/libringkv.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' client/ringkv.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ringkv.pc
	install -m 755 $(BUILD)/bin/ringkv $(BUILD)/bin/ringkvd $(DESTDIR)$(PREFIX)/bin/

TEST_ENV := RKV_TEST_TMP=$(abspath $(BUILD))/tmp RKV_BIN=$(abspath $(BUILD))/bin

test: unit cluster examples

# The example builds against an installed copy (make install into a staging
# prefix) with pkg-config, and against the static archive, and both fail
# cleanly when no ring is there (exit 3). (pkg-config --static cannot be
# used: Debian's libzmq.pc lists a bare libprotokit.a.)
STAGE := $(abspath $(BUILD))/stage
examples: $(CLIENT_LIB) $(CLIENT_SO) $(BUILD)/bin/ringkv $(BUILD)/bin/ringkvd
	@echo "== examples (installed into $(STAGE))"
	@rm -rf $(STAGE) && $(MAKE) -s install PREFIX=$(STAGE) >/dev/null
	@export PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig; \
	 $(CC) $(SANFLAGS) examples/hello.c $$(pkg-config --cflags --libs ringkv) \
	     -Wl,-rpath,$(STAGE)/lib -o $(BUILD)/hello && \
	 $(CC) $(SANFLAGS) examples/hello.c $$(pkg-config --cflags ringkv) $(STAGE)/lib/libringkv.a \
	     $(PKG_LIBS) -pthread -o $(BUILD)/hello-static && \
	 { $(BUILD)/hello 127.0.0.1:1 >/dev/null 2>&1; test $$? -eq 3; } && \
	 { $(BUILD)/hello-static 127.0.0.1:1 >/dev/null 2>&1; test $$? -eq 3; } && \
	 echo "examples/hello.c builds against the installed library (shared and static) and runs"

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $(TEST_ENV) $$t; done

cluster: $(CLUSTER_BIN) $(BUILD)/bin/ringkvd $(BUILD)/bin/ringkv
	@set -e; for t in $(CLUSTER_BIN); do echo "== $$t"; $(TEST_ENV) $$t; done

asan:
	$(MAKE) BUILD=build/asan SAN=address,undefined OPT=-O1 test

run: $(BUILD)/bin/ringkvd $(BUILD)/bin/ringkv
	scripts/run-ring.sh $(BUILD)/bin cluster.toml

# ---- benchmarks (peers installed on demand, never needed by make/test) ----
BENCH_PEER_LIBS := -llmdb -lleveldb -lrocksdb
$(BUILD)/bin/storage-bench: $(BUILD)/obj/bench/storage_bench.o $(BUILD)/obj/bench/machine.o \
                            $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) $(BENCH_PEER_LIBS) -lstdc++ -o $@

bench-deps:
	scripts/deps.sh bench

bench: bench-deps
	$(MAKE) $(BUILD)/bin/storage-bench

bench-storage: bench
	$(BUILD)/bin/storage-bench $(BENCH_ARGS)

# ---- fuzzing (clang + libFuzzer; never needed by make/test) -----------------
#
#   make fuzz         build the targets of tests/fuzz/ into build/fuzz and run
#                     each for FUZZ_SECONDS (60) on a working copy of its
#                     committed corpus (build/fuzz/corpus-TARGET); summary of
#                     executions per target in build/fuzz/summary.txt
#   make fuzz-ci      each target for FUZZ_CI_SECONDS (10) on a fresh copy of
#                     the committed corpus; fails on any crash, leak or
#                     timeout. Skips (exit 0) with a message if clang's
#                     libFuzzer is not installed.
#   make fuzz-corpus  regenerate the committed seeds with tests/fuzz/make_corpus.c
#
# Only clang has libFuzzer, so this section builds its own objects with
# FUZZ_CC under build/fuzz and leaves $(BUILD) alone. docs/fuzzing.md has
# the targets, the corpora and the results.
FUZZ_CC         ?= clang
FUZZ_SECONDS    ?= 60
FUZZ_CI_SECONDS ?= 10
FUZZ_DIR        := build/fuzz
FUZZ_TARGETS    := wire object codec storage config resp gossip
FUZZ_SAN        := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS     := -std=c11 -D_GNU_SOURCE -I. $(PKG_CFLAGS) $(WARN) -g -O1 $(FUZZ_SAN) \
                   -fsanitize=fuzzer-no-link -pthread -MMD -MP
FUZZ_LIB_SRC    := $(wildcard common/*.c) $(wildcard storage/*.c) $(wildcard gossip/*.c) \
                   tests/support/memvfs.c tests/support/testutil.c
FUZZ_LIB        := $(FUZZ_DIR)/libfuzz-core.a
FUZZ_BIN        := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
# -timeout: one input running longer than this is a finding (a hang).
FUZZ_RUN_FLAGS  := -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
# A shell test: can FUZZ_CC build and link a libFuzzer target?
FUZZ_PROBE      = mkdir -p $(FUZZ_DIR) && \
                  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' \
                      > $(FUZZ_DIR)/probe.c && \
                  $(FUZZ_CC) -fsanitize=fuzzer,address,undefined $(FUZZ_DIR)/probe.c \
                      -o $(FUZZ_DIR)/probe >/dev/null 2>&1
# Runs every target: $(1) corpus dir prefix, $(2) seconds. Copies the
# committed seeds into the working corpus first (libFuzzer adds what it finds
# to the first directory it is given, never to the repository).
FUZZ_RUN        = status=0; : > $(FUZZ_DIR)/summary.txt; \
    for t in $(FUZZ_TARGETS); do \
        dir=$(FUZZ_DIR)/$(1)-$$t; mkdir -p $$dir $(FUZZ_DIR)/artifacts; \
        cp tests/fuzz/corpus/$$t/* $$dir/; \
        dict=; if [ -f tests/fuzz/$$t.dict ]; then dict=-dict=tests/fuzz/$$t.dict; fi; \
        echo "== fuzz_$$t: $(2) s, corpus $$dir"; \
        if ! $(FUZZ_DIR)/fuzz_$$t $(FUZZ_RUN_FLAGS) -max_total_time=$(2) $$dict \
                -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- $$dir > $(FUZZ_DIR)/$$t.log 2>&1; then \
            status=1; echo "fuzz_$$t FAILED: see $(FUZZ_DIR)/$$t.log and $(FUZZ_DIR)/artifacts/"; \
            grep -m1 -E '^(==[0-9]+==ERROR|SUMMARY|.*fuzz check failed)' $(FUZZ_DIR)/$$t.log; \
        fi; \
        done_line=$$(grep -E '^Done [0-9]+ runs' $(FUZZ_DIR)/$$t.log | tail -1); \
        printf 'fuzz_%-8s %s (corpus: %s inputs)\n' $$t "$${done_line:-did not finish}" \
            "$$(ls $$dir | wc -l)" >> $(FUZZ_DIR)/summary.txt; \
    done; \
    echo "== fuzz summary"; cat $(FUZZ_DIR)/summary.txt; exit $$status

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
	rm -f $@ && $(AR) rcs $@ $^

$(FUZZ_BIN): $(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -pthread $^ $(PKG_LIBS) -lm -o $@

.PHONY: fuzz-build fuzz-corpus
fuzz-build: $(FUZZ_BIN)

fuzz:
	@$(FUZZ_PROBE) || { echo "make fuzz: $(FUZZ_CC) cannot build libFuzzer targets;" \
	    "install it with: apt-get install clang"; exit 1; }
	@$(MAKE) --no-print-directory fuzz-build
	@$(call FUZZ_RUN,corpus,$(FUZZ_SECONDS))

fuzz-ci:
	@if ! { $(FUZZ_PROBE); }; then \
	    echo "make fuzz-ci: SKIPPED: $(FUZZ_CC) with libFuzzer is not installed" \
	        "(apt-get install clang to run the fuzz targets)"; exit 0; fi; \
	$(MAKE) --no-print-directory fuzz-build && \
	rm -rf $(FUZZ_DIR)/ci-corpus-* && { $(call FUZZ_RUN,ci-corpus,$(FUZZ_CI_SECONDS)); }

fuzz-corpus: $(BUILD)/tests/make_corpus
	$(BUILD)/tests/make_corpus tests/fuzz/corpus

$(BUILD)/tests/make_corpus: $(BUILD)/obj/tests/fuzz/make_corpus.o $(SUPPORT_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) $(CHECK_LIBS) -o $@

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
# ---- end of fuzzing ---------------------------------------------------------

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

help:
	@sed -n '2,12p' Makefile

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
