# SPDX-License-Identifier: Apache-2.0
# The two commands: `make demo` and `make check`. Both install what is missing first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build install check sanitize fuzz demo bench format format-check layers clean help

all: build

help:
	@echo "make demo          run the main job (installs dependencies, builds)"
	@echo "make check         build and run every test"
	@echo "make build         configure and build into $(BUILD)/"
	@echo "make install       install godwitd, godwit-vmm, godwit and godwitd's systemd units"
	@echo "                   (PREFIX=/usr to change /usr/local; DESTDIR= for a staging root)"
	@echo "make bench         migration benchmark: godwit and QEMU side by side"
	@echo "make sanitize      build into $(BUILD)-asan with ASan and UBSan; run the tests that need no KVM, then those labelled sanitize"
	@echo "make fuzz          build and briefly run the libFuzzer targets (clang)"
	@echo "make format        reformat the sources with clang-format"
	@echo "make layers        check every #include against the module graph in docs/DESIGN.md"
	@echo "make clean         remove $(BUILD)/"

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

# The binaries under PREFIX (default: CMake's, /usr/local), the systemd units into systemd's unit
# directory; DESTDIR stages it all under another root.
install: build
	@cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

# Two tests at a time where KVM tests run in the two test hosts (one each); one at a time where
# they run natively, since native KVM tests beside each other slow their guests past what they test.
check: build
	@j=2; ./tests/hosts/testhost.sh --build $(BUILD) probe >/dev/null && j=1; \
		cd $(BUILD) && ctest --output-on-failure --timeout 1200 -j$$j
	@$(MAKE) --no-print-directory sanitize
	@$(MAKE) --no-print-directory fuzz

# A second tree under AddressSanitizer and UndefinedBehaviorSanitizer: the unit tests and the
# integration tests that need no KVM (labels kvm and testhost left out), then the KVM tests
# labelled sanitize (guest exits, MMIO, the NIC and its mailbox, the migration stream), in that
# tree's own test hosts where this machine's KVM cannot run them. Any report fails the test that
# made it (UBSan does not recover; ASan ends the process, leaks included).
SANITIZE_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
sanitize: deps
	@cmake -S . -B $(BUILD)-asan -DGODWIT_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS) -- --no-print-directory
	@cd $(BUILD)-asan && $(SANITIZE_ENV) ctest --output-on-failure --timeout 600 -j$(JOBS) \
		-LE 'kvm|testhost'
	@j=2; ./tests/hosts/testhost.sh --build $(BUILD)-asan probe >/dev/null && j=1; \
		cd $(BUILD)-asan && $(SANITIZE_ENV) ctest --output-on-failure --timeout 1200 -j$$j \
		-L sanitize

# libFuzzer targets need clang; each runs a bounded number of inputs as a smoke test.
fuzz: deps
	@if command -v clang >/dev/null; then \
		cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DGODWIT_FUZZ=ON >/dev/null && \
		cmake --build $(BUILD)-fuzz --target fuzzers -j $(JOBS) -- --no-print-directory && \
		cd $(BUILD)-fuzz && ctest --output-on-failure; \
	else echo "fuzz: clang not found; fuzz targets not built"; fi

demo: build
	@./scripts/demo.sh $(BUILD)

# godwit and QEMU side by side; results in bench/results/ (see bench/README.md).
bench: build
	@./bench/run.sh $(BUILD)

format:
	@clang-format -i $$(./scripts/sources.sh)

format-check:
	@clang-format --dry-run -Werror $$(./scripts/sources.sh)

# Each module includes only the modules docs/DESIGN.md lets it depend on (its ```layers block).
layers:
	@./scripts/check-layers.py

clean:
	rm -rf $(BUILD) $(BUILD)-fuzz $(BUILD)-asan
