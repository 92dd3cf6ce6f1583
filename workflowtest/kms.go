package workflowtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// Identity of the KMS test server. Key ARNs have the form
// arn:aws:kms:<KMSRegion>:<KMSAccountID>:key/<id>; alias ARNs arn:aws:kms:<KMSRegion>:<KMSAccountID>:alias/<name>.
const (
	KMSRegion    = "us-east-1"
	KMSAccountID = "111122223333"
)

// KMS operation names, as sent in the X-Amz-Target header (TrentService.<Operation>) and
// accepted by KMS.Calls and KMS.FailNext.
const (
	KMSCreateKey            = "CreateKey"
	KMSCreateAlias          = "CreateAlias"
	KMSDescribeKey          = "DescribeKey"
	KMSGenerateDataKey      = "GenerateDataKey"
	KMSEncrypt              = "Encrypt"
	KMSDecrypt              = "Decrypt"
	KMSEnableKey            = "EnableKey"
	KMSDisableKey           = "DisableKey"
	KMSEnableKeyRotation    = "EnableKeyRotation"
	KMSDisableKeyRotation   = "DisableKeyRotation"
	KMSRotateKeyOnDemand    = "RotateKeyOnDemand"
	KMSGetKeyRotationStatus = "GetKeyRotationStatus"
	// KMSAnyOperation, given to FailNext, makes the next requests of any operation fail.
	KMSAnyOperation = "*"
)

// Limits of the KMS test server, as documented for AWS KMS.
const (
	// KMSMaxRequestBody bounds a request body, in bytes; larger requests get a ValidationException.
	KMSMaxRequestBody = 64 << 10
	kmsMaxPlaintext   = 4096
	kmsMaxCiphertext  = 6144
	kmsMaxDataKey     = 1024
	kmsMaxContext     = 64 // encryption-context pairs
	kmsMaxFaults      = 1 << 20
)

// KMS is an AWS-KMS-compatible test server on 127.0.0.1, started by StartKMS. It speaks the
// AWS JSON 1.1 protocol of KMS (POST /, X-Amz-Target: TrentService.<Operation>) for CreateKey,
// CreateAlias, DescribeKey, GenerateDataKey, Encrypt, Decrypt, EnableKey, DisableKey,
// EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand and GetKeyRotationStatus, so the real
// aws-sdk-go-v2 KMS client can drive it (see KMS.Client).
//
// It really encrypts: every key has a list of AES-256 key versions (RotateKeyOnDemand adds one;
// ciphertexts made under older versions keep decrypting), and a ciphertext blob carries the key id,
// the version, a nonce and the AES-GCM ciphertext whose additional data is the canonical
// EncryptionContext. As with AWS KMS, a different EncryptionContext on Decrypt yields
// InvalidCiphertextException, a KeyId that is not the blob's key yields IncorrectKeyException, a
// disabled key yields DisabledException and an unknown key NotFoundException. Keys are named by key
// id, key ARN, alias name (alias/x) or alias ARN wherever AWS KMS accepts them; multi-region keys
// have ids starting with "mrk-".
//
// Every request must carry a SigV4 Authorization header (its signature is not verified).
// Faults can be injected with FailNext, SetLatency, SetUnavailable and SetDropConnections, and
// requests are counted per operation (Calls). A KMS is safe for concurrent use.
type KMS struct {
	t    testing.TB
	srv  *httptest.Server
	done chan struct{} // closed when the server stops, to end injected latency

	mu          sync.Mutex
	keys        map[string]*kmsKey // by key id
	aliases     map[string]string  // alias name -> key id
	calls       map[string]int
	faults      map[string][]string // operation -> queued error types
	latency     time.Duration
	unavailable bool
	dropConns   bool
}

type kmsKey struct {
	id              string
	description     string
	created         time.Time
	enabled         bool
	multiRegion     bool
	rotationEnabled bool
	rotationPeriod  int
	lastRotation    time.Time
	versions        [][]byte // AES-256 key material; the last one encrypts
}

// StartKMS starts a KMS test server on 127.0.0.1; t.Cleanup stops it.
func StartKMS(t testing.TB) *KMS {
	t.Helper()
	k := &KMS{
		t:       t,
		done:    make(chan struct{}),
		keys:    make(map[string]*kmsKey),
		aliases: make(map[string]string),
		calls:   make(map[string]int),
		faults:  make(map[string][]string),
	}
	k.srv = httptest.NewServer(http.HandlerFunc(k.serveHTTP))
	t.Cleanup(func() {
		close(k.done)
		k.srv.Close()
	})
	return k
}

// Endpoint returns the server's base URL (http://127.0.0.1:<port>).
func (k *KMS) Endpoint() string { return k.srv.URL }

// Client returns an aws-sdk-go-v2 KMS client for the server: BaseEndpoint is Endpoint(), the
// region is KMSRegion and the credentials are static test credentials.
//
// By default the client uses the SDK's standard retryer with MaxAttempts 1, so every request reaches
// the caller's error handling and injected faults are seen as they are. To test retries, pass an
// option such as func(o *kms.Options) { o.RetryMaxAttempts = 3 }: the standard retryer then retries
// retryable errors after a short (5ms) backoff and without a retry quota.
func (k *KMS) Client(optFns ...func(*kms.Options)) *kms.Client {
	return kms.New(kms.Options{
		Region:       KMSRegion,
		BaseEndpoint: aws.String(k.srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDPAYLOADKITTEST", "payloadkit-test-secret", ""),
		HTTPClient:   k.srv.Client(),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 1
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) {
				return 5 * time.Millisecond, nil
			})
		}),
	}, optFns...)
}

// NewKey creates an enabled symmetric key and returns its ARN. It does not count as a call.
func (k *KMS) NewKey() string { return k.newKey(false) }

// NewMultiRegionKey creates an enabled multi-region symmetric key (id "mrk-<hex>") and returns its
// ARN. It does not count as a call.
func (k *KMS) NewMultiRegionKey() string { return k.newKey(true) }

func (k *KMS) newKey(multiRegion bool) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return kmsKeyARN(k.createKeyLocked("", multiRegion).id)
}

// SetAlias points alias name (alias/x) at keyID (a key id or key ARN), creating or updating the
// alias. It does not count as a call. Call it from the test goroutine: it fails the test on error.
func (k *KMS) SetAlias(name, keyID string) {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := kmsCheckAliasName(name); err != nil {
		k.t.Fatalf("KMS.SetAlias(%q): %v", name, err)
	}
	key, err := k.resolveLocked(keyID, false)
	if err != nil {
		k.t.Fatalf("KMS.SetAlias(%q, %q): %v", name, keyID, err)
	}
	k.aliases[name] = key.id
}

// RotateKey adds a key version to keyID (any accepted key name), as RotateKeyOnDemand does. It does
// not count as a call. Call it from the test goroutine: it fails the test on error.
func (k *KMS) RotateKey(keyID string) {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.resolveLocked(keyID, true)
	if err != nil {
		k.t.Fatalf("KMS.RotateKey(%q): %v", keyID, err)
	}
	key.rotate()
}

// SetKeyEnabled enables or disables keyID (any accepted key name), as EnableKey and DisableKey
// do. It does not count as a call. Call it from the test goroutine: it fails the test on error.
func (k *KMS) SetKeyEnabled(keyID string, enabled bool) {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.resolveLocked(keyID, true)
	if err != nil {
		k.t.Fatalf("KMS.SetKeyEnabled(%q): %v", keyID, err)
	}
	key.enabled = enabled
}

// KeyVersions returns the number of key versions of keyID (any accepted key name): 1 plus the
// number of rotations. It returns 0 for an unknown key.
func (k *KMS) KeyVersions(keyID string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.resolveLocked(keyID, true)
	if err != nil {
		return 0
	}
	return len(key.versions)
}

// Calls returns the number of requests received for operation (for example "GenerateDataKey")
// since the server started or ResetCalls was last called. Requests answered with injected faults,
// with SetUnavailable or SetDropConnections, and with errors count too. KMSAnyOperation returns
// the total over all operations.
func (k *KMS) Calls(operation string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if operation == KMSAnyOperation {
		n := 0
		for _, c := range k.calls {
			n += c
		}
		return n
	}
	return k.calls[operation]
}

// ResetCalls sets every call count to zero.
func (k *KMS) ResetCalls() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.calls)
}

// FailNext makes the next n requests of operation (or of any operation, with KMSAnyOperation)
// fail with the AWS error type errType, for example "ThrottlingException" or
// "KMSInternalException". Faults queue up behind earlier ones; operation-specific faults are
// used before KMSAnyOperation ones. The HTTP status is the one AWS KMS uses for that error type:
// 500 for KMSInternalException and KeyUnavailableException, 503 for DependencyTimeoutException
// and ServiceUnavailableException, 400 otherwise. n <= 0 removes the queued faults of operation.
func (k *KMS) FailNext(operation string, n int, errType string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if n <= 0 {
		delete(k.faults, operation)
		return
	}
	n = min(n, kmsMaxFaults-len(k.faults[operation]))
	for range n {
		k.faults[operation] = append(k.faults[operation], errType)
	}
}

// SetLatency delays every following request by d before it is handled (0 turns it off). The delay
// ends early when the client gives up on the request.
func (k *KMS) SetLatency(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.latency = d
}

// SetUnavailable makes every following request fail with HTTP 503 ServiceUnavailableException
// until SetUnavailable(false).
func (k *KMS) SetUnavailable(unavailable bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.unavailable = unavailable
}

// SetDropConnections makes the server close the connection of every following request without
// answering (the client sees a network error) until SetDropConnections(false).
func (k *KMS) SetDropConnections(drop bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dropConns = drop
}

// kmsError is an AWS error answer: HTTP status, __type and message.
type kmsError struct {
	status int
	typ    string
	msg    string
}

func (e *kmsError) Error() string { return e.typ + ": " + e.msg }

func kmsErr(typ, format string, args ...any) *kmsError {
	return &kmsError{status: kmsErrorStatus(typ), typ: typ, msg: fmt.Sprintf(format, args...)}
}

func kmsErrorStatus(typ string) int {
	switch typ {
	case "KMSInternalException", "KeyUnavailableException":
		return http.StatusInternalServerError
	case "DependencyTimeoutException", "ServiceUnavailableException":
		return http.StatusServiceUnavailable
	case "DryRunOperationException":
		return http.StatusPreconditionFailed
	}
	return http.StatusBadRequest
}

func (k *KMS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "TrentService.")
	if !ok || op == "" || op == KMSAnyOperation {
		op = ""
	}

	k.mu.Lock()
	if op != "" {
		k.calls[op]++
	}
	latency, unavailable, drop := k.latency, k.unavailable, k.dropConns
	k.mu.Unlock()

	if latency > 0 {
		timer := time.NewTimer(latency)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			return
		case <-k.done:
			timer.Stop()
		}
	}
	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // closes the connection without an answer
	}
	if unavailable {
		kmsWriteError(w, kmsErr("ServiceUnavailableException", "the service is unavailable"))
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		kmsWriteError(w, &kmsError{status: http.StatusMethodNotAllowed, typ: "UnknownOperationException",
			msg: "requests must be POST /"})
		return
	}
	if err := kmsCheckAuth(r.Header.Get("Authorization")); err != nil {
		kmsWriteError(w, err)
		return
	}
	if op == "" {
		kmsWriteError(w, kmsErr("UnknownOperationException", "missing or malformed X-Amz-Target %q", target))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-amz-json-1.1") {
		kmsWriteError(w, kmsErr("SerializationException", "Content-Type %q is not application/x-amz-json-1.1", ct))
		return
	}
	if typ, ok := k.takeFault(op); ok {
		kmsWriteError(w, kmsErr(typ, "injected fault for %s", op))
		return
	}

	var req kmsRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, KMSMaxRequestBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			kmsWriteError(w, kmsErr("ValidationException", "request body is larger than %d bytes", KMSMaxRequestBody))
			return
		}
		kmsWriteError(w, kmsErr("SerializationException", "reading request body: %v", err))
		return
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			kmsWriteError(w, kmsErr("SerializationException", "malformed request body: %v", err))
			return
		}
	}

	resp, kerr := k.dispatch(op, &req)
	if kerr != nil {
		kmsWriteError(w, kerr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", kmsNewRequestID())
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(resp)
}

func (k *KMS) takeFault(op string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, name := range []string{op, KMSAnyOperation} {
		if q := k.faults[name]; len(q) > 0 {
			typ := q[0]
			if len(q) == 1 {
				delete(k.faults, name)
			} else {
				k.faults[name] = q[1:]
			}
			return typ, true
		}
	}
	return "", false
}

// kmsCheckAuth checks that a SigV4 Authorization header is present and well formed. The signature
// itself is not verified.
func kmsCheckAuth(auth string) *kmsError {
	if auth == "" {
		return kmsErr("MissingAuthenticationTokenException", "missing Authorization header")
	}
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok || !strings.Contains(rest, "Credential=") || !strings.Contains(rest, "SignedHeaders=") ||
		!strings.Contains(rest, "Signature=") {
		return kmsErr("IncompleteSignatureException", "Authorization header is not an AWS4-HMAC-SHA256 signature")
	}
	return nil
}

func kmsWriteError(w http.ResponseWriter, e *kmsError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", kmsNewRequestID())
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.msg})
}

func kmsNewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return kmsFormatUUID(b)
}

func kmsFormatUUID(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
