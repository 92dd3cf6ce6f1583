package offload

import (
	"crypto/sha256"
	"errors"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protowire"
)

// Stored objects are the deterministic proto marshalling of the payload (marshalOptions). The
// codec writes and reads that format without copying the payload's data: objectParts gives the
// marshalling as a small framing header, the data bytes themselves and a (usually empty)
// trailer, and pbwire.Unmarshal restores a payload whose Data is a sub-slice of the fetched
// object.

// payloadDataField is the field number of commonpb.Payload's data.
const payloadDataField protowire.Number = 2

// objectParts returns marshalOptions.Marshal(p) as consecutive slices whose concatenation is
// byte-identical to it, without copying p.Data: the marshalled metadata entries followed by the
// tag and length of the data field; p.Data itself; then the fields that follow data in field
// order (external payloads) and p's unknown fields, which proto marshalling writes last. Empty
// slices are left out. size is proto.Size(p), computed by the caller.
func objectParts(p *commonpb.Payload, size int) ([][]byte, error) {
	head, err := marshalOptions.Marshal(&commonpb.Payload{Metadata: p.Metadata})
	if err != nil {
		return nil, err
	}
	if len(p.Data) > 0 {
		head = protowire.AppendTag(head, payloadDataField, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(len(p.Data)))
	}
	parts := [][]byte{head}
	if len(p.Data) > 0 {
		parts = append(parts, p.Data)
	}
	unknown := p.ProtoReflect().GetUnknown()
	if len(p.ExternalPayloads) > 0 || len(unknown) > 0 {
		tail, err := marshalOptions.Marshal(&commonpb.Payload{ExternalPayloads: p.ExternalPayloads})
		if err != nil {
			return nil, err
		}
		parts = append(parts, append(tail, unknown...))
	}
	if n := partsLen(parts); n != size {
		// Not expected; a payload whose marshalling changed under us (a concurrent mutation)
		// must not be stored under a key that does not match it.
		return nil, errors.New("payload framing does not match its marshalled size (was it modified during Encode?)")
	}
	return parts, nil
}

func partsLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// partsSHA256 returns the SHA-256 of the concatenation of parts.
func partsSHA256(parts [][]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// joinParts returns the concatenation of parts in one new slice.
func joinParts(parts [][]byte) []byte {
	out := make([]byte, 0, partsLen(parts))
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
