#!/usr/bin/env bash
# Runs every side-by-side benchmark of payloadkit and writes the report: the library's
# benchmarks (compression vs the SDK's zlib, the Kit's compression + encryption vs the raw
# primitives, encryption, KMS calls vs a per-payload envelope,
# telemetry on vs off, the Codec Server vs the SDK's handler, failure conversion, offload vs raw
# S3 on MinIO), the stored bytes of envelope formats v1 and v2 (a payload-size mix and the
# quickstart workflow's history, samples/bench) and the end-to-end throughput benchmark of
# samples/bench, once on all cores and once with GOMAXPROCS=1. Raw `go test -bench` outputs go
# to .cache/bench/ (git-ignored); then samples/cmd/benchreport
# writes docs/BENCHMARKS.md and docs/benchmarks.svg from them.
#
# MinIO: uses PAYLOADKIT_S3_* from the environment when set, else starts the cached MinIO
# (installing it on first use) like scripts/test.sh; BENCH_SKIP_S3=1 skips the S3 benchmark.
# Other knobs: PAYLOADKIT_BENCH_ROUNDS, PAYLOADKIT_BENCH_WORKFLOWS_8K, PAYLOADKIT_BENCH_WORKFLOWS_256K
# (see samples/bench).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/deps.sh
source "$ROOT/scripts/deps.sh"

export GOTOOLCHAIN=local
OUT="$ROOT/.cache/bench"
rm -rf "$OUT"
mkdir -p "$OUT"

log() { printf '==> %s\n' "$*" >&2; }
start_time=$(date +%s)

# run NAME DIR PKG BENCHTIME [ENV...]: one `go test -bench` whose output goes to $OUT/NAME.txt.
run() {
	local name="$1" dir="$2" pkg="$3" benchtime="$4" pattern="$5"
	shift 5
	log "bench $name ($pkg, -bench '$pattern' -benchtime $benchtime $*)"
	(cd "$dir" && env "$@" go test -run '^$' -bench "$pattern" -benchtime "$benchtime" -count 1 -timeout 60m "$pkg") \
		>"$OUT/$name.txt" 2>&1 || { cat "$OUT/$name.txt" >&2; return 1; }
}

run codec-compare . ./codec 1x 'Compare'
run codec . ./codec 300ms 'CodecRoundTrip|Encryption'
run codec-limit . ./codec 2s 'PhysicalLimit|CompressionVsZlib'
run awskms . ./codec/awskms 500ms .
run interceptor . ./interceptor 2s 'TelemetryOverhead|CodecWrapper'
# Eight Kits in eight alternatives: 20 s give about 250 rounds.
run interceptor-pipeline . ./interceptor 20s 'PipelineTelemetry'
run codecserver . ./codecserver 1s .
run failureconv . ./failureconv 200ms .

if [[ "${BENCH_SKIP_S3:-}" == "1" ]]; then
	echo "SKIPPED: offload/s3store BenchmarkS3RoundTrip (BENCH_SKIP_S3=1)" >"$OUT/s3store.txt"
else
	if [[ -z "${PAYLOADKIT_S3_ENDPOINT:-}" ]]; then
		ensure_minio
		start_minio
		trap stop_minio EXIT
	fi
	run s3store . ./offload/s3store 7x .
	stop_minio
fi

run sizes samples ./bench 1x 'StoredBytes|QuickstartHistory'
# Nine interleaved rounds per size: single rounds of the end-to-end benchmark swing by 10% and
# more on 2 vCPUs, and the medians of five moved by as much between runs.
run throughput samples ./bench 1x 'Throughput' PAYLOADKIT_BENCH_ROUNDS=9
run throughput-gomaxprocs1 samples ./bench 1x 'Throughput' GOMAXPROCS=1 PAYLOADKIT_BENCH_ROUNDS=9

elapsed=$(( $(date +%s) - start_time ))
log "benchmarks took ${elapsed}s; writing docs/BENCHMARKS.md and docs/benchmarks.svg"
(cd samples && go run ./cmd/benchreport -cmd "make bench" -elapsed "${elapsed}s" \
	-md ../docs/BENCHMARKS.md -svg ../docs/benchmarks.svg "$OUT"/*.txt)
