# Parley - build, test, run.
#   make              build/parley
#   make test         unit, scenario and end-to-end tests (SAN=1: under ASan + UBSan, leaks fatal)
#   make run          the demo scenario on the sandbox provider, answering a signed sample webhook
#   make deps         install the Debian 12 packages (needs root or sudo)
#   make check        formatting (clang-format) and `parley check` of the bundled configs
#   make bench        the benchmark in bench/

CC      ?= cc
SAN     ?= 0
PKGS     = lua5.4 libmicrohttpd libcurl jansson sqlite3 libcrypto libedit

WARN     = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -Wvla
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

ifeq ($(SAN),1)
BUILD    = build/san
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
export ASAN_OPTIONS  = detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS  = suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
else
BUILD    = build
endif

SRC      = $(wildcard runtime/*.c)
OBJ      = $(SRC:runtime/%.c=$(BUILD)/obj/%.o)
LIBOBJ   = $(filter-out $(BUILD)/obj/main.o,$(OBJ))
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
PARLEY   = $(BUILD)/parley
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

.PHONY: all test unit e2e scenarios run deps check format bench clean
.SECONDARY:
.DELETE_ON_ERROR:
all: $(PARLEY)

# The real binary lives in $(BUILD); `build/parley` is always the plain build.
$(PARLEY): $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: runtime/%.c | $(BUILD)/obj
	$(CC) $(CFLAGS) -DPL_VERSION='"$(VERSION)"' -MMD -MP -c -o $@ $<

$(BUILD)/tests/%.o: tests/unit/%.c | $(BUILD)/tests
	$(CC) $(CFLAGS) -Iruntime -MMD -MP -c -o $@ $<

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(LIBOBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

-include $(OBJ:.o=.d) $(UNIT_BIN:=.d)

# Every suite prints "name: N passed, N failed"; tests/run adds them up and fails if any failed.
test: $(PARLEY) $(UNIT_BIN)
	@tests/run $(BUILD)

unit: $(UNIT_BIN)
	@tests/run $(BUILD) unit

e2e: $(PARLEY)
	@tests/run $(BUILD) e2e

scenarios: $(PARLEY)
	@tests/run $(BUILD) scenarios

run: $(PARLEY)
	@examples/run-demo $(PARLEY)

deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	  build-essential pkg-config liblua5.4-dev libmicrohttpd-dev libcurl4-openssl-dev \
	  libjansson-dev libsqlite3-dev libssl-dev libedit-dev python3 curl clang-format wrk valgrind

check: $(PARLEY)
	@clang-format --dry-run --Werror runtime/*.c runtime/*.h tests/unit/*.c tests/unit/*.h
	@for c in parley.json examples/*/parley.json; do \
	  WA_APP_SECRET=x WA_VERIFY_TOKEN=x PARLEY_TRIGGER_TOKEN=x WA_TOKEN=x $(PARLEY) check -c $$c || exit 1; \
	done

format:
	clang-format -i runtime/*.c runtime/*.h tests/unit/*.c tests/unit/*.h

bench: $(PARLEY)
	@bench/run $(PARLEY)

clean:
	rm -rf build
