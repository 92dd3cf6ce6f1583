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
coverage: ; bash -c 'ROOT=$$PWD; log() { printf "==> %s\n" "$$*" >&2; }; source scripts/deps.sh && ensure_minio && start_minio && (cd samples && go run ./cmd/coveragetable); rc=$$?; stop_minio; exit $$rc' # docs/COVERAGE.md from a run of TestCoverage (starts MinIO)
# Chaos scenario (samples/chaos): worker processes under KMS, MinIO, corruption, SIGKILL, rotation and Codec Server faults; writes docs/CHAOS.md.
chaos: ; bash scripts/chaos.sh
