# payloadkit: `make test` runs every test (see scripts/test.sh); `make quickstart` runs the sample.
.PHONY: test test-short quickstart bench fuzz vet

test:
	bash scripts/test.sh

quickstart:
	cd samples && go run ./quickstart

vet:
	go vet ./... && cd samples && go vet ./...

# Every side-by-side benchmark, then docs/BENCHMARKS.md and docs/benchmarks.svg (see scripts/bench.sh).
bench:
	bash scripts/bench.sh

# Long fuzzing: FUZZTIME=5m make fuzz
fuzz:
	FUZZTIME=$${FUZZTIME:-2m} bash scripts/fuzz.sh
