// Package objkey holds the object key and store name rules shared by the offload stores: the
// stores of package offload and those of its subpackages (s3store).
package objkey

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

const (
	// MaxKeySize bounds object keys (S3 allows 1024 bytes).
	MaxKeySize = 1024
	// MaxStoreNameSize bounds store names.
	MaxStoreNameSize = 256
)

// Validate rejects keys that are empty, absolute, longer than MaxKeySize, contain a NUL byte,
// or have empty, "." or ".." segments. Its errors start with "invalid key".
func Validate(key string) error {
	switch {
	case key == "":
		return errors.New("invalid key: empty")
	case len(key) > MaxKeySize:
		return fmt.Errorf("invalid key: longer than %d bytes", MaxKeySize)
	case strings.HasPrefix(key, "/") || filepath.IsAbs(key):
		return errors.New("invalid key: absolute")
	case strings.IndexByte(key, 0) >= 0:
		return errors.New("invalid key: NUL byte")
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return errors.New("invalid key: empty, \".\" or \"..\" segment")
		}
	}
	return nil
}
