package offload_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.RunConformance(t, func(t *testing.T) offload.Store { return offload.NewMemoryStore() })
}

func TestFileStoreConformance(t *testing.T) {
	dir := t.TempDir() // shared by every subtest, as by several workers on one machine
	storetest.RunConformance(t, func(t *testing.T) offload.Store {
		s, err := offload.NewFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	// No temporary file is left behind.
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".pk-tmp-") {
			t.Errorf("temporary file left behind: %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFileStorePaths(t *testing.T) {
	dir := t.TempDir()
	s, err := offload.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Path("payloadkit/ns%2Fx/sha256/ab")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "payloadkit", "ns%252Fx", "sha256", "ab"); p != want {
		t.Fatalf("Path = %s, want %s", p, want)
	}
	p, err = s.Path(".hidden/a b/..x")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "%2Ehidden", "a%20b", "%2E.x"); p != want {
		t.Fatalf("Path = %s, want %s (no file name may start with '.')", p, want)
	}
	for _, key := range []string{"../escape", "a/../../b", "/etc/passwd", "a/..", "..", "a\\..\\b/../c"} {
		if _, err := s.Path(key); err == nil {
			t.Errorf("Path(%q) accepted a key escaping the directory", key)
		}
		err := s.Put(context.Background(), key, []byte("x"))
		if !errors.Is(err, offload.ErrStore) || !strings.Contains(err.Error(), "invalid key") {
			t.Errorf("Put(%q) err = %v, want ErrStore for an invalid key", key, err)
		}
	}
	// A backslash is an ordinary, escaped byte: it cannot climb directories on any platform.
	p, err = s.Path(`a\..\b`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p, dir+string(filepath.Separator)) || strings.Contains(p, `\`) {
		t.Fatalf("Path with backslashes = %s", p)
	}
}

func TestFileStoreSharedBetweenInstances(t *testing.T) {
	dir := t.TempDir()
	a, _ := offload.NewFileStore(dir)
	b, _ := offload.NewFileStore(dir)
	ca := newCodec(t, &offload.Options{Store: a, Threshold: 100})
	cb := newCodec(t, &offload.Options{Store: b, Threshold: 100})
	p := bigPayload(1000, 20)
	enc, err := ca.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cb.Decode(enc)
	if err != nil || !proto.Equal(dec[0], p) {
		t.Fatalf("a second FileStore on the same directory could not read the object: %v", err)
	}
}
