package codec

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// assertNoKeyMaterial fails if s contains any key in any common encoding.
func assertNoKeyMaterial(t *testing.T, s string, keys ...[]byte) {
	t.Helper()
	for _, k := range keys {
		for _, enc := range []string{string(k), b64(k), base64.RawStdEncoding.EncodeToString(k), fmt.Sprintf("%x", k), fmt.Sprint(k)} {
			if strings.Contains(s, enc) {
				t.Fatalf("%q contains key material", s)
			}
		}
	}
}

func TestGenerateKey(t *testing.T) {
	a, b := GenerateKey(), GenerateKey()
	if len(a) != DataKeySize || len(b) != DataKeySize {
		t.Fatalf("key sizes %d, %d", len(a), len(b))
	}
	if bytes.Equal(a, b) {
		t.Fatal("two generated keys are equal")
	}
}

func TestNewStaticKeyringValidation(t *testing.T) {
	k := testKey(1)
	for name, tc := range map[string]struct {
		primary string
		keys    map[string][]byte
	}{
		"empty primary":   {"", map[string][]byte{"a": k}},
		"missing primary": {"b", map[string][]byte{"a": k}},
		"short key":       {"a", map[string][]byte{"a": k[:16]}},
		"empty id":        {"a", map[string][]byte{"a": k, "": k}},
		"long id":         {"a", map[string][]byte{"a": k, strings.Repeat("x", MaxKeyIDLen+1): k}},
	} {
		_, err := NewStaticKeyring(tc.primary, tc.keys)
		if !errors.Is(err, ErrInvalidKeyring) {
			t.Errorf("%s: err = %v, want ErrInvalidKeyring", name, err)
			continue
		}
		assertNoKeyMaterial(t, err.Error(), k)
	}
	// The keyring copies its keys.
	keys := map[string][]byte{"a": testKey(1)}
	r, err := NewStaticKeyring("a", keys)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := r.GenerateDataKey(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys["a"][0] ^= 0xff
	if _, err := r.DecryptDataKey(context.Background(), "a", dk.Encrypted, nil); err != nil {
		t.Fatalf("keyring shares the caller's key slice: %v", err)
	}
}

func TestStaticKeyringDataKeys(t *testing.T) {
	ctx := context.Background()
	r := newTestKeyring(t, "k2", "k1")
	encCtx := map[string]string{"namespace": "ns", "app": "a"}
	dk, err := r.GenerateDataKey(ctx, encCtx)
	if err != nil {
		t.Fatal(err)
	}
	if dk.KeyID != "k2" || len(dk.Plaintext) != DataKeySize || len(dk.Encrypted) != keyringWrappedSize {
		t.Fatalf("data key: id %q, %d-byte plaintext, %d-byte encrypted", dk.KeyID, len(dk.Plaintext), len(dk.Encrypted))
	}
	got, err := r.DecryptDataKey(ctx, "k2", dk.Encrypted, map[string]string{"app": "a", "namespace": "ns"})
	if err != nil || !bytes.Equal(got, dk.Plaintext) {
		t.Fatalf("DecryptDataKey = %x, %v", got, err)
	}
	for name, tc := range map[string]struct {
		id     string
		edk    []byte
		encCtx map[string]string
		want   error
	}{
		"unknown id":     {"nope", dk.Encrypted, encCtx, ErrUnknownKey},
		"other key":      {"k1", dk.Encrypted, encCtx, ErrDecrypt},
		"other context":  {"k2", dk.Encrypted, map[string]string{"namespace": "ns2", "app": "a"}, ErrDecrypt},
		"no context":     {"k2", dk.Encrypted, nil, ErrDecrypt},
		"short":          {"k2", dk.Encrypted[:20], encCtx, ErrMalformed},
		"bad version":    {"k2", append([]byte{2}, dk.Encrypted[1:]...), encCtx, ErrMalformed},
		"flipped nonce":  {"k2", flip(dk.Encrypted, 3), encCtx, ErrDecrypt},
		"flipped cipher": {"k2", flip(dk.Encrypted, 30), encCtx, ErrDecrypt},
	} {
		_, err := r.DecryptDataKey(ctx, tc.id, tc.edk, tc.encCtx)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	if dk2, _ := r.GenerateDataKey(ctx, encCtx); bytes.Equal(dk2.Plaintext, dk.Plaintext) || bytes.Equal(dk2.Encrypted, dk.Encrypted) {
		t.Fatal("two generated data keys are equal")
	}
}

func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 1
	return out
}

func TestStaticKeyringStringHidesKeys(t *testing.T) {
	k1, k2 := testKey(1), testKey(50)
	r, err := NewStaticKeyring("k2", map[string][]byte{"k1": k1, "k2": k2})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{r.String(), fmt.Sprint(r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r), fmt.Sprintf("%v", *r)} {
		assertNoKeyMaterial(t, s, k1, k2)
	}
	if want := `StaticKeyring{primary: "k2", keys: ["k1" "k2"]}`; r.String() != want {
		t.Fatalf("String() = %s, want %s", r, want)
	}
	if r.PrimaryKeyID() != "k2" || fmt.Sprint(r.KeyIDs()) != "[k1 k2]" {
		t.Fatalf("PrimaryKeyID %q, KeyIDs %v", r.PrimaryKeyID(), r.KeyIDs())
	}
}

func TestParseKeyring(t *testing.T) {
	k1, k2 := testKey(1), testKey(50)
	t.Run("first is primary", func(t *testing.T) {
		r, err := ParseKeyring(" k1:" + b64(k1) + " , k2:" + base64.RawURLEncoding.EncodeToString(k2) + ",")
		if err != nil {
			t.Fatal(err)
		}
		if r.PrimaryKeyID() != "k1" || len(r.KeyIDs()) != 2 || !bytes.Equal(r.keys["k2"], k2) {
			t.Fatalf("parsed %v", r)
		}
	})
	t.Run("marked primary", func(t *testing.T) {
		r, err := ParseKeyring("k1:" + b64(k1) + ",*k2:" + b64(k2))
		if err != nil {
			t.Fatal(err)
		}
		if r.PrimaryKeyID() != "k2" {
			t.Fatalf("primary %q, want k2", r.PrimaryKeyID())
		}
	})
	for name, spec := range map[string]string{
		"empty":          "",
		"no colon":       b64(k1),
		"empty id":       ":" + b64(k1),
		"bad base64":     "k1:" + b64(k1)[:10] + "!!" + b64(k1)[12:],
		"short key":      "k1:" + b64(k1[:31]),
		"duplicate id":   "k1:" + b64(k1) + ",k1:" + b64(k2),
		"two primaries":  "*k1:" + b64(k1) + ",*k2:" + b64(k2),
		"second invalid": "k1:" + b64(k1) + ",k2:" + b64(k2)[:40],
	} {
		_, err := ParseKeyring(spec)
		if !errors.Is(err, ErrInvalidKeyring) {
			t.Errorf("%s: err = %v, want ErrInvalidKeyring", name, err)
			continue
		}
		assertNoKeyMaterial(t, err.Error(), k1, k2)
		if strings.Contains(err.Error(), b64(k1)[:10]) || strings.Contains(err.Error(), b64(k2)[:10]) {
			t.Errorf("%s: error %q quotes key text", name, err)
		}
	}
}

func writeKeyringFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKeyringFile(t *testing.T) {
	k1, k2 := testKey(1), testKey(50)
	path := writeKeyringFile(t, fmt.Sprintf(`{"primary":"k2","keys":{"k1":%q,"k2":%q}}`, b64(k1), b64(k2)))
	r, err := LoadKeyringFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.PrimaryKeyID() != "k2" || !bytes.Equal(r.keys["k1"], k1) {
		t.Fatalf("loaded %v", r)
	}
	for name, content := range map[string]string{
		"not json":        "primary=k1 key=" + b64(k1),
		"wrong types":     fmt.Sprintf(`{"primary":"k1","keys":[%q]}`, b64(k1)),
		"missing primary": fmt.Sprintf(`{"keys":{"k1":%q}}`, b64(k1)),
		"unknown primary": fmt.Sprintf(`{"primary":"k9","keys":{"k1":%q}}`, b64(k1)),
		"short key":       fmt.Sprintf(`{"primary":"k1","keys":{"k1":%q}}`, b64(k1[:20])),
		"bad base64":      fmt.Sprintf(`{"primary":"k1","keys":{"k1":"%s*"}}`, b64(k1)),
		"truncated json":  fmt.Sprintf(`{"primary":"k1","keys":{"k1":"%s`, b64(k1)),
	} {
		_, err := LoadKeyringFile(writeKeyringFile(t, content))
		if !errors.Is(err, ErrInvalidKeyring) {
			t.Errorf("%s: err = %v, want ErrInvalidKeyring", name, err)
			continue
		}
		assertNoKeyMaterial(t, err.Error(), k1)
		if strings.Contains(err.Error(), b64(k1)[:10]) {
			t.Errorf("%s: error %q quotes key text", name, err)
		}
	}
	if _, err := LoadKeyringFile(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want os.ErrNotExist", err)
	}
	big := writeKeyringFile(t, `{"primary":"`+strings.Repeat("x", maxKeyringFileSize)+`"}`)
	if _, err := LoadKeyringFile(big); !errors.Is(err, ErrInvalidKeyring) {
		t.Errorf("oversized file: err = %v", err)
	}
}

func TestStaticKeyringFromEnv(t *testing.T) {
	k1, k2 := testKey(1), testKey(50)
	t.Run("spec", func(t *testing.T) {
		t.Setenv("PKTEST_KEYRING", "k1:"+b64(k1))
		t.Setenv("PKTEST_KEYRING_FILE", "/nonexistent")
		r, err := StaticKeyringFromEnv("PKTEST_")
		if err != nil || r.PrimaryKeyID() != "k1" {
			t.Fatalf("keyring %v, err %v", r, err)
		}
	})
	t.Run("file", func(t *testing.T) {
		t.Setenv("PKTEST_KEYRING_FILE", writeKeyringFile(t, fmt.Sprintf(`{"primary":"k2","keys":{"k2":%q}}`, b64(k2))))
		r, err := StaticKeyringFromEnv("PKTEST_")
		if err != nil || r.PrimaryKeyID() != "k2" {
			t.Fatalf("keyring %v, err %v", r, err)
		}
	})
	t.Run("invalid spec names the variable", func(t *testing.T) {
		t.Setenv("PKTEST_KEYRING", "k1:"+b64(k1)[:30])
		_, err := StaticKeyringFromEnv("PKTEST_")
		if !errors.Is(err, ErrInvalidKeyring) || !strings.Contains(err.Error(), "PKTEST_KEYRING") {
			t.Fatalf("err = %v", err)
		}
		assertNoKeyMaterial(t, err.Error(), k1)
	})
	t.Run("unset", func(t *testing.T) {
		if _, err := StaticKeyringFromEnv("PKTEST_UNSET_"); !errors.Is(err, ErrInvalidKeyring) {
			t.Fatalf("err = %v", err)
		}
	})
}
