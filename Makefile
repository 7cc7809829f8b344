# memprof - the only build file.
#
#   make            build build/memprof and build/libmemprof.so
#   make demo       install missing packages (as root), build, record the demo
#   make check      build and run every test suite
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
		libcriterion-dev valgrind python3 sqlite3 pkg-config

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
HELPER_C   := $(wildcard tests/helpers/*.c)
HELPER_CXX := $(wildcard tests/helpers/*.cc)
HELPERS    := $(patsubst tests/helpers/%.c,$(B)/helpers/%,$(HELPER_C)) \
	      $(patsubst tests/helpers/%.cc,$(B)/helpers/%,$(HELPER_CXX))
# Helpers are built the way distributions build: optimised, without frame
# pointers, so the tests prove that stacks come from CFI, not from %rbp.
HELPER_FLAGS := -O2 -g -fomit-frame-pointer -pthread

TEST_CFLAGS := $(CLI_CFLAGS) -Itests -DMP_BUILD_DIR='"$(CURDIR)/$(B)"' \
	       -DMP_SOURCE_DIR='"$(CURDIR)"' -Wno-missing-prototypes
TEST_LIBS := -lcriterion $(CLI_LIBS)

.PHONY: all demo check check-unit check-shim check-cli helpers install \
	uninstall clean help format format-check deps bench fuzz

all: $(B)/memprof $(B)/libmemprof.so

$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC(shim) $<"
	$(Q)$(CC) $(SHIM_CFLAGS) -MMD -MP -c $< -o $@

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC       $<"
	$(Q)$(CC) $(CLI_CFLAGS) -MMD -MP -c $< -o $@

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

helpers: $(HELPERS)

$(B)/tests/unit: $(UNIT_SRC) $(LIB_OBJ) $(wildcard tests/*.h)
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

# deps: install what is missing when root, else say what to install.
deps:
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

check: deps
	$(Q)$(MAKE) --no-print-directory all helpers $(B)/tests/unit $(B)/tests/shim $(B)/tests/cli
	$(Q)rm -rf $(B)/tmp && mkdir -p $(B)/tmp; status=0; \
	for t in unit shim cli; do \
		echo "== $$t tests"; \
		TMPDIR=$(CURDIR)/$(B)/tmp $(B)/tests/$$t $(CRITERION_OPTS) || status=1; \
	done; \
	exit $$status

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
	@echo "  helpers        build the test helper programs"
	@echo "  bench          time workloads bare, under memprof and heaptrack; BENCH_ROUNDS=3"
	@echo "  install        install under PREFIX=$(PREFIX)"
	@echo "  format         clang-format the sources; format-check verifies"
	@echo "  clean          remove $(B)/"
	@echo "variables: V=1 (show commands), SANITIZE=..., PREFIX=..., OPT=..."

-include $(shell find $(B) -name '*.d' 2>/dev/null)
