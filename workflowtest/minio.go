package workflowtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MinIO is a MinIO server dedicated to one test, started by StartMinIO on free 127.0.0.1 ports
// with a temporary data directory and fresh credentials. Stop and Start let fault tests take it
// down and bring it back on the same port and data. It is stopped when the test ends.
type MinIO struct {
	t         testing.TB
	bin       string
	dir       string
	addr      string
	console   string
	accessKey string
	secretKey string
	bucket    string
	client    *s3.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
	log    *os.File
}

// StartMinIO starts a MinIO server from the binary named by PAYLOADKIT_MINIO_BIN, waits until it
// is live and creates a bucket. Without the binary the test is skipped, or fails when the CI
// environment variable is non-empty.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := os.Getenv(EnvMinIOBin)
	if bin == "" {
		skipOrFatal(t, "MinIO test needs %s, the path of a minio binary (scripts/test.sh installs one)", EnvMinIOBin)
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		skipOrFatal(t, "%s=%s is not a minio binary: %v", EnvMinIOBin, bin, err)
	}
	m := &MinIO{
		t:         t,
		bin:       bin,
		dir:       t.TempDir(),
		addr:      "127.0.0.1:" + strconv.Itoa(minioFreePort(t)),
		console:   "127.0.0.1:" + strconv.Itoa(minioFreePort(t)),
		accessKey: "pk" + minioRandomHex(8),
		secretKey: minioRandomHex(20),
		bucket:    "payloadkit-" + minioRandomHex(4),
	}
	t.Cleanup(m.Stop)
	m.Start()
	m.client = NewS3Client(m.Endpoint(), "us-east-1", m.accessKey, m.secretKey)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(m.bucket)}); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if !errors.As(err, &owned) {
			t.Fatalf("workflowtest: creating bucket %s on MinIO %s: %v", m.bucket, m.Endpoint(), err)
		}
	}
	return m
}

// Client returns a path-style S3 client for the server.
func (m *MinIO) Client() *s3.Client { return m.client }

// Bucket returns the bucket created for the test.
func (m *MinIO) Bucket() string { return m.bucket }

// Endpoint returns the server URL, http://127.0.0.1:<port>.
func (m *MinIO) Endpoint() string { return "http://" + m.addr }

// Credentials returns the server's access key and secret key.
func (m *MinIO) Credentials() (accessKey, secretKey string) { return m.accessKey, m.secretKey }

// Start starts the server (again) on the same port and data directory and waits until it is
// live. It does nothing when the server is running.
func (m *MinIO) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	logFile, err := os.OpenFile(filepath.Join(m.dir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		m.t.Fatalf("workflowtest: MinIO log file: %v", err)
	}
	cmd := exec.Command(m.bin, "server", "--quiet", "--address", m.addr, "--console-address", m.console, filepath.Join(m.dir, "data"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.accessKey,
		"MINIO_ROOT_PASSWORD="+m.secretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		m.t.Fatalf("workflowtest: starting MinIO %s: %v", m.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if minioLive(m.Endpoint()) == nil {
			break
		}
		select {
		case err := <-exited:
			logFile.Close()
			m.t.Fatalf("workflowtest: MinIO exited before it was live (%v); log:\n%s", err, m.logTail())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			logFile.Close()
			m.t.Fatalf("workflowtest: MinIO on %s not live after 60s; log:\n%s", m.addr, m.logTail())
		}
	}
	m.cmd = cmd
	m.log = logFile
	m.exited = exited
}

// Stop stops the server (SIGTERM, then SIGKILL after 10s) and waits for it to exit. Stopping a
// stopped server does nothing.
func (m *MinIO) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd = nil
	m.log.Close()
	m.log = nil
}

// logTail returns the end of the server log, for failure messages.
func (m *MinIO) logTail() string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "minio.log"))
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(bytes.TrimSpace(b))
}

// minioFreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func minioFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("workflowtest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func minioRandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("workflowtest: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
