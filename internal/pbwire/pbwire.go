// Package pbwire sizes and marshals Temporal payloads without the reflection that
// google.golang.org/protobuf uses for map fields (which allocates per metadata entry). The
// bytes are those of proto.Marshal: fields in number order, every map entry with its key and
// value, and, when deterministic, map entries sorted by key. Payloads with external payload
// details or unknown fields go through proto itself. Unmarshal restores a payload whose data and
// metadata values are sub-slices of its input rather than copies.
package pbwire

import (
	"slices"
	"unicode/utf8"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers and tags of temporal.api.common.v1.Payload and of its metadata map entries.
const (
	tagMetadata byte = 1<<3 | byte(protowire.BytesType) // field 1, length delimited
	tagData     byte = 2<<3 | byte(protowire.BytesType) // field 2
	tagKey      byte = 1<<3 | byte(protowire.BytesType) // map entry key
	tagValue    byte = 2<<3 | byte(protowire.BytesType) // map entry value
)

// simple reports whether p holds nothing but metadata and data.
func simple(p *commonpb.Payload) bool {
	return len(p.GetExternalPayloads()) == 0 && len(p.ProtoReflect().GetUnknown()) == 0
}

func entrySize(k string, v []byte) int {
	return 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(len(v))
}

// Size returns proto.Size(p).
func Size(p *commonpb.Payload) int {
	if p == nil {
		return 0
	}
	if !simple(p) {
		return proto.Size(p)
	}
	n := 0
	for k, v := range p.Metadata {
		n += 1 + protowire.SizeBytes(entrySize(k, v))
	}
	if len(p.Data) > 0 {
		n += 1 + protowire.SizeBytes(len(p.Data))
	}
	return n
}

// TotalSize returns the sum of Size over payloads.
func TotalSize(payloads []*commonpb.Payload) int64 {
	var n int64
	for _, p := range payloads {
		n += int64(Size(p))
	}
	return n
}

// PayloadsSize returns proto.Size(ps).
func PayloadsSize(ps *commonpb.Payloads) int64 {
	if ps == nil {
		return 0
	}
	if len(ps.ProtoReflect().GetUnknown()) > 0 {
		return int64(proto.Size(ps))
	}
	var n int64
	for _, p := range ps.Payloads {
		n += 1 + int64(protowire.SizeBytes(Size(p)))
	}
	return n
}

// AppendMarshal appends the marshalled p to dst, as proto.MarshalOptions{Deterministic:
// deterministic}.MarshalAppend does.
func AppendMarshal(dst []byte, p *commonpb.Payload, deterministic bool) ([]byte, error) {
	if p == nil {
		return dst, nil
	}
	if !simple(p) {
		return proto.MarshalOptions{Deterministic: deterministic}.MarshalAppend(dst, p)
	}
	dst = slices.Grow(dst, Size(p))
	if deterministic && len(p.Metadata) > 1 {
		var small [8]string // payloads rarely carry more metadata entries
		keys := small[:0]
		for k := range p.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			dst = appendEntry(dst, k, p.Metadata[k])
		}
	} else {
		for k, v := range p.Metadata {
			dst = appendEntry(dst, k, v)
		}
	}
	if len(p.Data) > 0 {
		dst = append(dst, tagData)
		dst = protowire.AppendBytes(dst, p.Data)
	}
	return dst, nil
}

func appendEntry(dst []byte, k string, v []byte) []byte {
	dst = append(dst, tagMetadata)
	dst = protowire.AppendVarint(dst, uint64(entrySize(k, v)))
	dst = append(dst, tagKey)
	dst = protowire.AppendString(dst, k)
	dst = append(dst, tagValue)
	return protowire.AppendBytes(dst, v)
}

// Unmarshal unmarshals b as proto.Unmarshal would into a new payload, but with Data and the
// metadata values sub-slices of b (their capacity ending with them) instead of copies; b must
// not be modified afterwards. Inputs holding anything but well-formed metadata entries and data
// fields (external payloads, unknown fields, other wire types, invalid UTF-8 keys) are handed to
// proto.Unmarshal, so the result and the errors are exactly those of proto.Unmarshal.
func Unmarshal(b []byte) (*commonpb.Payload, error) {
	p := &commonpb.Payload{}
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		if typ != protowire.BytesType || (num != 1 && num != 2) {
			return unmarshalCopy(b)
		}
		v, m := protowire.ConsumeBytes(rest[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		rest = rest[n+m:]
		if num == 2 {
			p.Data = v[:len(v):len(v)] // the last occurrence wins, as in proto.Unmarshal
			continue
		}
		key, val, ok := parseMapEntry(v)
		if !ok {
			return unmarshalCopy(b)
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
		if n < 0 || typ != protowire.BytesType || (num != 1 && num != 2) {
			return "", nil, false
		}
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return "", nil, false
		}
		b = b[n+m:]
		if num == 1 {
			if !utf8.Valid(v) {
				return "", nil, false
			}
			key = string(v)
		} else {
			val = v[:len(v):len(v)]
		}
	}
	return key, val, true
}

// unmarshalCopy is proto.Unmarshal, for the inputs Unmarshal does not handle itself.
func unmarshalCopy(b []byte) (*commonpb.Payload, error) {
	p := &commonpb.Payload{}
	if err := proto.Unmarshal(b, p); err != nil {
		return nil, err
	}
	return p, nil
}
