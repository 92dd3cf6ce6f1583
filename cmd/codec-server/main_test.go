package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codecserver"
	"github.com/payloadkit/payloadkit/internal/cliconfig"
	"github.com/payloadkit/payloadkit/workflowtest"
)

// TestMain lets tests run the real main function in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("CODEC_SERVER_RUN_MAIN") == "1" {
		os.Args = append([]string{"codec-server"}, strings.Fields(os.Getenv("CODEC_SERVER_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBinaryRefusesToStartWithoutAuth(t *testing.T) {
	for name, args := range map[string]string{
		"no auth":           "-namespace default -listen 127.0.0.1:0",
		"issuer only flags": "-namespace default -listen 127.0.0.1:0 -issuer https://issuer.example",
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = []string{"CODEC_SERVER_RUN_MAIN=1", "CODEC_SERVER_ARGS=" + args, "HOME=" + t.TempDir()}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v (stderr %s)", err, stderr.String())
			}
			if name == "no auth" && !strings.Contains(stderr.String(), "no authentication configured") {
				t.Errorf("stderr = %q", stderr.String())
			}
			if strings.Contains(stderr.String(), "listening") {
				t.Error("server started listening")
			}
		})
	}
}

func TestLoadConfigFile(t *testing.T) {
	path := writeFile(t, "config.json", `{
		"listen": ":9090",
		"tls": {"cert_file": "c.pem", "key_file": "k.pem"},
		"allowed_origins": ["https://ui.example"],
		"allow_credentials": true,
		"auth": {"jwks_url": "https://issuer.example/jwks", "issuer": "https://issuer.example", "audience": ["codec"],
		         "namespaces_claim": "ns", "permissions_claim": "perms", "subject_claim": "email", "leeway": "45s",
		         "allow_wildcard_namespaces": true, "static_tokens_file": "tokens.json"},
		"limits": {"max_body_bytes": 1000, "max_payloads": 10, "claim_display_limit": -1, "max_decoded_bytes": 5000, "max_response_bytes": 7000},
		"default_namespace": "orders",
		"shutdown_timeout": "3s",
		"namespaces": {
			"orders": {"compression": "s2", "encryption": {"kms_key_id": "alias/orders", "kms_region": "eu-west-1"},
			           "offload": {"s3_bucket": "payloads", "s3_endpoint": "http://127.0.0.1:9000", "s3_path_style": true, "prefix": "pk", "threshold": 2048}},
			"billing": {"encryption": {"keyring_file": "keyring.json"}, "offload": {"dir": "/var/lib/offload"}}
		}
	}`)
	got, err := loadConfig([]string{"-config", path}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen:           ":9090",
		TLS:              TLSConfig{CertFile: "c.pem", KeyFile: "k.pem"},
		AllowedOrigins:   []string{"https://ui.example"},
		AllowCredentials: true,
		Auth: AuthConfig{JWKSURL: "https://issuer.example/jwks", Issuer: "https://issuer.example", Audience: []string{"codec"},
			NamespacesClaim: "ns", PermissionsClaim: "perms", SubjectClaim: "email", Leeway: Duration(45 * time.Second),
			AllowWildcardNamespaces: true, StaticTokensFile: "tokens.json"},
		Limits:           LimitsConfig{MaxBodyBytes: 1000, MaxPayloads: 10, ClaimDisplayLimit: -1, MaxDecodedBytes: 5000, MaxResponseBytes: 7000},
		DefaultNamespace: "orders",
		ShutdownTimeout:  Duration(3 * time.Second),
		Namespaces: map[string]Pipeline{
			"orders": {Compression: "s2", Encryption: &EncryptionConfig{KMSKeyID: "alias/orders", KMSRegion: "eu-west-1"},
				Offload: &OffloadConfig{S3Bucket: "payloads", S3Endpoint: "http://127.0.0.1:9000", S3PathStyle: true, Prefix: "pk", Threshold: 2048}},
			"billing": {Encryption: &EncryptionConfig{KeyringFile: "keyring.json"}, Offload: &OffloadConfig{Dir: "/var/lib/offload"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("config:\n%s", gb)
	}
}

// TestConfigPrecedence checks defaults < file < environment < flags.
func TestConfigPrecedence(t *testing.T) {
	path := writeFile(t, "config.json", `{"listen": ":1111", "insecure": true, "allowed_origins": ["https://file.example"],
		"limits": {"max_payloads": 5}, "namespaces": {"orders": {}}}`)
	e := env(map[string]string{
		"PAYLOADKIT_CODEC_CONFIG":            path,
		"PAYLOADKIT_CODEC_LISTEN":            ":2222",
		"PAYLOADKIT_CODEC_ORIGINS":           "https://env.example, https://env2.example",
		"PAYLOADKIT_CODEC_MAX_PAYLOADS":      "7",
		"PAYLOADKIT_CODEC_MAX_DECODED_BYTES": "9000",
	})
	cfg, err := loadConfig([]string{"-listen", ":3333", "-max-response-bytes", "12000"}, e, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":3333" {
		t.Errorf("Listen = %q, want the flag", cfg.Listen)
	}
	if !reflect.DeepEqual(cfg.AllowedOrigins, []string{"https://env.example", "https://env2.example"}) {
		t.Errorf("AllowedOrigins = %q, want the environment", cfg.AllowedOrigins)
	}
	if cfg.Limits.MaxPayloads != 7 || !cfg.Insecure {
		t.Errorf("MaxPayloads = %d, Insecure = %v", cfg.Limits.MaxPayloads, cfg.Insecure)
	}
	if cfg.Limits.MaxDecodedBytes != 9000 || cfg.Limits.MaxResponseBytes != 12000 {
		t.Errorf("MaxDecodedBytes = %d, MaxResponseBytes = %d, want the environment and the flag", cfg.Limits.MaxDecodedBytes, cfg.Limits.MaxResponseBytes)
	}
	if _, ok := cfg.Namespaces["orders"]; !ok {
		t.Error("file namespaces lost")
	}
	// Defaults.
	cfg, err = loadConfig([]string{"-insecure", "-namespace", "a,b", "-keyring-file", "k.json", "-offload-dir", "/tmp/x"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8081" || time.Duration(cfg.ShutdownTimeout) != 15*time.Second {
		t.Errorf("defaults: %q %v", cfg.Listen, cfg.ShutdownTimeout)
	}
	want := Pipeline{Encryption: &EncryptionConfig{KeyringFile: "k.json"}, Offload: &OffloadConfig{Dir: "/tmp/x"}}
	if !reflect.DeepEqual(cfg.Namespaces["a"], want) || !reflect.DeepEqual(cfg.Namespaces["b"], want) {
		t.Errorf("flag pipelines = %+v", cfg.Namespaces)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		file string
		args []string
		env  map[string]string
	}{
		"no auth":             {args: []string{"-namespace", "a"}},
		"no namespaces":       {args: []string{"-insecure"}},
		"insecure and auth":   {args: []string{"-insecure", "-namespace", "a", "-static-tokens-file", "t.json"}},
		"bad compression":     {args: []string{"-insecure", "-namespace", "a", "-compression", "lz4"}},
		"tls cert only":       {args: []string{"-insecure", "-namespace", "a", "-tls-cert", "c.pem"}},
		"two key sources":     {args: []string{"-insecure", "-namespace", "a", "-keyring-file", "k", "-kms-key-id", "alias/x"}},
		"two stores":          {args: []string{"-insecure", "-namespace", "a", "-offload-dir", "d", "-s3-bucket", "b"}},
		"unknown field":       {file: `{"insecure": true, "namespaces": {"a": {}}, "lissten": ":1"}`},
		"bad duration":        {file: `{"insecure": true, "namespaces": {"a": {}}, "shutdown_timeout": 5}`},
		"bad env value":       {args: []string{"-insecure", "-namespace", "a"}, env: map[string]string{"PAYLOADKIT_CODEC_MAX_PAYLOADS": "many"}},
		"encryption no keys":  {file: `{"insecure": true, "namespaces": {"a": {"encryption": {}}}}`},
		"stray argument":      {args: []string{"-insecure", "-namespace", "a", "extra"}},
		"missing config file": {args: []string{"-config", "/nonexistent/config.json"}},
	} {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"-config", writeFile(t, "c.json", tc.file)}, args...)
			}
			if _, err := loadConfig(args, env(tc.env), &bytes.Buffer{}); !errors.Is(err, errConfig) {
				t.Errorf("err = %v, want errConfig", err)
			} else {
				t.Log(err)
			}
		})
	}
}

// startServer runs the server in the background and returns its address and a stop function
// that cancels it and returns run's error.
func startServer(t *testing.T, args []string, logs *syncBuffer) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, args, env(nil), logs, func(a net.Addr) { addrc <- a.String() })
	}()
	select {
	case a := <-addrc:
		return a, func() error { cancel(); return <-errc }
	case err := <-errc:
		cancel()
		t.Fatalf("run: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start")
	}
	return "", nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func keyringFile(t *testing.T) string {
	k := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	return writeFile(t, "keyring.json", `{"primary":"k1","keys":{"k1":"`+k+`"}}`)
}

// TestRunServesAndShutsDown starts the server with a static tokens file, a keyring and a file
// offload store, round-trips payloads through the SDK's remote codec, and stops it.
func TestRunServesAndShutsDown(t *testing.T) {
	const token = "ops-token-0123456789abcdef"
	tokens := writeFile(t, "tokens.json", `{"tokens":[{"token":"`+token+`","subject":"ops","namespaces":["orders"],"decode":true,"encode":true}]}`)
	var logs syncBuffer
	addr, stop := startServer(t, []string{"-listen", "127.0.0.1:0", "-static-tokens-file", tokens, "-namespace", "orders",
		"-keyring-file", keyringFile(t), "-offload-dir", t.TempDir(), "-offload-threshold", "1024", "-origins", "http://localhost:8233"}, &logs)

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	_ = resp.Body.Close()

	rc := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: "http://" + addr,
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("X-Namespace", "orders")
			return nil
		},
	})
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), rc)
	big := strings.Repeat("0123456789abcdef", 50) + base64.StdEncoding.EncodeToString(randomBytes(4000))
	p, err := dc.ToPayload(big)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Metadata["encoding"]); got != "binary/claim-check" {
		t.Errorf("large payload encoding = %q, want an offload claim", got)
	}
	var back string
	if err := dc.FromPayload(p, &back); err != nil || back != big {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: "http://" + addr}).
		Decode([]*commonpb.Payload{p}); err == nil {
		t.Error("request without a token succeeded")
	}

	if err := stop(); err != nil {
		t.Fatalf("run returned %v after cancel", err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("server still answering after shutdown")
	}
	out := logs.String()
	for _, want := range []string{`"msg":"codec server listening"`, `"msg":"shutting down"`, `"msg":"stopped"`, `"outcome":"unauthenticated"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if strings.Contains(out, token) || strings.Contains(out, "0123456789abcdef0123") {
		t.Error("logs contain the token or payload contents")
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestRunTLSInsecure serves HTTPS with a generated certificate, without authentication: every
// log line carries insecure=true.
func TestRunTLSInsecure(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	var logs syncBuffer
	addr, stop := startServer(t, []string{"-listen", "127.0.0.1:0", "-insecure", "-namespace", "orders",
		"-tls-cert", certFile, "-tls-key", keyFile}, &logs)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	rc := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: "https://" + addr,
		Client:   *client,
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("X-Namespace", "orders")
			return nil
		},
	})
	in, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	if _, err := rc.Decode([]*commonpb.Payload{in}); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 4 {
		t.Fatalf("only %d log lines", len(lines))
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["insecure"] != true {
			t.Errorf("line without insecure=true: %s", l)
		}
	}
}

func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})))
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestAllowWildcardNamespaces checks that the setting reaches the JWT verifier, from the
// environment or the flag: a token whose namespaces claim is "*" may decode in any namespace
// only when it is set.
func TestAllowWildcardNamespaces(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.Set(jwk.KeyIDKey, "k1"); err != nil {
		t.Fatal(err)
	}
	pub, err := signer.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(set) }))
	defer jwks.Close()
	claims, err := jwt.NewBuilder().Issuer("https://issuer.example").Audience([]string{"codec"}).Subject("ops").
		Expiration(time.Now().Add(time.Hour)).Claim("namespaces", []string{"*"}).Claim("permissions", []string{"decode"}).Build()
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.Sign(claims, jwt.WithKey(jwa.EdDSA(), signer))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-namespace", "orders", "-jwks-url", jwks.URL, "-issuer", "https://issuer.example", "-audience", "codec"}
	const envVar = "PAYLOADKIT_CODEC_ALLOW_WILDCARD_NAMESPACES"
	for name, tc := range map[string]struct {
		args  []string
		env   map[string]string
		allow bool
	}{
		"default":        {},
		"environment":    {env: map[string]string{envVar: "true"}, allow: true},
		"flag":           {args: []string{"-allow-wildcard-namespaces"}, allow: true},
		"flag overrides": {args: []string{"-allow-wildcard-namespaces=false"}, env: map[string]string{envVar: "true"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := loadConfig(append(slices.Clone(args), tc.args...), env(tc.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			auth, err := cliconfig.BuildAuth(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/decode", nil)
			req.Header.Set("Authorization", "Bearer "+string(token))
			p, err := auth.Authenticate(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Allows("orders", codecserver.OpDecode); got != tc.allow {
				t.Errorf("AllowWildcardNamespaces=%v: token with namespaces [\"*\"] may decode in orders: %v", cfg.Auth.AllowWildcardNamespaces, got)
			}
		})
	}
}

func TestStaticTokensFileErrors(t *testing.T) {
	for name, content := range map[string]string{
		"not json":      `tokens`,
		"unknown field": `{"tokens":[{"token":"0123456789abcdef01","subject":"a","rights":"all"}]}`,
		"short token":   `{"tokens":[{"token":"short","subject":"a"}]}`,
		"duplicate":     `{"tokens":[{"token":"0123456789abcdef01","subject":"a"},{"token":"0123456789abcdef01","subject":"b"}]}`,
		"empty":         `{"tokens":[]}`,
	} {
		if _, err := cliconfig.LoadStaticTokens(writeFile(t, "t.json", content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRunKMS decrypts through AWS KMS (the project's KMS-compatible test server driven by the
// real aws-sdk-go-v2 client): one GenerateDataKey for several payloads, one Decrypt per data key.
func TestRunKMS(t *testing.T) {
	k := workflowtest.StartKMS(t)
	key := k.NewKey()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDPAYLOADKITTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "payloadkit-test-secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	var logs syncBuffer
	addr, stop := startServer(t, []string{"-listen", "127.0.0.1:0", "-insecure", "-namespace", "orders",
		"-kms-key-id", key, "-kms-endpoint", k.Endpoint(), "-kms-region", workflowtest.KMSRegion}, &logs)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	rc := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint:      "http://" + addr,
		ModifyRequest: func(r *http.Request) error { r.Header.Set("X-Namespace", "orders"); return nil },
	})
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), rc)
	var ps []*commonpb.Payload
	for i := range 5 {
		p, err := dc.ToPayload(strings.Repeat("x", i+1))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(p.Metadata["encoding"]); got != "binary/encrypted" {
			t.Fatalf("encoding = %q", got)
		}
		ps = append(ps, p)
	}
	for i, p := range ps {
		var s string
		if err := dc.FromPayload(p, &s); err != nil || s != strings.Repeat("x", i+1) {
			t.Fatalf("payload %d: %q %v", i, s, err)
		}
	}
	g, d := k.Calls(workflowtest.KMSGenerateDataKey), k.Calls(workflowtest.KMSDecrypt)
	t.Logf("KMS calls for 5 encodes and 5 decodes: GenerateDataKey %d, Decrypt %d", g, d)
	if g != 1 || d > 1 {
		t.Errorf("KMS calls for 5 encodes and 5 decodes: GenerateDataKey %d (want 1), Decrypt %d (want at most 1)", g, d)
	}
}
