#!/usr/bin/env bash
# Runs every test of payloadkit: installs what the tests need (MinIO, the Temporal Web UI server,
# Chromium), starts MinIO on 127.0.0.1, runs vet, gofmt, the tests of both modules, the short
# chaos scenario and a short fuzz run of every fuzz target, then stops what it started.
#
# Environment: FUZZTIME (default 5s) per fuzz target; SKIP_FUZZ=1 to skip fuzzing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/deps.sh
source "$ROOT/scripts/deps.sh"

export GOTOOLCHAIN=local
FUZZTIME="${FUZZTIME:-5s}"

log() { printf '==> %s\n' "$*" >&2; }

ensure_minio
ensure_ui_server
ensure_chromium

start_minio
trap stop_minio EXIT

log "gofmt"
unformatted="$(gofmt -l . )"
if [[ -n "$unformatted" ]]; then
	echo "gofmt needed on:" >&2
	echo "$unformatted" >&2
	exit 1
fi

log "go vet (library)"
go vet ./...
log "go vet (samples)"
(cd samples && go vet ./...)

log "library module must not require go.temporal.io/server"
if grep -q 'go.temporal.io/server' go.mod; then
	echo "go.mod requires go.temporal.io/server" >&2
	exit 1
fi

log "go mod tidy (both modules must be tidy)"
go mod tidy -diff
(cd samples && go mod tidy -diff)

log "go test (library)"
go test -timeout 20m ./...
log "go test (samples)"
(cd samples && go test -timeout 30m ./...)
log "chaos scenario (short: every fault once, about two minutes; make chaos runs the full one)"
(cd samples && go run ./chaos -short)

if [[ "${SKIP_FUZZ:-}" != "1" ]]; then
	log "fuzz (${FUZZTIME} per target)"
	for pkg in $(go list ./...); do
		for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
			log "fuzz $pkg $target"
			go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
		done
	done
fi
log "all tests passed"
