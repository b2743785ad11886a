# linkdr — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/linkapp/linkdr/internal/cli.Version=$(VERSION)

.PHONY: build test demo bench lint fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/linkdr ./cmd/linkdr

# Installs what is missing, starts real servers on 127.0.0.1, runs every test.
test:
	scripts/testenv.sh up
	$(GO) test -count=1 -timeout 20m ./...

# The main job end to end on throwaway servers and a local repository.
demo:
	scripts/demo.sh

# Benchmarks against peer tools on the same data, in the same run.
bench:
	scripts/bench.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fuzz:
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 30s ./internal/plan
	$(GO) test -run XXX -fuzz FuzzOpen -fuzztime 30s ./internal/envelope
	$(GO) test -run XXX -fuzz FuzzScan -fuzztime 30s ./internal/store/postgres/pgarchive

clean:
	rm -rf bin .demo
	-scripts/testenv.sh down
