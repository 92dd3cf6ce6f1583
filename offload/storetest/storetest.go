// Package storetest is the conformance suite every offload.Store runs: put, get and exists,
// missing keys, overwrites, concurrent puts of one key, large and empty objects, invalid keys,
// copy semantics and, for stores implementing the optional interfaces, size bounds
// (offload.BoundedGetter), writes of byte slices (offload.PartsPutter), reads into a sized
// buffer (offload.SizedGetter), hashed while they arrive (offload.HashingGetter), and object
// sizes and write times (offload.Stater).
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payloadkit/payloadkit/offload"
)

// Options tune RunConformance.
type Options struct {
	// LargeSize is the size in bytes of the large-object test. Defaults to 40 MiB (above the S3
	// store's default part size, so that S3 stores exercise multipart uploads).
	LargeSize int
	// Timeout bounds each store call. Defaults to 2 minutes.
	Timeout time.Duration
}

// RunConformance runs the conformance suite against stores made by newStore. Each subtest calls
// newStore once and uses keys unique to the run, so stores may share a backend (bucket, directory).
func RunConformance(t *testing.T, newStore func(t *testing.T) offload.Store) {
	RunConformanceWithOptions(t, Options{}, newStore)
}

// RunConformanceWithOptions is RunConformance with options.
func RunConformanceWithOptions(t *testing.T, opts Options, newStore func(t *testing.T) offload.Store) {
	if opts.LargeSize == 0 {
		opts.LargeSize = 40 << 20
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	run := randomHex(6)
	prefix := func(t *testing.T) string {
		return "storetest/" + run + "/" + strings.ReplaceAll(t.Name(), "/", "_")
	}
	ctxFor := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("PutGetExists", func(t *testing.T) {
		s, ctx, key := newStore(t), ctxFor(t), prefix(t)+"/sha256/abc"
		if s.Name() == "" {
			t.Fatal("Name() is empty")
		}
		if ok, err := s.Exists(ctx, key); err != nil || ok {
			t.Fatalf("Exists before Put = %v, %v; want false, nil", ok, err)
		}
		want := []byte("hello, claim check")
		if err := s.Put(ctx, key, want); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if ok, err := s.Exists(ctx, key); err != nil || !ok {
			t.Fatalf("Exists after Put = %v, %v; want true, nil", ok, err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Get = %q, want %q", got, want)
		}
	})

	t.Run("MissingKey", func(t *testing.T) {
		s, ctx, key := newStore(t), ctxFor(t), prefix(t)+"/missing"
		_, err := s.Get(ctx, key)
		if !errors.Is(err, offload.ErrNotFound) {
			t.Fatalf("Get of a missing key: err = %v, want ErrNotFound", err)
		}
		if errors.Is(err, offload.ErrRetryable) {
			t.Fatalf("a missing object must not be retryable: %v", err)
		}
		if !strings.Contains(err.Error(), key) {
			t.Fatalf("error %q does not name the key %q", err, key)
		}
		var oe *offload.Error
		if !errors.As(err, &oe) || oe.Key != key {
			t.Fatalf("error %v is not an *offload.Error with Key %q", err, key)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		s, ctx, key := newStore(t), ctxFor(t), prefix(t)+"/obj"
		if err := s.Put(ctx, key, []byte("first version")); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if err := s.Put(ctx, key, []byte("second")); err != nil {
			t.Fatalf("second Put: %v", err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if string(got) != "second" {
			t.Fatalf("Get after overwrite = %q, want %q (last write wins, no leftover bytes)", got, "second")
		}
	})

	t.Run("CopySemantics", func(t *testing.T) {
		s, ctx, key := newStore(t), ctxFor(t), prefix(t)+"/obj"
		in := []byte("immutable")
		if err := s.Put(ctx, key, in); err != nil {
			t.Fatalf("Put: %v", err)
		}
		in[0] = 'X' // the store must have copied the bytes
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if string(got) != "immutable" {
			t.Fatalf("store kept a reference to the caller's slice: Get = %q", got)
		}
		got[0] = 'Y' // and must return bytes the caller owns
		again, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if string(again) != "immutable" {
			t.Fatalf("store returned its own slice: second Get = %q", again)
		}
	})

	t.Run("ConcurrentPutsSameKey", func(t *testing.T) {
		s, ctx, key := newStore(t), ctxFor(t), prefix(t)+"/obj"
		const writers = 8
		versions := make([][]byte, writers)
		for i := range versions {
			versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i)
		}
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Put(ctx, key, versions[i])
			}()
		}
		// Readers running alongside must see a complete version or ErrNotFound, never a mix.
		stop := make(chan struct{})
		readErr := make(chan error, 1)
		go func() {
			defer close(readErr)
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := s.Get(ctx, key)
				if errors.Is(err, offload.ErrNotFound) {
					continue
				}
				if err != nil {
					readErr <- err
					return
				}
				if !isOneOf(got, versions) {
					readErr <- fmt.Errorf("concurrent Get saw a torn object of %d bytes", len(got))
					return
				}
			}
		}()
		wg.Wait()
		close(stop)
		if err := <-readErr; err != nil {
			t.Fatal(err)
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Put %d: %v", i, err)
			}
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !isOneOf(got, versions) {
			t.Fatalf("after concurrent puts Get returned %d bytes matching no written version", len(got))
		}
	})

	t.Run("LargeObject", func(t *testing.T) {
		s, ctx, key := newStore(t), ctxFor(t), prefix(t)+"/large"
		want := make([]byte, opts.LargeSize)
		fillPattern(want)
		if err := s.Put(ctx, key, want); err != nil {
			t.Fatalf("Put of %d bytes: %v", len(want), err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("large object corrupted: got %d bytes, want %d", len(got), len(want))
		}
	})

	t.Run("EmptyObject", func(t *testing.T) {
		s, ctx, key := newStore(t), ctxFor(t), prefix(t)+"/empty"
		if err := s.Put(ctx, key, nil); err != nil {
			t.Fatalf("Put of an empty object: %v", err)
		}
		if ok, err := s.Exists(ctx, key); err != nil || !ok {
			t.Fatalf("Exists of an empty object = %v, %v; want true, nil", ok, err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if len(got) != 0 {
			t.Fatalf("Get of an empty object returned %d bytes", len(got))
		}
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		s, ctx := newStore(t), ctxFor(t)
		for _, key := range []string{"", "/abs/key", "a/../b", "a//b", "a/./b", "trailing/", strings.Repeat("k", 1025)} {
			err := s.Put(ctx, key, []byte("x"))
			if !errors.Is(err, offload.ErrStore) {
				t.Errorf("Put(%.40q) err = %v, want ErrStore", key, err)
			}
		}
	})

	t.Run("BoundedGet", func(t *testing.T) {
		s, ctx, key := newStore(t), ctxFor(t), prefix(t)+"/obj"
		bg, ok := s.(offload.BoundedGetter)
		if !ok {
			t.Skip("store does not implement offload.BoundedGetter")
		}
		data := bytes.Repeat([]byte("z"), 1000)
		if err := s.Put(ctx, key, data); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if got, err := bg.GetBounded(ctx, key, 1000); err != nil || len(got) != 1000 {
			t.Fatalf("GetBounded at the size = %d bytes, %v; want 1000, nil", len(got), err)
		}
		_, err := bg.GetBounded(ctx, key, 999)
		if !errors.Is(err, offload.ErrTooLarge) || !strings.Contains(err.Error(), key) {
			t.Fatalf("GetBounded below the size: err = %v, want ErrTooLarge naming the key", err)
		}
		_, err = bg.GetBounded(ctx, prefix(t)+"/missing", 10)
		if !errors.Is(err, offload.ErrNotFound) {
			t.Fatalf("GetBounded of a missing key: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("PutParts", func(t *testing.T) {
		s, ctx, key := newStore(t), ctxFor(t), prefix(t)+"/obj"
		pp, ok := s.(offload.PartsPutter)
		if !ok {
			t.Skip("store does not implement offload.PartsPutter")
		}
		large := make([]byte, opts.LargeSize)
		fillPattern(large)
		for _, tc := range []struct {
			name  string
			parts [][]byte
		}{
			{"small", [][]byte{[]byte("head:"), []byte("data"), nil, []byte(":tail")}},
			{"empty", nil},
			{"empty parts", [][]byte{{}, nil}},
			// A header, the large data and a trailer: above the S3 part size, with part
			// boundaries that do not fall on slice boundaries.
			{"large", [][]byte{[]byte("framing header"), large, []byte("trailer")}},
		} {
			var want []byte
			for _, p := range tc.parts {
				want = append(want, p...)
			}
			snapshot := make([][]byte, len(tc.parts))
			for i, p := range tc.parts {
				snapshot[i] = append([]byte(nil), p...)
			}
			if err := pp.PutParts(ctx, key, tc.parts, sha256.Sum256(want)); err != nil {
				t.Fatalf("%s: PutParts: %v", tc.name, err)
			}
			for i := range tc.parts {
				if !bytes.Equal(tc.parts[i], snapshot[i]) {
					t.Fatalf("%s: PutParts modified part %d", tc.name, i)
				}
			}
			got, err := s.Get(ctx, key)
			if err != nil {
				t.Fatalf("%s: Get: %v", tc.name, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: Get after PutParts returned %d bytes, want the %d bytes of the concatenation", tc.name, len(got), len(want))
			}
		}
		large[0]++ // the store copied the bytes: changing them changes nothing
		got, err := s.Get(ctx, key)
		if err != nil || got[len("framing header")] == large[0] {
			t.Fatalf("store kept a reference to the caller's parts (%v)", err)
		}
		err = pp.PutParts(ctx, "a/../b", [][]byte{[]byte("x")}, sha256.Sum256([]byte("x")))
		if !errors.Is(err, offload.ErrStore) {
			t.Fatalf("PutParts with an invalid key: err = %v, want ErrStore", err)
		}
	})

	t.Run("GetInto", func(t *testing.T) {
		s, ctx, key := newStore(t), ctxFor(t), prefix(t)+"/obj"
		sg, ok := s.(offload.SizedGetter)
		if !ok {
			t.Skip("store does not implement offload.SizedGetter")
		}
		for _, size := range []int{0, 1000, opts.LargeSize} {
			want := make([]byte, size)
			fillPattern(want)
			if size > 0 {
				want[0] = byte(size)
			}
			if err := s.Put(ctx, key, want); err != nil {
				t.Fatalf("Put of %d bytes: %v", size, err)
			}
			buf := make([]byte, size)
			if err := sg.GetInto(ctx, key, buf); err != nil {
				t.Fatalf("GetInto of %d bytes: %v", size, err)
			}
			if !bytes.Equal(buf, want) {
				t.Fatalf("GetInto of %d bytes returned other bytes", size)
			}
			if hg, ok := s.(offload.HashingGetter); ok {
				h, buf := sha256.New(), make([]byte, size)
				if err := hg.GetIntoHashing(ctx, key, buf, h); err != nil {
					t.Fatalf("GetIntoHashing of %d bytes: %v", size, err)
				}
				if sum := sha256.Sum256(want); !bytes.Equal(buf, want) || !bytes.Equal(h.Sum(nil), sum[:]) {
					t.Fatalf("GetIntoHashing of %d bytes returned other bytes or another digest", size)
				}
				if err := hg.GetIntoHashing(ctx, key, make([]byte, size+1), sha256.New()); !errors.Is(err, offload.ErrIntegrity) {
					t.Fatalf("GetIntoHashing of a %d-byte object into %d bytes: err = %v, want ErrIntegrity", size, size+1, err)
				}
			}
			for _, other := range []int{size - 1, size + 1, size + opts.LargeSize/2} {
				if other < 0 {
					continue
				}
				err := sg.GetInto(ctx, key, make([]byte, other))
				if !errors.Is(err, offload.ErrIntegrity) || !strings.Contains(err.Error(), key) {
					t.Fatalf("GetInto of a %d-byte object into %d bytes: err = %v, want ErrIntegrity naming the key", size, other, err)
				}
			}
		}
		err := sg.GetInto(ctx, prefix(t)+"/missing", make([]byte, 10))
		if !errors.Is(err, offload.ErrNotFound) {
			t.Fatalf("GetInto of a missing key: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("Stat", func(t *testing.T) {
		s, ctx, key := newStore(t), ctxFor(t), prefix(t)+"/obj"
		st, ok := s.(offload.Stater)
		if !ok {
			t.Skip("store does not implement offload.Stater")
		}
		_, err := st.Stat(ctx, key)
		if !errors.Is(err, offload.ErrNotFound) || !strings.Contains(err.Error(), key) {
			t.Fatalf("Stat of a missing key: err = %v, want ErrNotFound naming the key", err)
		}
		// Store clocks (S3 servers) may differ from ours by a little and count in seconds.
		const skew = 5 * time.Minute
		before := time.Now()
		if err := s.Put(ctx, key, []byte("twelve bytes")); err != nil {
			t.Fatal(err)
		}
		info, err := st.Stat(ctx, key)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if info.Size != 12 {
			t.Fatalf("Stat size = %d, want 12", info.Size)
		}
		if info.Modified.Before(before.Add(-skew)) || info.Modified.After(time.Now().Add(skew)) {
			t.Fatalf("Stat write time %v is not the time of the Put (%v)", info.Modified, before)
		}
		if err := s.Put(ctx, key, nil); err != nil {
			t.Fatal(err)
		}
		if info, err := st.Stat(ctx, key); err != nil || info.Size != 0 {
			t.Fatalf("Stat after overwriting with an empty object = %+v, %v; want size 0", info, err)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s, key := newStore(t), prefix(t)+"/obj"
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := s.Put(ctx, key, []byte("x"))
		if err == nil {
			t.Fatal("Put with a canceled context succeeded")
		}
		if !errors.Is(err, context.Canceled) || errors.Is(err, offload.ErrRetryable) {
			t.Fatalf("Put with a canceled context: err = %v, want context.Canceled and not retryable", err)
		}
	})
}

func isOneOf(got []byte, versions [][]byte) bool {
	for _, v := range versions {
		if bytes.Equal(got, v) {
			return true
		}
	}
	return false
}

// fillPattern fills b with pseudo-random bytes (cheap, but not compressible to nothing).
func fillPattern(b []byte) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
