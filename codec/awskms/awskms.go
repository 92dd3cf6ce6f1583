package awskms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/payloadkit/payloadkit/codec"
)

// Client is the part of *kms.Client a Provider calls. Tests may substitute their own implementation.
type Client interface {
	GenerateDataKey(ctx context.Context, params *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, params *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

var _ Client = (*kms.Client)(nil)

// Limits checked by New and by the Provider's methods; they are AWS KMS's own limits.
const (
	// MaxKeyIDLen is the longest KMS key name New accepts.
	MaxKeyIDLen = 2048
	// MaxGrantTokens is the largest number of grant tokens KMS accepts per request.
	MaxGrantTokens = 10
	// MaxEncryptedDataKeyLen is the largest ciphertext blob KMS Decrypt accepts, in bytes.
	MaxEncryptedDataKeyLen = 6144
)

// ErrInvalidResponse reports a KMS answer that cannot be right: a data key that is not 32 bytes, or
// a missing key id or ciphertext.
var ErrInvalidResponse = errors.New("awskms: invalid KMS response")

// Provider is a codec.KeyProvider backed by AWS KMS. It is safe for concurrent use.
type Provider struct {
	client       Client
	keyID        string
	grantTokens  []string
	mrkRegion    string
	mrkRegionSet bool
}

var (
	_ codec.KeyProvider = (*Provider)(nil)
	_ codec.Remote      = (*Provider)(nil)
)

// Option configures a Provider.
type Option func(*Provider)

// WithGrantTokens sends grant tokens with every GenerateDataKey and Decrypt request, for keys whose
// permissions come from a grant that may not be effective yet. At most MaxGrantTokens are accepted.
func WithGrantTokens(tokens ...string) Option {
	return func(p *Provider) { p.grantTokens = append(p.grantTokens, tokens...) }
}

// WithMultiRegionKeyRegion makes DecryptDataKey use the replica in region of a multi-region key:
// a stored key ARN arn:aws:kms:<other region>:<account>:key/mrk-<id> is sent to KMS as
// arn:aws:kms:<region>:<account>:key/mrk-<id>, the same key material in the client's region. Set
// region to the region of the Client. Other key ids are sent unchanged. region is required.
func WithMultiRegionKeyRegion(region string) Option {
	return func(p *Provider) { p.mrkRegion, p.mrkRegionSet = region, true }
}

// New returns a Provider generating data keys under keyID with client. client is required (for
// example a *kms.Client). keyID is required: a key id, key ARN, alias name (alias/x), alias ARN or
// multi-region key id or ARN. Nil options are ignored.
func New(client Client, keyID string, opts ...Option) (*Provider, error) {
	if client == nil {
		return nil, errors.New("awskms: client is required")
	}
	if keyID == "" {
		return nil, errors.New("awskms: key id is required")
	}
	if len(keyID) > MaxKeyIDLen {
		return nil, fmt.Errorf("awskms: key id is %d bytes long; at most %d are accepted", len(keyID), MaxKeyIDLen)
	}
	p := &Provider{client: client, keyID: keyID}
	for _, o := range opts {
		if o != nil {
			o(p)
		}
	}
	if len(p.grantTokens) > MaxGrantTokens {
		return nil, fmt.Errorf("awskms: %d grant tokens given; at most %d are accepted", len(p.grantTokens), MaxGrantTokens)
	}
	if p.mrkRegionSet && (p.mrkRegion == "" || strings.ContainsAny(p.mrkRegion, ":/")) {
		return nil, fmt.Errorf("awskms: WithMultiRegionKeyRegion(%q): want a region name such as us-east-1", p.mrkRegion)
	}
	for i, t := range p.grantTokens {
		if t == "" || len(t) > 8192 {
			return nil, fmt.Errorf("awskms: grant token %d is %d bytes long; want 1..8192", i, len(t))
		}
	}
	return p, nil
}

// KeyID returns the configured KMS key name, as given to New.
func (p *Provider) KeyID() string { return p.keyID }

// Remote implements codec.Remote: the Provider calls a remote service, so it always returns true.
func (p *Provider) Remote() bool { return true }

// GenerateDataKey calls KMS GenerateDataKey (KeySpec AES_256) under the configured key with encCtx
// as EncryptionContext. The returned DataKey.KeyID is the key ARN KMS answered with.
func (p *Provider) GenerateDataKey(ctx context.Context, encCtx map[string]string) (codec.DataKey, error) {
	out, err := p.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             &p.keyID,
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: encCtx,
		GrantTokens:       p.grantTokens,
	})
	if err != nil {
		return codec.DataKey{}, wrapError("GenerateDataKey", p.keyID, err)
	}
	switch {
	case out.KeyId == nil || *out.KeyId == "":
		clear(out.Plaintext)
		return codec.DataKey{}, fmt.Errorf("awskms GenerateDataKey [key=%s]: %w: no KeyId", p.keyID, ErrInvalidResponse)
	case len(out.Plaintext) != codec.DataKeySize:
		clear(out.Plaintext)
		return codec.DataKey{}, fmt.Errorf("awskms GenerateDataKey [key=%s]: %w: %d-byte data key, want %d",
			p.keyID, ErrInvalidResponse, len(out.Plaintext), codec.DataKeySize)
	case len(out.CiphertextBlob) == 0:
		clear(out.Plaintext)
		return codec.DataKey{}, fmt.Errorf("awskms GenerateDataKey [key=%s]: %w: no CiphertextBlob", p.keyID, ErrInvalidResponse)
	}
	return codec.DataKey{KeyID: *out.KeyId, Plaintext: out.Plaintext, Encrypted: out.CiphertextBlob}, nil
}

// DecryptDataKey calls KMS Decrypt for encrypted with KeyId set to keyID (the key ARN stored with
// the data key, which makes decryption safe with aliases and multi-region keys) and encCtx as
// EncryptionContext. With WithMultiRegionKeyRegion, a multi-region key ARN of another region is
// replaced by its replica's ARN in the configured region.
func (p *Provider) DecryptDataKey(ctx context.Context, keyID string, encrypted []byte, encCtx map[string]string) ([]byte, error) {
	switch {
	case keyID == "" || len(keyID) > MaxKeyIDLen:
		return nil, fmt.Errorf("awskms Decrypt: %w: key id of %d bytes, want 1..%d", codec.ErrMalformed, len(keyID), MaxKeyIDLen)
	case len(encrypted) == 0 || len(encrypted) > MaxEncryptedDataKeyLen:
		return nil, fmt.Errorf("awskms Decrypt [key=%s]: %w: encrypted data key of %d bytes, want 1..%d",
			keyID, codec.ErrMalformed, len(encrypted), MaxEncryptedDataKeyLen)
	}
	kmsKeyID := p.decryptKeyID(keyID)
	out, err := p.client.Decrypt(ctx, &kms.DecryptInput{
		KeyId:             &kmsKeyID,
		CiphertextBlob:    encrypted,
		EncryptionContext: encCtx,
		GrantTokens:       p.grantTokens,
	})
	if err != nil {
		return nil, wrapError("Decrypt", keyID, err)
	}
	if len(out.Plaintext) != codec.DataKeySize {
		clear(out.Plaintext)
		return nil, fmt.Errorf("awskms Decrypt [key=%s]: %w: %d-byte data key, want %d",
			keyID, ErrInvalidResponse, len(out.Plaintext), codec.DataKeySize)
	}
	return out.Plaintext, nil
}

// decryptKeyID returns the key id to send to KMS Decrypt for the stored key id.
func (p *Provider) decryptKeyID(stored string) string {
	if p.mrkRegion == "" {
		return stored
	}
	// arn:<partition>:kms:<region>:<account>:key/mrk-<id>
	parts := strings.SplitN(stored, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kms" || !strings.HasPrefix(parts[5], "key/mrk-") ||
		parts[3] == p.mrkRegion {
		return stored
	}
	parts[3] = p.mrkRegion
	return strings.Join(parts, ":")
}

// wrapError wraps a KMS client error once, with the operation, the key and the matching sentinel.
func wrapError(op, keyID string, err error) error {
	sentinel := classify(err)
	switch {
	case sentinel == codec.ErrRetryable:
		return fmt.Errorf("awskms %s [key=%s]: %w; retrying may succeed: %w", op, keyID, sentinel, err)
	case sentinel != nil:
		return fmt.Errorf("awskms %s [key=%s]: %w: %w", op, keyID, sentinel, err)
	}
	return fmt.Errorf("awskms %s [key=%s]: %w", op, keyID, err)
}

// classify maps a KMS client error to a sentinel of package codec, or nil.
func classify(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "ThrottlingException", "KMSInternalException", "DependencyTimeoutException",
			"KeyUnavailableException", "ServiceUnavailableException", "ServiceUnavailable",
			"RequestTimeoutException", "InternalFailure":
			return codec.ErrRetryable
		case "NotFoundException":
			return codec.ErrUnknownKey
		case "DisabledException", "KMSInvalidStateException":
			return codec.ErrKeyDisabled
		case "InvalidCiphertextException", "IncorrectKeyException":
			return codec.ErrDecrypt
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return codec.ErrRetryable
	}
	if errors.Is(err, context.Canceled) {
		return nil // the caller gave up; retrying is the caller's decision
	}
	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	if errors.As(err, &sendErr) || errors.As(err, &netErr) {
		return codec.ErrRetryable
	}
	// Answers without a known error code: 5xx and 429 are transient.
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		if s := respErr.HTTPStatusCode(); s >= 500 || s == http.StatusTooManyRequests {
			return codec.ErrRetryable
		}
	}
	return nil
}
