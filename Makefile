# memprof - the only build file.
#
#   make            build build/memprof and build/libmemprof.so
#   make demo       install missing packages (as root), build, record the demo
#   make check      build and run every test suite
#   make fuzz       fuzz the snapshot reader and the suppressions parser
#   make help       list the targets
#
# V=1 shows the commands. SANITIZE=address,undefined builds the CLI and the
# unit tests with sanitizers (never the shim: sanitizers replace malloc).

CC      ?= gcc
CXX     ?= g++
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib/memprof
INCDIR  ?= $(PREFIX)/include
MANDIR  ?= $(PREFIX)/share/man
B       := build

ifeq ($(V),1)
Q :=
else
Q := @
endif

DEB_PACKAGES := build-essential g++ libelf-dev libdw-dev zlib1g-dev \
		libcriterion-dev
# What the tests run besides: Valgrind (the oracles), real programs, node
# (an independent pprof decoder), Chromium (the HTML report).
TEST_PACKAGES := valgrind python3 sqlite3 pkg-config git nodejs chromium

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	   -Wformat=2 -Wvla -Werror
OPT     ?= -O2 -g
BASE_CFLAGS := -std=gnu11 $(WARN) $(OPT) -Ilib -D_GNU_SOURCE
SAN     := $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer,)

# The shim: position independent, hidden by default, initial-exec TLS.
SHIM_CFLAGS := $(BASE_CFLAGS) -fPIC -fvisibility=hidden \
	       -ftls-model=initial-exec -fno-stack-protector -fno-builtin-malloc \
	       -DMP_IN_SHIM=1
SHIM_LDFLAGS := -shared -Wl,-z,now -Wl,--version-script=lib/shim/shim.map \
		-Wl,--no-undefined
SHIM_LIBS := -lz -lm -ldl -lpthread

# The CLI and the analysis library.
CLI_CFLAGS := $(BASE_CFLAGS) $(SAN) -DMP_LIBDIR='"$(LIBDIR)"'
CLI_LIBS := -ldw -lelf -lz -lstdc++ -lm -ldl -lpthread

COMMON_SRC := $(wildcard lib/common/*.c)
SHIM_SRC   := $(wildcard lib/shim/*.c)
TRACE_SRC  := $(wildcard lib/trace/*.c)
CMD_SRC    := $(wildcard cmd/*.c)

SHIM_OBJ   := $(patsubst %.c,$(B)/pic/%.o,$(SHIM_SRC) $(COMMON_SRC))
LIB_OBJ    := $(patsubst %.c,$(B)/obj/%.o,$(TRACE_SRC) $(COMMON_SRC))
CMD_OBJ    := $(patsubst %.c,$(B)/obj/%.o,$(CMD_SRC))

UNIT_SRC   := $(wildcard tests/unit/*.c)
SHIMT_SRC  := $(wildcard tests/shim/*.c)
CLIT_SRC   := $(wildcard tests/cli/*.c)
# tests/helpers/mx_lib.c is a shared library (libmx.so), not a program.
HELPER_C   := $(filter-out tests/helpers/mx_lib.c,$(wildcard tests/helpers/*.c))
HELPER_CXX := $(wildcard tests/helpers/*.cc)
HELPERS    := $(patsubst tests/helpers/%.c,$(B)/helpers/%,$(HELPER_C)) \
	      $(patsubst tests/helpers/%.cc,$(B)/helpers/%,$(HELPER_CXX)) \
	      $(B)/helpers/libmx.so
# Helpers are built the way distributions build: optimised, without frame
# pointers, so the tests prove that stacks come from CFI, not from %rbp.
HELPER_FLAGS := -O2 -g -fomit-frame-pointer -pthread

TEST_CFLAGS := $(CLI_CFLAGS) -Itests -DMP_BUILD_DIR='"$(CURDIR)/$(B)"' \
	       -DMP_SOURCE_DIR='"$(CURDIR)"' -Wno-missing-prototypes
TEST_LIBS := -lcriterion $(CLI_LIBS)

.PHONY: all demo check check-unit check-shim check-cli helpers install \
	uninstall clean help format format-check deps test-deps bench fuzz fuzzers \
	fuzz-merge check-fuzz

all: $(B)/memprof $(B)/libmemprof.so

$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC(shim) $<"
	$(Q)$(CC) $(SHIM_CFLAGS) -MMD -MP -c $< -o $@

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC       $<"
	$(Q)$(CC) $(CLI_CFLAGS) -MMD -MP -c $< -o $@

# The HTML report's script and style sheet are assembled into trace_html.o
# (.incbin, read from the top of the tree): rebuild it when they change.
HTML_ASSETS := $(wildcard lib/trace/html/*)
$(B)/obj/lib/trace/trace_html.o $(B)/fuzz/obj/lib/trace/trace_html.o: $(HTML_ASSETS)

$(B)/libmemprof.so: $(SHIM_OBJ) lib/shim/shim.map
	@echo "  LD       $@"
	$(Q)$(CC) $(SHIM_LDFLAGS) -o $@ $(SHIM_OBJ) $(SHIM_LIBS)

$(B)/memprof: $(CMD_OBJ) $(LIB_OBJ)
	@echo "  LD       $@"
	$(Q)$(CC) $(SAN) -o $@ $(CMD_OBJ) $(LIB_OBJ) $(CLI_LIBS)

$(B)/helpers/%: tests/helpers/%.c
	@mkdir -p $(dir $@)
	@echo "  CC(test) $<"
	$(Q)$(CC) $(HELPER_FLAGS) -Ilib -o $@ $< -ldl

$(B)/helpers/%: tests/helpers/%.cc
	@mkdir -p $(dir $@)
	@echo "  CXX(test) $<"
	$(Q)$(CXX) $(HELPER_FLAGS) -Ilib -o $@ $<

$(B)/helpers/libmx.so: tests/helpers/mx_lib.c
	@mkdir -p $(dir $@)
	@echo "  CC(test) $<"
	$(Q)$(CC) $(HELPER_FLAGS) -fPIC -shared -o $@ $<

helpers: $(HELPERS)

# Some unit tests compile the shim's sources in (test_intern.c).
$(B)/tests/unit: $(UNIT_SRC) $(LIB_OBJ) $(wildcard tests/*.h) \
		 $(wildcard lib/shim/*.c lib/shim/*.h)
	@mkdir -p $(dir $@)
	@echo "  LD       $@"
	$(Q)$(CC) $(TEST_CFLAGS) -o $@ $(UNIT_SRC) $(LIB_OBJ) $(TEST_LIBS)

$(B)/tests/shim: $(SHIMT_SRC) $(LIB_OBJ) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	@echo "  LD       $@"
	$(Q)$(CC) $(TEST_CFLAGS) -o $@ $(SHIMT_SRC) $(LIB_OBJ) $(TEST_LIBS)

$(B)/tests/cli: $(CLIT_SRC) $(LIB_OBJ) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	@echo "  LD       $@"
	$(Q)$(CC) $(TEST_CFLAGS) -o $@ $(CLIT_SRC) $(LIB_OBJ) $(TEST_LIBS)

# Criterion runs tests in parallel workers; -j2 matches the machine.
CRITERION_OPTS ?= --jobs 2

check-unit: $(B)/tests/unit
	$(B)/tests/unit $(CRITERION_OPTS)

check-shim: all helpers $(B)/tests/shim
	$(B)/tests/shim $(CRITERION_OPTS)

check-cli: all helpers $(B)/tests/cli
	$(B)/tests/cli $(CRITERION_OPTS)

# deps: install what is missing when root, else say what to install;
# test-deps: the same for the tests' packages too.
test-deps: DEB_PACKAGES += $(TEST_PACKAGES)
deps test-deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" \
			|| missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq $$missing >/dev/null || exit 1; \
		else \
			echo "memprof needs these Debian packages; run:"; \
			echo "  sudo apt-get install$$missing"; exit 1; \
		fi; \
	fi

check: test-deps
	$(Q)$(MAKE) --no-print-directory all helpers $(B)/tests/unit $(B)/tests/shim $(B)/tests/cli $(FUZZ_REPLAY)
	$(Q)rm -rf $(B)/tmp && mkdir -p $(B)/tmp; status=0; \
	for t in unit shim cli; do \
		echo "== $$t tests"; \
		TMPDIR=$(CURDIR)/$(B)/tmp MEMPROF_SYMBOL_CACHE=$(CURDIR)/$(B)/tmp/symbols \
			$(B)/tests/$$t $(CRITERION_OPTS) || status=1; \
	done; \
	$(MAKE) --no-print-directory check-fuzz || status=1; \
	exit $$status

# ---- fuzzing (tests/fuzz/, testdata/fuzz/) ----------------------------
# One libFuzzer harness per tests/fuzz/fuzz_NAME.c, with its committed
# corpus in testdata/fuzz/NAME/ and every input that ever crashed it in
# testdata/fuzz/regressions/NAME/. `make fuzz` builds the harnesses with
# clang (libFuzzer, ASan, UBSan) and runs each for FUZZ_SECONDS, adding
# what it finds to $(B)/fuzz/corpus/NAME/ and crashes to $(B)/fuzz/crashes/;
# FUZZ_OPTS passes more libFuzzer flags. `make fuzz-merge` minimizes the
# committed corpus together with what the runs found (-merge=1, on edges
# only: -use_counters=0 keeps the same coverage in a few times fewer files).
# `make check` (check-fuzz) replays both directories through the same
# harnesses built with $(CC) and tests/fuzz/replay.c, no clang needed.
FUZZERS      := reader supp symstore
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_OPTS    ?=
# The reader's harness saves every snapshot it accepts: on tmpfs if any.
FUZZ_TMP     ?= $(if $(wildcard /dev/shm/.),/dev/shm,$(CURDIR)/$(B)/tmp)
FUZZ_CFLAGS  := -std=gnu11 $(WARN) -O1 -g -fno-omit-frame-pointer -Ilib \
		-Itests/fuzz -D_GNU_SOURCE -DMP_LIBDIR='"$(LIBDIR)"' \
		-DMP_LIBFUZZER=1 -fsanitize=address,undefined \
		-fno-sanitize-recover=undefined
FUZZ_LIB_OBJ := $(patsubst %.c,$(B)/fuzz/obj/%.o,$(TRACE_SRC) $(COMMON_SRC))
FUZZ_BINS    := $(patsubst %,$(B)/fuzz/fuzz_%,$(FUZZERS))
FUZZ_REPLAY  := $(patsubst %,$(B)/tests/replay_%,$(FUZZERS))
.SECONDARY: $(FUZZ_LIB_OBJ)

$(B)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC(fuzz) $<"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD(fuzz) $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(CLI_LIBS)

$(B)/tests/replay_%: tests/fuzz/replay.c tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD       $@"
	$(Q)$(CC) $(CLI_CFLAGS) -Itests/fuzz -o $@ tests/fuzz/replay.c tests/fuzz/fuzz_$*.c $(LIB_OBJ) $(SAN) $(CLI_LIBS)

fuzzers: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	$(Q)mkdir -p $(B)/fuzz/crashes $(B)/tmp; for f in $(FUZZERS); do \
		mkdir -p $(B)/fuzz/corpus/$$f; \
		echo "== fuzz_$$f for $(FUZZ_SECONDS) s"; \
		TMPDIR=$(FUZZ_TMP) $(B)/fuzz/fuzz_$$f \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 \
			-dict=tests/fuzz/$$f.dict \
			-artifact_prefix=$(B)/fuzz/crashes/$$f- $(FUZZ_OPTS) \
			$(B)/fuzz/corpus/$$f testdata/fuzz/$$f \
			$$(ls -d testdata/fuzz/regressions/$$f 2>/dev/null) \
			|| exit 1; \
	done

fuzz-merge: $(FUZZ_BINS)
	$(Q)mkdir -p $(B)/tmp; for f in $(FUZZERS); do \
		rm -rf $(B)/fuzz/merged/$$f && mkdir -p $(B)/fuzz/merged/$$f \
			$(B)/fuzz/corpus/$$f && \
		TMPDIR=$(FUZZ_TMP) $(B)/fuzz/fuzz_$$f -merge=1 \
			-use_counters=0 $(B)/fuzz/merged/$$f testdata/fuzz/$$f \
			$(B)/fuzz/corpus/$$f || exit 1; \
		rm -f testdata/fuzz/$$f/* && \
		cp $(B)/fuzz/merged/$$f/* testdata/fuzz/$$f/ || exit 1; \
	done; du -sh testdata/fuzz

check-fuzz: $(FUZZ_REPLAY)
	$(Q)mkdir -p $(B)/tmp; status=0; for f in $(FUZZERS); do \
		echo "== fuzz regressions: $$f"; \
		TMPDIR=$(CURDIR)/$(B)/tmp $(B)/tests/replay_$$f testdata/fuzz/$$f \
			$$(ls -d testdata/fuzz/regressions/$$f 2>/dev/null) \
			|| status=1; \
	done; exit $$status

# bench: informational timings (tests/bench/run.sh); BENCH_ROUNDS=N.
bench: all helpers
	$(Q)tests/bench/run.sh $(B)

DEMO_OUT := $(B)/demo.memprof
demo: deps
	$(Q)$(MAKE) --no-print-directory all $(B)/helpers/demo
	$(B)/memprof record -o $(DEMO_OUT) -- $(B)/helpers/demo
	$(B)/memprof top $(DEMO_OUT) -n 10
	$(B)/memprof top $(DEMO_OUT) --by function -n 5
	$(B)/memprof leaks $(DEMO_OUT)
	$(B)/memprof info $(DEMO_OUT)
	$(B)/memprof report -o $(B)/demo.html $(DEMO_OUT)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
		$(DESTDIR)$(MANDIR)/man5
	install -m 755 $(B)/memprof $(DESTDIR)$(BINDIR)/memprof
	install -m 644 $(B)/libmemprof.so $(DESTDIR)$(LIBDIR)/libmemprof.so
	$(if $(wildcard lib/memprof.h),install -m 644 lib/memprof.h $(DESTDIR)$(INCDIR)/memprof.h)
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(wildcard man/*.3) $(DESTDIR)$(MANDIR)/man3/
	install -m 644 $(wildcard man/*.5) $(DESTDIR)$(MANDIR)/man5/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/memprof $(DESTDIR)$(LIBDIR)/libmemprof.so \
		$(DESTDIR)$(INCDIR)/memprof.h
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man1/%,$(wildcard man/*.1))
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man3/%,$(wildcard man/*.3))
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man5/%,$(wildcard man/*.5))

FORMAT_SRC = $(wildcard cmd/*.c lib/*.h lib/*/*.c lib/*/*.h tests/*/*.c tests/*.h)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf $(B)

help:
	@echo "targets:"
	@echo "  all (default)  build $(B)/memprof and $(B)/libmemprof.so"
	@echo "  demo           install packages if root, build, record and show the demo"
	@echo "  check          run all tests (unit, shim, cli); SANITIZE=address,undefined"
	@echo "  check-unit     unit tests of lib/ only"
	@echo "  check-shim     programs under the shim"
	@echo "  check-cli      the memprof command line"
	@echo "  check-fuzz     replay the fuzz corpus and regressions (testdata/fuzz)"
	@echo "  fuzz           fuzz with clang's libFuzzer; FUZZ_SECONDS=60 per harness"
	@echo "  fuzz-merge     minimize testdata/fuzz/ with what fuzz found"
	@echo "  helpers        build the test helper programs"
	@echo "  bench          time workloads bare, under memprof and heaptrack; BENCH_ROUNDS=3"
	@echo "  install        install under PREFIX=$(PREFIX)"
	@echo "  format         clang-format the sources; format-check verifies"
	@echo "  clean          remove $(B)/"
	@echo "variables: V=1 (show commands), SANITIZE=..., PREFIX=..., OPT=..."

-include $(shell find $(B) -name '*.d' 2>/dev/null)
