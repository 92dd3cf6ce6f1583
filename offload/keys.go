package offload

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"go.temporal.io/sdk/converter"
)

// UnknownNamespace is the namespace segment of codec keys when the SDK gives the codec no
// serialization context (for example a client-side DataConverter used directly, a Codec Server,
// or a Nexus payload). "_" cannot collide with a Temporal namespace name.
const UnknownNamespace = "_"

// s3SafeChars are the punctuation characters key segments keep unescaped, as in the
// Temporal SDK's S3 storage driver.
const s3SafeChars = "!-_.*'()"

// CodecKey returns the object key the codec uses for stored bytes with the given SHA-256 hex
// digest: <prefix>/<namespace>/sha256/<hex>, the namespace percent-encoded as in DriverKey.
func CodecKey(prefix, namespace, sha256Hex string) string {
	if namespace == "" {
		namespace = UnknownNamespace
	}
	return prefix + "/" + escapeSegment(namespace) + "/sha256/" + sha256Hex
}

// DriverKey returns the object key the storage driver uses, the layout of the Temporal SDKs'
// S3 storage drivers:
//
//	v0/ns/<ns>/wt/<workflow type>/wi/<workflow id>/ri/<run id>/d/sha256/<hex>   (workflows)
//	v0/ns/<ns>/at/<activity type>/ai/<activity id>/ri/<run id>/d/sha256/<hex>   (standalone activities)
//	v0/d/sha256/<hex>                                                           (no target)
//
// Each segment is percent-encoded (uppercase hex) except ASCII letters, digits and !-_.*'();
// an empty value is written "null".
func DriverKey(target converter.StorageDriverTargetInfo, sha256Hex string) string {
	digest := "/d/sha256/" + sha256Hex
	switch t := target.(type) {
	case converter.StorageDriverWorkflowInfo:
		return "v0/ns/" + driverSegment(t.Namespace) + "/wt/" + driverSegment(t.WorkflowType) +
			"/wi/" + driverSegment(t.WorkflowID) + "/ri/" + driverSegment(t.RunID) + digest
	case converter.StorageDriverActivityInfo:
		return "v0/ns/" + driverSegment(t.Namespace) + "/at/" + driverSegment(t.ActivityType) +
			"/ai/" + driverSegment(t.ActivityID) + "/ri/" + driverSegment(t.RunID) + digest
	default:
		return "v0" + digest
	}
}

func driverSegment(s string) string {
	if s == "" {
		return "null"
	}
	return escapeSegment(s)
}

// escapeSegment percent-encodes every byte of s but ASCII letters, digits and s3SafeChars.
func escapeSegment(s string) string {
	return percentEncode(s, func(_ int, c byte) bool { return isSafeByte(c) })
}

// percentEncode writes every byte of s for which safe(index, byte) is false as %XX.
func percentEncode(s string, safe func(i int, c byte) bool) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safe(i, c) {
			b.WriteByte(c)
			continue
		}
		const hexDigits = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	return b.String()
}

func isSafeByte(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		return true
	default:
		return strings.IndexByte(s3SafeChars, c) >= 0
	}
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
