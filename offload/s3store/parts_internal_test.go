package s3store

import (
	"bytes"
	"io"
	"testing"

	"github.com/payloadkit/payloadkit/offload"
)

// partsReader and its sections read, seek and write to exactly the bytes of the concatenation.
func TestPartsReader(t *testing.T) {
	parts := [][]byte{[]byte("head"), nil, []byte("0123456789"), {}, []byte("tail!")}
	all := bytes.Join(parts, nil)
	r := newPartsReader(parts)
	if r.size != int64(len(all)) || r.Len() != len(all) {
		t.Fatalf("size/Len = %d/%d, want %d", r.size, r.Len(), len(all))
	}
	for start := 0; start <= len(all); start++ {
		for end := start; end <= len(all); end++ {
			sec := r.section(int64(start), int64(end))
			// Small reads cross slice boundaries.
			var got []byte
			buf := make([]byte, 3)
			for {
				n, err := sec.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, all[start:end]) {
				t.Fatalf("section %d-%d read %q, want %q", start, end, got, all[start:end])
			}
			// Rewind, skip a byte, and write the rest.
			if _, err := sec.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if end > start {
				if pos, err := sec.Seek(1, io.SeekCurrent); err != nil || pos != 1 {
					t.Fatalf("Seek = %d, %v", pos, err)
				}
			}
			var w bytes.Buffer
			n, err := sec.WriteTo(&w)
			want := all[start:end]
			if end > start {
				want = want[1:]
			}
			if err != nil || n != int64(len(want)) || !bytes.Equal(w.Bytes(), want) {
				t.Fatalf("section %d-%d WriteTo = %q (%d, %v), want %q", start, end, w.Bytes(), n, err, want)
			}
			if sec.Len() != 0 {
				t.Fatalf("Len after WriteTo = %d", sec.Len())
			}
		}
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("Seek to a negative position succeeded")
	}
	if pos, err := r.Seek(-2, io.SeekEnd); err != nil || pos != int64(len(all)-2) {
		t.Fatalf("Seek from the end = %d, %v", pos, err)
	}
}

// The section of a part reads the caller's bytes, not a copy.
func TestPartsReaderSharesBytes(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 100)
	sec := newPartsReader([][]byte{[]byte("hdr"), data}).section(10, 50)
	if len(sec.parts) != 1 || &sec.parts[0][0] != &data[7] {
		t.Fatal("section copied the bytes")
	}
}

func TestKeyNamespace(t *testing.T) {
	hex := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for key, want := range map[string]string{
		offload.CodecKey("payloadkit", "payments", hex):          "payments",
		offload.CodecKey("team/a/payloadkit", "billing-v2", hex): "billing-v2",
		offload.CodecKey("payloadkit", "", hex):                  offload.UnknownNamespace,
		offload.CodecKey("payloadkit", "a b/c", hex):             "a%20b%2Fc",
		"v0/ns/default/wt/W/wi/id/ri/run/d/sha256/" + hex:        "default",
		"v0/ns/prod/at/A/ai/act/ri/null/d/sha256/" + hex:         "prod",
		"v0/d/sha256/" + hex:                                     offload.UnknownNamespace,
		"payloadkit/payments/sha256/not-a-digest":                offload.UnknownNamespace,
		"some/other/key": offload.UnknownNamespace,
		"k":              offload.UnknownNamespace,
	} {
		if got := keyNamespace(key); got != want {
			t.Errorf("keyNamespace(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for v, want := range map[string][3]int64{
		"bytes 0-9/10":                     {0, 9, 10},
		"bytes 5-5/100":                    {5, 5, 100},
		"bytes 16777216-33554431/67108893": {16777216, 33554431, 67108893},
	} {
		s, e, n, ok := parseContentRange(v)
		if !ok || [3]int64{s, e, n} != want {
			t.Errorf("parseContentRange(%q) = %d %d %d %v, want %v", v, s, e, n, ok, want)
		}
	}
	for _, v := range []string{"", "bytes */10", "bytes 0-9", "bytes 9-0/10", "bytes 0-10/10", "items 0-1/2", "bytes -1-2/3", "bytes 0-x/10"} {
		if _, _, _, ok := parseContentRange(v); ok {
			t.Errorf("parseContentRange(%q) accepted a malformed value", v)
		}
	}
}
