package s3store

import (
	"errors"
	"io"
)

// partsReader reads the concatenation of byte slices without joining them: it is the body of
// PutObject and UploadPart requests, seekable (the SDK rewinds bodies to hash them and to retry)
// and an io.WriterTo (hashers and connections read the caller's bytes directly).
type partsReader struct {
	parts [][]byte
	size  int64
	off   int64
}

var (
	_ io.ReadSeeker = (*partsReader)(nil)
	_ io.WriterTo   = (*partsReader)(nil)
)

func newPartsReader(parts [][]byte) *partsReader {
	r := &partsReader{}
	for _, p := range parts {
		if len(p) > 0 {
			r.parts = append(r.parts, p)
			r.size += int64(len(p))
		}
	}
	return r
}

// section returns a reader of the bytes [start, end) of r's content, sharing r's slices.
func (r *partsReader) section(start, end int64) *partsReader {
	var parts [][]byte
	var pos int64
	for _, p := range r.parts {
		pStart, pEnd := pos, pos+int64(len(p))
		pos = pEnd
		if pEnd <= start || pStart >= end {
			continue
		}
		parts = append(parts, p[max(start, pStart)-pStart:min(end, pEnd)-pStart])
	}
	return newPartsReader(parts)
}

// Read implements io.Reader.
func (r *partsReader) Read(b []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n := 0
	r.each(func(p []byte) bool {
		c := copy(b[n:], p)
		n += c
		return n < len(b)
	})
	r.off += int64(n)
	return n, nil
}

// WriteTo implements io.WriterTo, writing the rest of the content from the caller's slices.
func (r *partsReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	var err error
	r.each(func(p []byte) bool {
		var n int
		n, err = w.Write(p)
		total += int64(n)
		r.off += int64(n)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		return err == nil
	})
	return total, err
}

// each calls fn with the unread rest of each slice, in order, until fn returns false. It works
// from the offset at the call, so fn may advance r.off.
func (r *partsReader) each(fn func([]byte) bool) {
	off := r.off
	var pos int64
	for _, p := range r.parts {
		pEnd := pos + int64(len(p))
		if off < pEnd {
			if !fn(p[off-pos:]) {
				return
			}
			off = pEnd
		}
		pos = pEnd
	}
}

// Seek implements io.Seeker.
func (r *partsReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("s3store: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("s3store: negative position")
	}
	r.off = abs
	return abs, nil
}

// Len returns the number of unread bytes.
func (r *partsReader) Len() int {
	if r.off >= r.size {
		return 0
	}
	return int(r.size - r.off)
}
