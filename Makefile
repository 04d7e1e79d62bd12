# starling: one plain GNU Makefile. `make help` lists what it can do.
#
# Switches (give them on the command line):
#   BUILD=release|debug   release: -O2 + LTO (default); debug: -O0 -g3
#   SAN=address,undefined build with sanitizers into build/san (no jemalloc there)
#   V=1                   show the commands
#   FUZZ_SECONDS=N        how long `make fuzz` runs each target (default 60)

BUILD        ?= release
SAN          ?=
V            ?= 0
FUZZ_SECONDS ?= 60
CC           ?= cc
CLANG        ?= clang

ifeq ($(origin CC),default)
CC := gcc
endif

ifeq ($(V),1)
Q :=
say :=
else
Q := @
say = @printf '  %-7s %s\n' $(1) $(2);
endif

ANDROID_LIB := /usr/lib/x86_64-linux-gnu/android

# LTO objects need the compiler's own archiver for the symbol index.
ifneq ($(findstring clang,$(CC)),)
AR_LTO := llvm-ar
else
AR_LTO := gcc-ar
endif

# Headers of BoringSSL come first so the system OpenSSL headers are never seen.
CPPFLAGS := -I/usr/include/android -I. -isystem /usr/include/postgresql -D_GNU_SOURCE -MMD -MP
CFLAGS   := -std=c17 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wvla -fno-strict-aliasing -g -pthread
LDFLAGS  := -pthread -Wl,--as-needed -L$(ANDROID_LIB) -Wl,-rpath,$(ANDROID_LIB)
LDLIBS   := -luring -lxxhash -lidn -lconfig -lsqlite3 -lcares -lnanomsg \
            -l:libssl.so.0 -l:libcrypto.so.0 -lm

# jemalloc is the allocator of every program but the supervisor, linked from its static
# archive: the shared one loads libstdc++ (for C++'s operator new, which we never call),
# 0.8 MiB of resident size in every process. Under LTO the linker sees no reference to
# malloc when it scans the archive, so malloc is asked for by name; the program then
# exports the allocator and every library's calls reach it. common/core/malloc_conf.c holds
# its options, pulled in by name too; libm comes again after the archive, which needs it.
# The supervisor allocates at start and at reloads only, on one thread: glibc's malloc
# serves it, where jemalloc and its background thread would be half of the supervisor's
# resident size (2 of 4 MiB).
JEMALLOC := -Wl,--undefined=malloc -Wl,--undefined=malloc_conf -l:libjemalloc_pic.a

ifneq ($(SAN),)
O       := build/san
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=$(SAN) -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SAN)
else ifeq ($(BUILD),debug)
O       := build/debug
CFLAGS  += -O0 -g3
LDLIBS  += $(JEMALLOC) -lm
else ifeq ($(BUILD),release)
O       := build/release
CFLAGS  += -O2 -flto=auto
LDFLAGS += -O2 -flto=auto
LDLIBS  += $(JEMALLOC) -lm
else
$(error BUILD must be release or debug, not '$(BUILD)')
endif

# ---- what there is to build -------------------------------------------------------------
# Every folder that holds code becomes a static library of all its files but main.c;
# a folder with a main.c is also a program. `common/` is linked into everything: one
# library of its subsystems' folders (common/<subsystem>/*.c); its two programs live in
# common/cmd/<program>/.
DIRS        := common shm router c2s s2s bench
COMMON_SUBS := $(filter-out common/cmd,$(patsubst %/,%,$(wildcard common/*/)))
dir_srcs     = $(if $(filter common,$(1)),$(foreach s,$(COMMON_SUBS),$(wildcard $(s)/*.c)),\
                 $(filter-out $(1)/main.c $(1)/%_main.c,$(wildcard $(1)/*.c)))
lib_of     = $(O)/lib/lib$(1).a
LIBS      := $(foreach d,$(DIRS),$(if $(call dir_srcs,$(d)),$(call lib_of,$(d))))

# program name <- folder
PROG_starling        := common/cmd/starling
PROG_starling-c2s    := c2s
PROG_starling-router := router
PROG_starling-s2s    := s2s
PROG_starlingctl     := common/cmd/starlingctl
PROGS := $(foreach p,starling starling-c2s starling-router starling-s2s starlingctl,\
           $(if $(wildcard $(PROG_$(p))/main.c),$(O)/bin/$(p)))

# Bench programs: bench/<name>_main.c -> $(O)/bin/<name>
BENCH_MAINS := $(wildcard bench/*_main.c)
BENCH_PROGS := $(patsubst bench/%_main.c,$(O)/bin/%,$(BENCH_MAINS))

# Unit tests mirror the tree: tests/unit/<dir>/<file>.c tests <dir>/<file>.c (and
# tests/unit/common/<subsystem>/<file>.c tests common/<subsystem>/<file>.c).
UNIT_SRCS := $(wildcard tests/unit/*/*.c tests/unit/common/*/*.c)
UNIT_BINS := $(patsubst %.c,$(O)/%,$(UNIT_SRCS))

# C clients the integration tests drive: tests/integration/<name>.c -> $(O)/tests/integration/<name>
INTEG_SRCS := $(wildcard tests/integration/*.c)
INTEG_BINS := $(patsubst %.c,$(O)/%,$(INTEG_SRCS))

# Fuzz drivers live beside what they fuzz: <dir>/fuzz/<name>.c, seeds in
# <dir>/fuzz/corpus/<name>/; the target is build/fuzz/<dir, '/' as '-'>-<name>.
FUZZ_SRCS := $(wildcard */fuzz/*.c common/*/fuzz/*.c)
fuzz_bin   = build/fuzz/$(subst /,-,$(subst /fuzz/,-,$(basename $(1))))
FUZZ_BINS := $(foreach f,$(FUZZ_SRCS),$(call fuzz_bin,$(f)))

.PHONY: all deps test unit run cluster install bench fuzz fuzz-build clean help
.DEFAULT_GOAL := all

all: $(PROGS) $(BENCH_PROGS) $(INTEG_BINS)

help:
	@echo 'make            build every program into build/$(BUILD)/bin'
	@echo 'make run        install what is missing, build, start one node on localhost'
	@echo 'make cluster    the same for three nodes behind HAProxy, with a PostgreSQL of their own'
	@echo 'make install    copy the programs into $$(DESTDIR)$$(PREFIX)/bin (PREFIX=/usr/local)'
	@echo 'make test       install what is missing, build, run every test (unit, ASan+UBSan, fuzz, integration)'
	@echo 'make unit       build and run the unit tests of this flavour only'
	@echo 'make bench      run the benchmarks and print their figures'
	@echo 'make fuzz       run every libFuzzer target for FUZZ_SECONDS (default 60)'
	@echo 'make deps       apt-get install whatever build and test dependency is missing'
	@echo 'make clean      remove build/'
	@echo 'switches: BUILD=release|debug  SAN=address,undefined  V=1  FUZZ_SECONDS=N'

deps:
	$(Q)deploy/deps.sh

# ---- compile and link --------------------------------------------------------------------
$(O)/obj/%.o: %.c
	$(call say,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

define lib_rule
$(call lib_of,$(1)): $(patsubst %.c,$(O)/obj/%.o,$(call dir_srcs,$(1)))
	$$(call say,AR,$$@)
	$(Q)mkdir -p $$(@D)
	$(Q)rm -f $$@ && $(AR_LTO) rcs $$@ $$^
endef
$(foreach d,$(DIRS),$(if $(call dir_srcs,$(d)),$(eval $(call lib_rule,$(d)))))

# A program links its own folder's library, then common and shm: static libraries in
# dependency order (common's front-end layer uses shm's rings).
link_libs = $(foreach l,$(call lib_of,$(1)) $(call lib_of,common) $(call lib_of,shm),\
              $(filter $(l),$(LIBS)))

LDLIBS_starling = $(filter-out $(JEMALLOC),$(LDLIBS))
define prog_rule
$(O)/bin/$(1): $(O)/obj/$(PROG_$(1))/main.o $(call link_libs,$(PROG_$(1)))
	$$(call say,LD,$$@)
	$(Q)mkdir -p $$(@D)
	$(Q)$(CC) $(LDFLAGS) -o $$@ $$^ $$(or $$(LDLIBS_$(1)),$$(LDLIBS))
endef
$(foreach p,$(notdir $(PROGS)),$(eval $(call prog_rule,$(p))))

# Bench programs may drive the router's code in-process (bench/fanout_main.c).
BENCH_LIBS := $(foreach l,$(call lib_of,bench) $(call lib_of,router) $(call lib_of,common) \
                $(call lib_of,shm),$(filter $(l),$(LIBS)))
$(O)/bin/%: $(O)/obj/bench/%_main.o $(BENCH_LIBS)
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lexpat

$(O)/tests/unit/%: $(O)/obj/tests/unit/%.o $(LIBS)
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(call link_libs,$(firstword $(subst /, ,$*))) $(LDLIBS)

$(O)/obj/tests/unit/%.o: CPPFLAGS += -Itests/unit

# The store's tests speak SQL to PostgreSQL themselves; programs load libpq only when
# they use it (common/store/store_pgsql.h).
$(O)/tests/unit/common/store/%: LDLIBS += -lpq

$(O)/tests/integration/%: $(O)/obj/tests/integration/%.o
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(shell pkg-config --libs libstrophe)

# ---- tests -------------------------------------------------------------------------------
# The store's tests run twice: on SQLite, and on a PostgreSQL that tests/pg-run starts.
STORE_UNIT_BINS := $(filter $(O)/tests/unit/common/store/%,$(UNIT_BINS))
unit: $(UNIT_BINS)
	$(Q)tests/pg-run tests/run-unit $(UNIT_BINS) --pg $(STORE_UNIT_BINS)

test: deps
	$(Q)tests/run

# ---- fuzzing -----------------------------------------------------------------------------
# Each source is compiled once for every target (build/fuzz/obj/), with the sanitizers and
# the fuzzer's coverage; a target links its driver with the objects of its folder, common
# and shm.
FUZZ_O      := build/fuzz/obj
FUZZ_CFLAGS := -std=c17 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
               -I/usr/include/android -I. -isystem /usr/include/postgresql -D_GNU_SOURCE -MMD -MP
fuzz_dir_srcs = $(call dir_srcs,$(1)) $(if $(filter-out common,$(1)),$(call dir_srcs,common)) \
                $(if $(filter-out shm,$(1)),$(call dir_srcs,shm))
fuzz_objs     = $(patsubst %.c,$(FUZZ_O)/%.o,$(1) $(call fuzz_dir_srcs,$(firstword $(subst /, ,$(1)))))

$(FUZZ_O)/%.o: %.c
	$(call say,FUZZ-CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -c -o $@ $<

define fuzz_rule
$(call fuzz_bin,$(1)): $(call fuzz_objs,$(1))
	$$(call say,FUZZ-LD,$$@)
	$(Q)$(CLANG) -fsanitize=fuzzer,address,undefined -o $$@ $$^ \
	    -L$(ANDROID_LIB) -Wl,-rpath,$(ANDROID_LIB) $(filter-out $(JEMALLOC),$(LDLIBS))
endef
$(foreach f,$(FUZZ_SRCS),$(eval $(call fuzz_rule,$(f))))

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	$(Q)tests/run-fuzz $(FUZZ_SECONDS) $(FUZZ_BINS)

# ---- running and measuring ---------------------------------------------------------------
run: deps all
	$(Q)deploy/run-local.sh $(O)

cluster: deps all
	$(Q)deploy/run-cluster.sh $(O)

# The supervisor finds its children beside itself: the programs stay together.
PREFIX  ?= /usr/local
DESTDIR ?=
install: $(PROGS)
	$(Q)install -d $(DESTDIR)$(PREFIX)/bin
	$(Q)install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/

bench: deps all
	$(Q)bench/run.sh $(O)

clean:
	$(Q)rm -rf build

-include $(shell find $(O) $(FUZZ_O) -name '*.d' 2>/dev/null)
