package offload

import (
	"crypto/sha256"
	"errors"
	"unicode/utf8"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Stored objects are the deterministic proto marshalling of the payload (marshalOptions). The
// codec writes and reads that format without copying the payload's data: objectParts gives the
// marshalling as a small framing header, the data bytes themselves and a (usually empty)
// trailer, and parseObject restores a payload whose Data is a sub-slice of the fetched object.

// Field numbers of commonpb.Payload and of its metadata map entries.
const (
	payloadMetadataField protowire.Number = 1
	payloadDataField     protowire.Number = 2
	mapEntryKeyField     protowire.Number = 1
	mapEntryValueField   protowire.Number = 2
)

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

// parseObject unmarshals a stored object as proto.Unmarshal would, but with Data (and the
// metadata values) sub-slices of b instead of copies; b must not be modified afterwards. Objects
// holding anything but well-formed metadata entries and data fields (external payloads, unknown
// fields, other wire types, invalid UTF-8 keys) are handed to proto.Unmarshal, so the result and
// the errors are exactly those of proto.Unmarshal.
func parseObject(b []byte) (*commonpb.Payload, error) {
	p := &commonpb.Payload{}
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		if typ != protowire.BytesType || (num != payloadMetadataField && num != payloadDataField) {
			return unmarshalObject(b)
		}
		v, m := protowire.ConsumeBytes(rest[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		rest = rest[n+m:]
		if num == payloadDataField {
			p.Data = v // the last occurrence wins, as in proto.Unmarshal
			continue
		}
		key, val, ok := parseMapEntry(v)
		if !ok {
			return unmarshalObject(b)
		}
		if p.Metadata == nil {
			p.Metadata = map[string][]byte{}
		}
		p.Metadata[key] = val
	}
	return p, nil
}

// parseMapEntry parses a metadata entry made only of well-formed key and value fields; ok is
// false for anything else.
func parseMapEntry(b []byte) (key string, val []byte, ok bool) {
	val = []byte{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType || (num != mapEntryKeyField && num != mapEntryValueField) {
			return "", nil, false
		}
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return "", nil, false
		}
		b = b[n+m:]
		if num == mapEntryKeyField {
			if !utf8.Valid(v) {
				return "", nil, false
			}
			key = string(v)
		} else {
			val = v
		}
	}
	return key, val, true
}

// unmarshalObject is proto.Unmarshal of a whole object, for objects parseObject does not handle.
func unmarshalObject(b []byte) (*commonpb.Payload, error) {
	p := &commonpb.Payload{}
	if err := proto.Unmarshal(b, p); err != nil {
		return nil, err
	}
	return p, nil
}
