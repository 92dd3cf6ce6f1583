package offload

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/payloadkit/payloadkit/offload/internal/objkey"
)

// FileStore is a Store in a local directory, safe for concurrent use by several workers on one
// machine. Writes are atomic: bytes go to a temporary file in the destination directory, are
// synced, and the file is renamed into place, so readers see either the old object or the new
// one, never a partial one. Each key segment becomes a directory or file name in which every byte
// but ASCII letters, digits, '-', '_' and a non-leading '.' is percent-encoded.
type FileStore struct {
	dir string
}

var (
	_ Store         = (*FileStore)(nil)
	_ BoundedGetter = (*FileStore)(nil)
	_ PartsPutter   = (*FileStore)(nil)
	_ Stater        = (*FileStore)(nil)
)

// tempPrefix starts the names of temporary files; no escaped key segment starts with '.'.
const tempPrefix = ".pk-tmp-"

// NewFileStore returns a FileStore rooted at dir, creating the directory when needed.
func NewFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("offload: file store directory is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("offload: file store directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("offload: creating file store directory %q: %w", abs, err)
	}
	return &FileStore{dir: abs}, nil
}

// Name returns "file".
func (f *FileStore) Name() string { return "file" }

// Dir returns the store's root directory.
func (f *FileStore) Dir() string { return f.dir }

// Path returns the file path of key, or an error for keys that are empty, absolute, longer than
// 1024 bytes, or contain empty, "." or ".." segments.
func (f *FileStore) Path(key string) (string, error) {
	if err := objkey.Validate(key); err != nil {
		return "", err
	}
	segs := strings.Split(key, "/")
	parts := make([]string, 0, len(segs)+1)
	parts = append(parts, f.dir)
	for _, s := range segs {
		parts = append(parts, escapeFileSegment(s))
	}
	return filepath.Join(parts...), nil
}

// Put atomically writes data under key.
func (f *FileStore) Put(ctx context.Context, key string, data []byte) error {
	return f.putParts(ctx, key, [][]byte{data})
}

// PutParts atomically writes the concatenation of parts under key, part after part.
func (f *FileStore) PutParts(ctx context.Context, key string, parts [][]byte, _ [sha256.Size]byte) error {
	return f.putParts(ctx, key, parts)
}

func (f *FileStore) putParts(ctx context.Context, key string, parts [][]byte) (err error) {
	if err := ctx.Err(); err != nil {
		return contextError("put", f.Name(), key, err)
	}
	path, err := f.Path(key)
	if err != nil {
		return newError("put", f.Name(), key, ErrStore, err, "")
	}
	fail := func(err error) error { return newError("put", f.Name(), key, ErrStore, err, "") }
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fail(err)
	}
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	for _, data := range parts {
		if _, err := tmp.Write(data); err != nil {
			return fail(err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Chmod(tmp.Name(), 0o640); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail(err)
	}
	// Make the rename durable; not every platform can sync a directory, so errors are ignored.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Get returns the object under key.
func (f *FileStore) Get(ctx context.Context, key string) ([]byte, error) {
	return f.GetBounded(ctx, key, -1)
}

// GetBounded returns the object under key, or an error matching ErrTooLarge when it is larger
// than maxBytes (a negative maxBytes means no bound).
func (f *FileStore) GetBounded(ctx context.Context, key string, maxBytes int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, contextError("get", f.Name(), key, err)
	}
	path, err := f.Path(key)
	if err != nil {
		return nil, newError("get", f.Name(), key, ErrStore, err, "")
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, f.openError(key, err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, newError("get", f.Name(), key, ErrStore, err, "")
	}
	if st.IsDir() {
		return nil, newError("get", f.Name(), key, ErrNotFound, nil, "")
	}
	size := st.Size()
	if maxBytes >= 0 && size > maxBytes {
		return nil, newError("get", f.Name(), key, ErrTooLarge, nil, "object is larger than the limit of %d bytes", maxBytes)
	}
	// The file is never rewritten in place (writes rename a new file over it), so its size is
	// stable; a file changed by another program is detected by the extra byte read.
	data := make([]byte, size)
	if _, err := io.ReadFull(file, data); err != nil {
		return nil, newError("get", f.Name(), key, ErrStore, err, "object changed while it was read")
	}
	if n, _ := file.Read(make([]byte, 1)); n != 0 {
		return nil, newError("get", f.Name(), key, ErrStore, nil, "object changed while it was read")
	}
	return data, nil
}

func (f *FileStore) openError(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
		return newError("get", f.Name(), key, ErrNotFound, nil, "")
	}
	return newError("get", f.Name(), key, ErrStore, err, "")
}

// Exists reports whether an object is stored under key.
func (f *FileStore) Exists(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, contextError("exists", f.Name(), key, err)
	}
	path, err := f.Path(key)
	if err != nil {
		return false, newError("exists", f.Name(), key, ErrStore, err, "")
	}
	st, err := os.Stat(path)
	switch {
	case err == nil:
		return !st.IsDir(), nil
	case errors.Is(err, fs.ErrNotExist) || isNotDir(err):
		return false, nil
	default:
		return false, newError("exists", f.Name(), key, ErrStore, err, "")
	}
}

// Stat returns the size and modification time of the object under key (the time it was
// written, as writes replace the file), or an error matching ErrNotFound.
func (f *FileStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, contextError("stat", f.Name(), key, err)
	}
	path, err := f.Path(key)
	if err != nil {
		return ObjectInfo{}, newError("stat", f.Name(), key, ErrStore, err, "")
	}
	st, err := os.Stat(path)
	switch {
	case err == nil && !st.IsDir():
		return ObjectInfo{Size: st.Size(), Modified: st.ModTime()}, nil
	case err == nil || errors.Is(err, fs.ErrNotExist) || isNotDir(err):
		return ObjectInfo{}, newError("stat", f.Name(), key, ErrNotFound, nil, "")
	default:
		return ObjectInfo{}, newError("stat", f.Name(), key, ErrStore, err, "")
	}
}

// isNotDir reports an error from a path whose parent is a file (key "a/b" when "a" is an object).
func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

// escapeFileSegment percent-encodes every byte of s but ASCII letters, digits, '-', '_' and a
// non-leading '.', so that no file name starts with '.' (temporary files do).
func escapeFileSegment(s string) string {
	return percentEncode(s, func(i int, c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || (c == '.' && i > 0)
	})
}
