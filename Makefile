# Two commands for a fresh Debian machine (each installs what it needs):
#   make run    build libtfm and generate text with the bundled model
#   make test   build and run every test suite
BUILD ?= build
PROMPT ?= And the LORD spake unto Moses, saying,
MODEL ?= examples/models/kjv-llama.gguf
TOKENS ?= 64

.PHONY: all deps test-deps build run test clean

all: build

deps:
	@tools/install-deps.sh

test-deps:
	@tools/install-deps.sh --test

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	$(BUILD)/examples/tfm/tfm run -m $(MODEL) -p "$(PROMPT)" -n $(TOKENS) --temp 0.7 --seed 42

test: test-deps $(BUILD)/build.ninja
	ninja -C $(BUILD)
	tools/run-tests.sh $(BUILD)

clean:
	rm -rf $(BUILD)
