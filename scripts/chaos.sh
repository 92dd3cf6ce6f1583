#!/usr/bin/env bash
# Runs the chaos scenario (samples/chaos): installs MinIO if needed, then runs the orchestrator,
# which starts its own MinIO, KMS test server, Temporal server, Codec Server and worker processes.
# Arguments are passed to the command: scripts/chaos.sh -short runs the two-minute version.
# The full run (no -short) writes docs/CHAOS.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/deps.sh
source "$ROOT/scripts/deps.sh"

export GOTOOLCHAIN=local
log() { printf '==> %s\n' "$*" >&2; }

ensure_minio
log "chaos scenario $*"
cd samples
go run ./chaos "$@"
