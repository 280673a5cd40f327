# gotd: build, test and run.
GO      ?= go
BIN     ?= bin
GOFLAGS ?=

.PHONY: all build test vet fuzz bench gobench run man clean

all: build

# Static binaries: gotd re-executes itself inside its sandbox, where
# the C library's loader has nothing to gain.
build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet ./...
	GOOS=openbsd $(GO) build ./...

# The whole suite, with the race detector: unit tests, fuzz seed corpora
# and the end-to-end tests that drive the real git client (about 15
# minutes on a quiet machine; the time-out leaves room for a busy one).
test: vet
	$(GO) test -race -timeout 60m ./...

# Run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# gotd against C Git on the same machine: make bench [BENCHFLAGS="-repo PATH -runs 5"].
BENCHFLAGS ?=
bench:
	$(GO) run ./bench $(BENCHFLAGS)

# The packages' Go benchmarks.
gobench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Check the manual pages with mandoc's linter when it is installed.
man:
	@for m in cmd/*/*.[1-8]; do mandoc -Tlint -Wwarning $$m || exit 1; done

# Start gotd in the foreground on a demo repository under ./run.
run: build
	@sh scripts/demo.sh

clean:
	rm -rf $(BIN) run
