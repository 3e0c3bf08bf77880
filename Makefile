SHELL := /bin/bash
# tent: build, test and try the container engine.
GO       ?= go
BIN      := bin
VERSION  ?= 0.1.0-dev
# -E: start through internal/nsenter's entry point, which joins a user
# namespace before the Go runtime starts threads (see docs/runtime.md).
ENTRY    := github.com/tent-project/tent/internal/nsenter.Entry
# tent, the client, starts no container process and has no such entry.
CLIFLAGS := -s -w -X github.com/tent-project/tent/internal/version.Version=$(VERSION)
LDFLAGS  := $(CLIFLAGS) -E=$(ENTRY)
# Static binaries: the runtime re-executes itself inside containers.
export CGO_ENABLED := 0

.PHONY: all build install test test-unit test-integration lint demo bench bench-quick generate clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(CLIFLAGS)' -o $(BIN)/tent ./cmd/tent
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tentd ./cmd/tentd
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tent-runtime ./cmd/tent-runtime
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tent-monitor ./cmd/tent-monitor
	$(GO) build -trimpath -ldflags '$(CLIFLAGS)' -o $(BIN)/tent-agent ./cmd/tent-agent

install: build
	install -m 0755 $(BIN)/tent $(BIN)/tentd $(BIN)/tent-runtime $(BIN)/tent-monitor /usr/local/bin/
	install -D -m 0755 $(BIN)/tent-agent /usr/local/lib/tent/vm/tent-agent

# The whole suite: unit tests, then the root integration tests against the
# freshly built binaries (a real docker engine too, where installed).
test: build lint
	$(GO) test -count=1 ./internal/...
	TENT_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 25m -v ./test/integration/... 2>&1 | tee test-integration.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; exit $${PIPESTATUS[0]}

test-unit:
	$(GO) test -count=1 ./internal/...

test-integration: build
	TENT_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 25m -v ./test/integration/...

lint:
	@out=$$(gofmt -l cmd internal test); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# The main job: a busybox container from Debian's static busybox.
demo: build
	./scripts/demo.sh

# Benchmarks: tent against docker and runc, side by side in one run (a
# report with charts, never a test). bench-quick: small counts, < 2 minutes.
bench: build
	$(GO) run ./bench -bin $(BIN) -out bench

bench-quick: build
	$(GO) run ./bench -bin $(BIN) -quick

generate:
	$(GO) run ./internal/seccomp/gen

clean:
	rm -rf $(BIN) test-integration.log
