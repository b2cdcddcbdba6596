# Quartet build. `make` builds build/kernel.elf; docs/usage.md describes every target.
#   make run   [SMP=4] [ACCEL=auto|kvm|tcg] [CMDLINE='...'] [TIMEOUT=0]
#   make test  host XCTest + QEMU integration tests (installs QEMU/NASM if missing)
#   make races the race gallery; its table replaces the one in README.md
#   make debug QEMU stopped with a gdb stub on :1234; then `gdb -x scripts/gdbinit`
#   make bench benchmarks (figures and ratios; never fails on timing)
#   make bench-linux / bench-compare   Debian's kernel on the same QEMU; both side by side
#   make test-scale   the 64-CPU boot test (minutes under TCG)

SWIFTC   ?= swiftc
# The toolchain's bin directory, found through swiftc with every symlink resolved
# (swiftc is often a link, e.g. /usr/bin/swiftc -> .../usr/bin/swift-driver).
TOOLBIN  := $(dir $(realpath $(shell command -v $(SWIFTC) 2>/dev/null)))
LLD      ?= $(TOOLBIN)ld.lld
NM       ?= $(TOOLBIN)llvm-nm
OBJCOPY  ?= $(TOOLBIN)llvm-objcopy
DEMANGLE ?= $(TOOLBIN)swift-demangle
OBJDUMP  ?= $(TOOLBIN)llvm-objdump
NASM     ?= nasm
BUILD    := build
SMP      ?= 4
ACCEL    ?= auto
CMDLINE  ?=
# `make run` boots into the bsd4 demo; DEMO= (empty) boots to the bare monitor.
DEMO     ?= bsd4
TIMEOUT  ?= 0
# Knobs compiled in (negative controls use command-line options, not rebuilds).
SWIFT_DEFINES ?=

EMBEDDED_LIB := $(TOOLBIN)../lib/swift/embedded/x86_64-unknown-none-elf
SWIFT_SOURCES := $(shell find Kernel -name '*.swift' | LC_ALL=C sort)
ASM_SOURCES   := $(wildcard Boot/*.asm)
ASM_OBJECTS   := $(patsubst Boot/%.asm,$(BUILD)/boot/%.o,$(ASM_SOURCES))

SWIFTFLAGS := -enable-experimental-feature Embedded -target x86_64-unknown-none-elf \
	-parse-as-library -wmo -Osize -module-name Quartet \
	-Xfrontend -disable-stack-protector -enforce-exclusivity=unchecked \
	-Xcc -mno-red-zone \
	-Xcc -mno-sse -Xcc -mno-sse2 -Xcc -mno-mmx \
	-g $(SWIFT_DEFINES)

.PHONY: all run test test-host test-integration test-scale debug bench bench-linux bench-compare races clean setup
all: $(BUILD)/kernel.elf
# A recipe that fails leaves no target behind (a half-written kernel would
# otherwise look up to date to the next make).
.DELETE_ON_ERROR:

# swiftc leaves the time stamp of an object file whose contents did not change
# alone: the touch keeps an edit that changes no code from recompiling every time.
$(BUILD)/kernel.o: $(SWIFT_SOURCES) Makefile
	@mkdir -p $(BUILD)
	$(SWIFTC) $(SWIFTFLAGS) -c $(SWIFT_SOURCES) -o $@
	@touch $@

$(BUILD)/boot/%.o: Boot/%.asm Makefile
	@mkdir -p $(BUILD)/boot
	$(NASM) -f elf64 -g -F dwarf -o $@ $<

# The link, with the symbol table's section still zero-filled (Boot/symtab.asm).
$(BUILD)/kernel.linked.elf: $(BUILD)/kernel.o $(ASM_OBJECTS) Linker/kernel.ld scripts/check-image.sh scripts/check-critical-exit.sh
	$(LLD) -nostdlib -static -z max-page-size=4096 --no-relax -T Linker/kernel.ld \
		-o $@ $(ASM_OBJECTS) $(BUILD)/kernel.o $(EMBEDDED_LIB)/libswiftUnicodeDataTables.a
	bash scripts/check-image.sh $@
	OBJDUMP='$(OBJDUMP)' bash scripts/check-critical-exit.sh $@ || { rm -f $@; exit 1; }

# The kernel: the same image with its symbol table written in (no address moves).
$(BUILD)/kernel.elf: $(BUILD)/kernel.linked.elf scripts/symbols.sh scripts/check-image.sh
	NM='$(NM)' DEMANGLE='$(DEMANGLE)' OBJCOPY='$(OBJCOPY)' bash scripts/symbols.sh $< $@

setup:
	@bash scripts/setup.sh

# Targets that need the tools run setup first and only then build: with `make -j`
# prerequisites run in parallel, so the build is a sub-make after setup.
run: setup
	@$(MAKE) --no-print-directory all
	@bash scripts/run-qemu.sh --smp $(SMP) --accel $(ACCEL) --timeout $(TIMEOUT) \
		--cmdline "$(if $(DEMO),demo=$(DEMO) )$(CMDLINE)" $(BUILD)/kernel.elf

# The race gallery: each seed race's torture with the fix and with its control;
# the table of this run replaces the gallery block in README.md.
races: setup
	@$(MAKE) --no-print-directory all
	@bash scripts/races.sh --kernel $(BUILD)/kernel.elf --out $(BUILD)/races --update-readme

debug: setup
	@$(MAKE) --no-print-directory all
	@bash scripts/run-qemu.sh --smp $(SMP) --accel tcg --gdb --cmdline "$(CMDLINE)" $(BUILD)/kernel.elf

# XCTest only: the project has no Swift Testing tests, and its empty closing line
# ("0 tests") would be the last word of the run.
SWIFT_TEST := swift test --disable-swift-testing

test: setup
	@$(MAKE) --no-print-directory all
	@bash scripts/test.sh $(SWIFT_TEST)

test-host:
	$(SWIFT_TEST) --filter CoreTests

# 64 CPUs under TCG (minutes on a 2-core host: not part of `make test`).
test-scale: setup
	@$(MAKE) --no-print-directory all
	QUARTET_SCALE64=1 $(SWIFT_TEST) --filter 'SMPTests.testScale'

test-integration: setup
	@$(MAKE) --no-print-directory all
	$(SWIFT_TEST) --filter IntegrationTests

bench: setup
	@$(MAKE) --no-print-directory all
	@bash scripts/bench.sh

# Debian's kernel running bench/linux/qbench.c on the same QEMU (docs/benchmarks.md).
bench-linux:
	@bash scripts/bench-linux.sh --accel $(ACCEL) --smp $(SMP)

# Quartet and Linux back to back, one table per accelerator.
bench-compare: setup
	@$(MAKE) --no-print-directory all
	@bash scripts/bench-compare.sh --accel $(ACCEL) --smp $(SMP)

clean:
	rm -rf $(BUILD)
