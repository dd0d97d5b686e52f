# Weir's build. `make demo` runs the main example end to end; `make test` is
# the test command of Weir's module, which CI runs, then `make test-race`
# (the race detector) and `make test-bench` (bench/: the comparison with
# Beam's prism runner, a module of its own so that nothing here links Beam).

GO ?= go
BIN := bin
DEMO := demo

.PHONY: all build test test-race vet demo bench weir-bench bench-prism test-bench clean

all: build

# The binaries are built without their symbol table and DWARF (-s -w): 62 MB
# instead of 90 for bin/weir, 57 instead of 83 for an example, and a faster
# link. Panics, CPU profiles and go version -m still work; for a debugger,
# make build BUILD_FLAGS=.
BUILD_FLAGS ?= -ldflags='-s -w'

build:
	$(GO) build $(BUILD_FLAGS) -o $(BIN)/ ./cmd/weir ./examples/profileviews ./examples/enrich ./examples/sessions

vet:
	$(GO) vet ./...

# The suite: vet and every test, with a timeout well under CI's. About 6
# minutes on two cores with an empty build cache.
test: vet
	$(GO) test -count=1 -timeout 12m ./...

# The race detector on the packages that run goroutines (-short skips tests
# whose engine runs in another process). A target of its own because it
# compiles every dependency again, instrumented: about 5 minutes on two
# cores with an empty build cache. CI runs it after make test.
test-race:
	$(GO) test -count=1 -timeout 12m -race -short ./runner/... ./state/... ./integration/...

# Builds only what it runs (bin/weir, bin/profileviews), generates a day of
# page views, runs profileviews over them as a backfill, and prints the most
# viewed profiles.
demo:
	$(GO) build $(BUILD_FLAGS) -o $(BIN)/ ./cmd/weir ./examples/profileviews
	@mkdir -p $(DEMO)
	$(BIN)/weir gen pageviews --pageviews $(DEMO)/pageviews.jsonl --events 200000 --profiles 2000
	$(BIN)/profileviews --bind pageviews=$(DEMO)/pageviews.jsonl \
		--bind counts=$(DEMO)/counts.parquet --bind late=$(DEMO)/late.jsonl \
		--dead-letter $(DEMO)/dead-letters.jsonl --progress 2s
	@echo
	@echo "Most viewed profiles per hour (from $(DEMO)/counts.parquet):"
	$(BIN)/weir cat $(DEMO)/counts.parquet --sort -count --limit 10 --columns profileId,windowStart,windowEnd,count

# The Nexmark suite: each query in a process of its own (peak RSS is per
# process), Pebble state, checkpoints at the default interval; the table
# goes to $(BENCH_OUT). BENCH_EVENTS=10000000 for the published numbers.
BENCH_EVENTS ?= 1000000
BENCH_PARALLELISM ?= 2
BENCH_QUERIES ?= q0 q1 q2 q3 q4 q5 q7 q8 q11
BENCH_OUT ?= $(BIN)/nexmark.md
# More flags for every query's run, e.g. BENCH_FLAGS=--checkpoint-interval=1s.
BENCH_FLAGS ?=

bench: build
	@first=--header; rm -f $(BENCH_OUT); \
	for q in $(BENCH_QUERIES); do \
		$(BIN)/weir bench nexmark --query $$q --events $(BENCH_EVENTS) --parallelism $(BENCH_PARALLELISM) $(BENCH_FLAGS) --format markdown $$first >> $(BENCH_OUT) || exit 1; \
		first=; \
	done; \
	echo "commit $$(git rev-parse --short HEAD 2>/dev/null), $$(nproc) cores, $(BENCH_EVENTS) events:"; cat $(BENCH_OUT)

# weir-bench, from the bench module: weir-bench nexmark --vs prism.
weir-bench:
	cd bench && $(GO) build $(BUILD_FLAGS) -o ../$(BIN)/ ./cmd/weir-bench

# The Nexmark queries on Weir and on Beam's prism runner, side by side:
# each query in a process of its own, the table to $(BENCH_PRISM_OUT).
# BENCH_EVENTS, BENCH_PARALLELISM and BENCH_FLAGS as for make bench. Q7 is
# left out: prism does not finish it in weir-bench's timeout at 1M events.
BENCH_PRISM_QUERIES ?= q0 q1 q2 q3 q5 q8 q11
BENCH_PRISM_OUT ?= $(BIN)/nexmark-prism.md

bench-prism: weir-bench
	@first=--header; rm -f $(BENCH_PRISM_OUT); \
	for q in $(BENCH_PRISM_QUERIES); do \
		$(BIN)/weir-bench nexmark --vs prism --query $$q --events $(BENCH_EVENTS) --parallelism $(BENCH_PARALLELISM) $(BENCH_FLAGS) --format markdown $$first >> $(BENCH_PRISM_OUT) || exit 1; \
		first=; \
	done; \
	echo "commit $$(git rev-parse --short HEAD 2>/dev/null), $$(nproc) cores, $(BENCH_EVENTS) events:"; cat $(BENCH_PRISM_OUT)

# The bench module's vet and tests. Its first build compiles the Beam SDK
# and prism (about five minutes on two cores).
test-bench:
	cd bench && $(GO) vet ./...
	cd bench && $(GO) test -count=1 -timeout 20m ./...

clean:
	rm -rf $(BIN) $(DEMO)
