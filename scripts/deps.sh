# Helpers shared by the test scripts: install and start the real parts the tests use.
# Binaries are cached under .cache/bin (git-ignored).

MINIO_MODULE="github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
UI_SERVER_MODULE="github.com/temporalio/ui-server/v2/cmd/server@v2.45.0"
CACHE_DIR="${ROOT}/.cache"
BIN_DIR="${CACHE_DIR}/bin"
mkdir -p "$BIN_DIR"

ensure_minio() {
	if [[ ! -x "$BIN_DIR/minio" ]]; then
		log "installing MinIO (first run only, several minutes)"
		GOBIN="$BIN_DIR" go install "$MINIO_MODULE"
	fi
	export PAYLOADKIT_MINIO_BIN="$BIN_DIR/minio"
}

ensure_ui_server() {
	if [[ ! -x "$BIN_DIR/ui-server" ]]; then
		log "installing the Temporal Web UI server (first run only)"
		local tmp
		tmp="$(mktemp -d)"
		GOBIN="$tmp" go install "$UI_SERVER_MODULE"
		mv "$tmp/server" "$BIN_DIR/ui-server"
		rm -rf "$tmp"
	fi
	export PAYLOADKIT_UI_SERVER_BIN="$BIN_DIR/ui-server"
}

ensure_chromium() {
	if ! command -v chromium >/dev/null 2>&1; then
		log "installing Chromium from Debian packages"
		local sudo=""
		if [[ "$(id -u)" != "0" ]]; then sudo="sudo"; fi
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
	fi
	PAYLOADKIT_CHROMIUM="$(command -v chromium)"
	export PAYLOADKIT_CHROMIUM
}

# free_port prints a port on 127.0.0.1 that nothing listens on, below the kernel's ephemeral
# range (whose ports outgoing connections take as their local port, which a listener then
# cannot bind), and other than the ports given as arguments.
free_port() {
	local port low=32768 _high
	read -r low _high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	(( low > 12000 )) || low=32768
	for _ in $(seq 1 200); do
		port=$((10000 + RANDOM % (low - 10000)))
		if [[ " $* " == *" $port "* ]]; then continue; fi
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

MINIO_PID=""
MINIO_DIR=""

start_minio() {
	local port console attempt ok=""
	MINIO_DIR="$(mktemp -d)"
	export PAYLOADKIT_S3_ACCESS_KEY="pk$(random_hex 8)"
	export PAYLOADKIT_S3_SECRET_KEY="$(random_hex 20)"
	export PAYLOADKIT_S3_BUCKET="payloadkit-test"
	export PAYLOADKIT_S3_REGION="us-east-1"
	go build -o "$BIN_DIR/s3bucket" ./internal/tools/s3bucket
	# A port found free can be taken before MinIO binds it: then MinIO exits, and it starts
	# again on other ports.
	for attempt in 1 2 3; do
		port="$(free_port)"
		console="$(free_port "$port")"
		export PAYLOADKIT_S3_ENDPOINT="http://127.0.0.1:${port}"
		log "starting MinIO on 127.0.0.1:${port}"
		MINIO_ROOT_USER="$PAYLOADKIT_S3_ACCESS_KEY" MINIO_ROOT_PASSWORD="$PAYLOADKIT_S3_SECRET_KEY" \
			MINIO_BROWSER=off MINIO_UPDATE=off \
			"$PAYLOADKIT_MINIO_BIN" server --quiet --address "127.0.0.1:${port}" \
			--console-address "127.0.0.1:${console}" "$MINIO_DIR/data" >"$MINIO_DIR/minio.log" 2>&1 &
		MINIO_PID=$!
		for _ in $(seq 1 120); do
			if "$BIN_DIR/s3bucket" -health "$PAYLOADKIT_S3_ENDPOINT" 2>/dev/null; then ok=1; break; fi
			if ! kill -0 "$MINIO_PID" 2>/dev/null; then break; fi
			sleep 0.5
		done
		if [[ -n "$ok" ]] || ! grep -q "already in use" "$MINIO_DIR/minio.log"; then break; fi
		wait "$MINIO_PID" 2>/dev/null || true
		log "MinIO could not bind its ports (attempt $attempt); trying others"
	done
	if [[ -z "$ok" ]]; then
		echo "MinIO did not become ready; its log:" >&2
		cat "$MINIO_DIR/minio.log" >&2
		return 1
	fi
	AWS_ACCESS_KEY_ID="$PAYLOADKIT_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$PAYLOADKIT_S3_SECRET_KEY" \
		"$BIN_DIR/s3bucket" -endpoint "$PAYLOADKIT_S3_ENDPOINT" -bucket "$PAYLOADKIT_S3_BUCKET"
}

stop_minio() {
	if [[ -n "$MINIO_PID" ]]; then
		kill "$MINIO_PID" 2>/dev/null || true
		wait "$MINIO_PID" 2>/dev/null || true
		MINIO_PID=""
	fi
	if [[ -n "$MINIO_DIR" ]]; then
		rm -rf "$MINIO_DIR"
		MINIO_DIR=""
	fi
}
