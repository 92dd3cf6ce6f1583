package offload

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/payloadkit/payloadkit/offload/internal/objkey"
)

// Claim wire format.
//
// A claim is a payload with metadata
//
//	encoding     = "binary/claim-check"
//	claim-store  = store name
//	claim-key    = object key
//	claim-size   = decimal size in bytes of the stored object
//	claim-sha256 = lowercase hex SHA-256 of the stored object
//
// and data = the JSON object {"v":1,"store":...,"key":...,"size":...,"sha256":...} carrying the
// same values, so that the claim is self-describing even where metadata is dropped. The stored
// object is the deterministic protobuf marshalling of the payload the claim replaced. Decoders
// require the metadata and the data to agree.
const (
	// EncodingClaimCheck is the encoding metadata value of claims.
	EncodingClaimCheck = "binary/claim-check"
	// MetadataClaimStore is the metadata key holding the store name.
	MetadataClaimStore = "claim-store"
	// MetadataClaimKey is the metadata key holding the object key.
	MetadataClaimKey = "claim-key"
	// MetadataClaimSize is the metadata key holding the object size in decimal.
	MetadataClaimSize = "claim-size"
	// MetadataClaimSHA256 is the metadata key holding the hex SHA-256 of the object.
	MetadataClaimSHA256 = "claim-sha256"
	// ClaimVersion is the version of the claim data written by this package.
	ClaimVersion = 1

	// maxClaimDataSize bounds the claim data read from history.
	maxClaimDataSize = 1024
	// maxKeySize bounds object keys (S3 allows 1024 bytes).
	maxKeySize = objkey.MaxKeySize
	// maxStoreNameSize bounds store names.
	maxStoreNameSize = objkey.MaxStoreNameSize
)

// Claim is the content of a claim payload.
type Claim struct {
	// Store is the name of the store holding the object.
	Store string
	// Key is the object key.
	Key string
	// Size is the object size in bytes.
	Size int64
	// SHA256 is the lowercase hex SHA-256 of the object.
	SHA256 string
}

// claimJSON is the versioned claim data.
type claimJSON struct {
	V      int    `json:"v"`
	Store  string `json:"store"`
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// IsClaim reports whether p is a claim payload (by its encoding metadata).
func IsClaim(p *commonpb.Payload) bool {
	return string(p.GetMetadata()["encoding"]) == EncodingClaimCheck
}

// Payload returns the claim payload for c.
func (c Claim) Payload() (*commonpb.Payload, error) {
	data, err := json.Marshal(claimJSON{V: ClaimVersion, Store: c.Store, Key: c.Key, Size: c.Size, SHA256: c.SHA256})
	if err != nil {
		return nil, fmt.Errorf("offload: marshalling claim: %w", err)
	}
	return &commonpb.Payload{
		Metadata: map[string][]byte{
			"encoding":          []byte(EncodingClaimCheck),
			MetadataClaimStore:  []byte(c.Store),
			MetadataClaimKey:    []byte(c.Key),
			MetadataClaimSize:   []byte(strconv.FormatInt(c.Size, 10)),
			MetadataClaimSHA256: []byte(c.SHA256),
		},
		Data: data,
	}, nil
}

// ParseClaim reads and validates the claim in p. Errors match ErrIntegrity and name the key
// when it could be read.
func ParseClaim(p *commonpb.Payload) (Claim, error) {
	md := p.GetMetadata()
	key := string(md[MetadataClaimKey])
	if len(key) > maxKeySize {
		key = key[:64] + "..."
	}
	fail := func(format string, args ...any) (Claim, error) {
		return Claim{}, newError("decode", boundedString(md[MetadataClaimStore]), key, ErrIntegrity, nil, "malformed claim: "+format, args...)
	}
	if !IsClaim(p) {
		return fail("encoding is %q, not %q", boundedString(md["encoding"]), EncodingClaimCheck)
	}
	if len(p.GetData()) > maxClaimDataSize {
		return fail("claim data is %d bytes, more than %d", len(p.GetData()), maxClaimDataSize)
	}
	var cj claimJSON
	dec := json.NewDecoder(bytes.NewReader(p.GetData()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cj); err != nil {
		return fail("claim data: %v", err)
	}
	if dec.More() {
		return fail("trailing bytes after claim data")
	}
	if cj.V != ClaimVersion {
		return fail("unsupported claim version %d", cj.V)
	}
	c := Claim{Store: cj.Store, Key: cj.Key, Size: cj.Size, SHA256: cj.SHA256}
	switch {
	case c.Store == "" || len(c.Store) > maxStoreNameSize:
		return fail("store name must have 1 to %d bytes", maxStoreNameSize)
	case c.Key == "" || len(c.Key) > maxKeySize:
		return fail("key must have 1 to %d bytes", maxKeySize)
	case c.Size < 0:
		return fail("negative size %d", c.Size)
	case !isSHA256Hex(c.SHA256):
		return fail("sha256 is not 64 lowercase hex digits")
	}
	// The metadata must agree with the data.
	switch {
	case string(md[MetadataClaimStore]) != c.Store:
		return fail("metadata %s does not match the claim data", MetadataClaimStore)
	case string(md[MetadataClaimKey]) != c.Key:
		return fail("metadata %s does not match the claim data", MetadataClaimKey)
	case string(md[MetadataClaimSize]) != strconv.FormatInt(c.Size, 10):
		return fail("metadata %s does not match the claim data", MetadataClaimSize)
	case string(md[MetadataClaimSHA256]) != c.SHA256:
		return fail("metadata %s does not match the claim data", MetadataClaimSHA256)
	}
	return c, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// boundedString returns b as a string, cut to 64 bytes for error messages.
func boundedString(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
