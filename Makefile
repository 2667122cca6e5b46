# SPDX-License-Identifier: Apache-2.0
# The two commands: `make demo` and `make check`. Both install what is missing first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build check demo format format-check clean help

all: build

help:
	@echo "make demo          run the main job (installs dependencies, builds)"
	@echo "make check         build and run every test"
	@echo "make build         configure and build into $(BUILD)/"
	@echo "make format        reformat the sources with clang-format"
	@echo "make clean         remove $(BUILD)/"

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

check: build
	@cd $(BUILD) && ctest --output-on-failure --timeout 1200

demo: build
	@./scripts/demo.sh $(BUILD)

format:
	@clang-format -i $$(./scripts/sources.sh)

format-check:
	@clang-format --dry-run -Werror $$(./scripts/sources.sh)

clean:
	rm -rf $(BUILD)
