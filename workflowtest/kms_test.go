package workflowtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/payloadkit/payloadkit/workflowtest"
)

const testARNPrefix = "arn:aws:kms:" + workflowtest.KMSRegion + ":" + workflowtest.KMSAccountID + ":"

// errorCode returns the AWS error code of err, failing the test if err is not an AWS API error.
func errorCode(t *testing.T, err error) string {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not an AWS API error", err, err)
	}
	return apiErr.ErrorCode()
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got := errorCode(t, err); got != code {
		t.Fatalf("error code %q, want %q (error: %v)", got, code, err)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestKMSCreateAndDescribeKey(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	ctx := context.Background()

	created := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("orders")}))
	md := created.KeyMetadata
	id := aws.ToString(md.KeyId)
	if len(id) != 36 || strings.HasPrefix(id, "mrk-") {
		t.Errorf("KeyId %q, want a UUID", id)
	}
	if got, want := aws.ToString(md.Arn), testARNPrefix+"key/"+id; got != want {
		t.Errorf("Arn %q, want %q", got, want)
	}
	if !md.Enabled || md.KeyState != types.KeyStateEnabled || md.KeyUsage != types.KeyUsageTypeEncryptDecrypt ||
		md.KeySpec != types.KeySpecSymmetricDefault || aws.ToString(md.Description) != "orders" || aws.ToBool(md.MultiRegion) {
		t.Errorf("unexpected metadata %+v", md)
	}
	if md.CreationDate == nil || time.Since(*md.CreationDate) > time.Hour || time.Since(*md.CreationDate) < -time.Hour {
		t.Errorf("CreationDate %v is not now", md.CreationDate)
	}

	for _, name := range []string{id, aws.ToString(md.Arn)} {
		d := must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)}))
		if aws.ToString(d.KeyMetadata.KeyId) != id {
			t.Errorf("DescribeKey(%s) returned key %s", name, aws.ToString(d.KeyMetadata.KeyId))
		}
	}

	_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048})
	wantCode(t, err, "UnsupportedOperationException")
}

func TestKMSNotFound(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	ctx := context.Background()
	arn := srv.NewKey()
	id := arn[strings.LastIndex(arn, "/")+1:]

	for _, name := range []string{
		"00000000-0000-4000-8000-000000000000",
		testARNPrefix + "key/00000000-0000-4000-8000-000000000000",
		"arn:aws:kms:eu-west-1:" + workflowtest.KMSAccountID + ":key/" + id, // other region
		"arn:aws:kms:" + workflowtest.KMSRegion + ":999999999999:key/" + id, // other account
		"arn:aws:s3:::bucket",
		"alias/missing",
		testARNPrefix + "alias/missing",
	} {
		_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)})
		var nf *types.NotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("DescribeKey(%s): error %v, want *types.NotFoundException", name, err)
		}
		_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(name), KeySpec: types.DataKeySpecAes256})
		wantCode(t, err, "NotFoundException")
	}
}

func TestKMSGenerateDataKeyAndDecrypt(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	ctx := context.Background()
	arn := srv.NewKey()
	encCtx := map[string]string{"namespace": "default", "app": "orders"}

	out := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256, EncryptionContext: encCtx,
	}))
	if len(out.Plaintext) != 32 || aws.ToString(out.KeyId) != arn || len(out.CiphertextBlob) == 0 {
		t.Fatalf("GenerateDataKey: %d-byte key, KeyId %q, %d-byte blob", len(out.Plaintext), aws.ToString(out.KeyId), len(out.CiphertextBlob))
	}
	if bytes.Contains(out.CiphertextBlob, out.Plaintext) {
		t.Fatal("the ciphertext blob contains the plaintext data key")
	}

	// Decrypt with and without KeyId; the context's key order does not matter.
	for _, keyID := range []*string{nil, aws.String(arn)} {
		dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{
			CiphertextBlob: out.CiphertextBlob, KeyId: keyID,
			EncryptionContext: map[string]string{"app": "orders", "namespace": "default"},
		}))
		if !bytes.Equal(dec.Plaintext, out.Plaintext) || aws.ToString(dec.KeyId) != arn {
			t.Fatalf("Decrypt(KeyId=%v) returned another key or key id %q", aws.ToString(keyID), aws.ToString(dec.KeyId))
		}
	}

	n := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(arn), NumberOfBytes: aws.Int32(64),
	}))
	if len(n.Plaintext) != 64 {
		t.Errorf("NumberOfBytes 64 gave %d bytes", len(n.Plaintext))
	}
	k128 := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes128,
	}))
	if len(k128.Plaintext) != 16 {
		t.Errorf("AES_128 gave %d bytes", len(k128.Plaintext))
	}

	_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn)})
	wantCode(t, err, "ValidationException")
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
	wantCode(t, err, "ValidationException")
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), NumberOfBytes: aws.Int32(1025)})
	wantCode(t, err, "ValidationException")
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256, DryRun: aws.Bool(true)})
	wantCode(t, err, "DryRunOperationException")
}

func TestKMSEncryptDecrypt(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	ctx := context.Background()
	arn := srv.NewKey()
	msg := []byte("a secret of the test")

	a := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: msg}))
	b := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: msg}))
	if bytes.Equal(a.CiphertextBlob, b.CiphertextBlob) {
		t.Error("two encryptions of the same plaintext gave the same ciphertext")
	}
	if a.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault || aws.ToString(a.KeyId) != arn {
		t.Errorf("Encrypt: algorithm %q key %q", a.EncryptionAlgorithm, aws.ToString(a.KeyId))
	}
	for _, blob := range [][]byte{a.CiphertextBlob, b.CiphertextBlob} {
		dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob}))
		if !bytes.Equal(dec.Plaintext, msg) {
			t.Errorf("Decrypt returned %q", dec.Plaintext)
		}
	}

	_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: make([]byte, 4097)})
	wantCode(t, err, "ValidationException")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: msg,
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	wantCode(t, err, "InvalidKeyUsageException")
}

func TestKMSDecryptRejectsWrongContextKeyOrCiphertext(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	ctx := context.Background()
	arn, other := srv.NewKey(), srv.NewKey()
	encCtx := map[string]string{"namespace": "a"}
	out := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256, EncryptionContext: encCtx,
	}))

	for name, ec := range map[string]map[string]string{
		"changed value": {"namespace": "b"},
		"extra pair":    {"namespace": "a", "x": "y"},
		"missing":       nil,
		"key case":      {"Namespace": "a"},
	} {
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec})
		var ic *types.InvalidCiphertextException
		if !errors.As(err, &ic) {
			t.Errorf("%s context: error %v, want *types.InvalidCiphertextException", name, err)
		}
	}

	_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: encCtx, KeyId: aws.String(other)})
	var ik *types.IncorrectKeyException
	if !errors.As(err, &ik) {
		t.Errorf("Decrypt with another KeyId: error %v, want *types.IncorrectKeyException", err)
	}

	for i := range out.CiphertextBlob {
		tampered := bytes.Clone(out.CiphertextBlob)
		tampered[i] ^= 0x01
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: tampered, EncryptionContext: encCtx})
		if err == nil {
			t.Fatalf("Decrypt accepted a blob with byte %d changed", i)
		}
		if code := errorCode(t, err); code != "InvalidCiphertextException" && code != "IncorrectKeyException" {
			t.Fatalf("byte %d changed: error code %s", i, code)
		}
	}
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob[:20], EncryptionContext: encCtx})
	wantCode(t, err, "InvalidCiphertextException")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: make([]byte, 6145)})
	wantCode(t, err, "ValidationException")
}

func TestKMSAliases(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	ctx := context.Background()
	arn := srv.NewKey()
	id := arn[strings.LastIndex(arn, "/")+1:]

	must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/orders"), TargetKeyId: aws.String(id)}))

	for _, name := range []string{"alias/orders", testARNPrefix + "alias/orders"} {
		d := must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)}))
		if aws.ToString(d.KeyMetadata.Arn) != arn {
			t.Errorf("DescribeKey(%s) = %s, want %s", name, aws.ToString(d.KeyMetadata.Arn), arn)
		}
		g := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(name), KeySpec: types.DataKeySpecAes256}))
		if aws.ToString(g.KeyId) != arn {
			t.Errorf("GenerateDataKey(%s) answered KeyId %s, want the key ARN %s", name, aws.ToString(g.KeyId), arn)
		}
		dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(name), CiphertextBlob: g.CiphertextBlob}))
		if !bytes.Equal(dec.Plaintext, g.Plaintext) {
			t.Errorf("Decrypt via %s returned another key", name)
		}
	}

	_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/orders"), TargetKeyId: aws.String(arn)})
	wantCode(t, err, "AlreadyExistsException")
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws/s3"), TargetKeyId: aws.String(arn)})
	wantCode(t, err, "InvalidAliasNameException")
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("orders"), TargetKeyId: aws.String(arn)})
	wantCode(t, err, "ValidationException")
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/x"), TargetKeyId: aws.String("alias/orders")})
	wantCode(t, err, "NotFoundException") // the target must be a key id or key ARN
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String("alias/orders")})
	wantCode(t, err, "NotFoundException") // as in AWS KMS, DisableKey does not take aliases

	// Moving an alias changes the key new data keys are made under; old blobs still decrypt
	// through their own key (and, pinned to the alias, fail with IncorrectKeyException).
	old := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/orders"), KeySpec: types.DataKeySpecAes256}))
	next := srv.NewKey()
	srv.SetAlias("alias/orders", next)
	g := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/orders"), KeySpec: types.DataKeySpecAes256}))
	if aws.ToString(g.KeyId) != next {
		t.Errorf("after moving the alias, GenerateDataKey used %s, want %s", aws.ToString(g.KeyId), next)
	}
	must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{KeyId: old.KeyId, CiphertextBlob: old.CiphertextBlob}))
	_, err = c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String("alias/orders"), CiphertextBlob: old.CiphertextBlob})
	wantCode(t, err, "IncorrectKeyException")
}

func TestKMSMultiRegionKey(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	ctx := context.Background()

	created := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}))
	md := created.KeyMetadata
	if !strings.HasPrefix(aws.ToString(md.KeyId), "mrk-") || len(aws.ToString(md.KeyId)) != 36 || !aws.ToBool(md.MultiRegion) {
		t.Fatalf("multi-region key id %q MultiRegion %v", aws.ToString(md.KeyId), aws.ToBool(md.MultiRegion))
	}
	if md.MultiRegionConfiguration == nil || md.MultiRegionConfiguration.MultiRegionKeyType != types.MultiRegionKeyTypePrimary ||
		aws.ToString(md.MultiRegionConfiguration.PrimaryKey.Arn) != aws.ToString(md.Arn) {
		t.Errorf("MultiRegionConfiguration %+v", md.MultiRegionConfiguration)
	}

	arn := srv.NewMultiRegionKey()
	if !strings.HasPrefix(arn, testARNPrefix+"key/mrk-") {
		t.Fatalf("NewMultiRegionKey() = %s", arn)
	}
	g := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256}))
	mrkID := arn[strings.LastIndex(arn, "/")+1:]
	dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(mrkID), CiphertextBlob: g.CiphertextBlob}))
	if !bytes.Equal(dec.Plaintext, g.Plaintext) {
		t.Error("multi-region key: Decrypt returned another data key")
	}
}

func TestKMSDisabledKey(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	ctx := context.Background()
	arn := srv.NewKey()
	g := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256}))

	must[*kms.DisableKeyOutput](t)(c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn)}))
	d := must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)}))
	if d.KeyMetadata.Enabled || d.KeyMetadata.KeyState != types.KeyStateDisabled {
		t.Errorf("disabled key: Enabled %v KeyState %s", d.KeyMetadata.Enabled, d.KeyMetadata.KeyState)
	}
	_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256})
	var de *types.DisabledException
	if !errors.As(err, &de) {
		t.Errorf("GenerateDataKey on a disabled key: %v, want *types.DisabledException", err)
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
	wantCode(t, err, "DisabledException")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: g.CiphertextBlob})
	wantCode(t, err, "DisabledException")

	must[*kms.EnableKeyOutput](t)(c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(arn)}))
	dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: g.CiphertextBlob}))
	if !bytes.Equal(dec.Plaintext, g.Plaintext) {
		t.Error("re-enabled key: Decrypt returned another data key")
	}

	srv.SetKeyEnabled(arn, false)
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: g.CiphertextBlob})
	wantCode(t, err, "DisabledException")
}

func TestKMSRotation(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	ctx := context.Background()
	arn := srv.NewKey()
	encCtx := map[string]string{"namespace": "default"}

	st := must[*kms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(arn)}))
	if st.KeyRotationEnabled {
		t.Error("a new key has rotation enabled")
	}
	must[*kms.EnableKeyRotationOutput](t)(c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(arn), RotationPeriodInDays: aws.Int32(90)}))
	st = must[*kms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(arn)}))
	if !st.KeyRotationEnabled || aws.ToInt32(st.RotationPeriodInDays) != 90 || st.NextRotationDate == nil {
		t.Errorf("rotation status %+v", st)
	}
	_, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(arn), RotationPeriodInDays: aws.Int32(10)})
	wantCode(t, err, "ValidationException")

	before := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256, EncryptionContext: encCtx}))
	rot := must[*kms.RotateKeyOnDemandOutput](t)(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(arn)}))
	if !strings.HasSuffix(arn, aws.ToString(rot.KeyId)) {
		t.Errorf("RotateKeyOnDemand answered KeyId %s", aws.ToString(rot.KeyId))
	}
	if got := srv.KeyVersions(arn); got != 2 {
		t.Fatalf("after one rotation the key has %d versions, want 2", got)
	}
	st = must[*kms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(arn)}))
	if st.OnDemandRotationStartDate == nil {
		t.Error("OnDemandRotationStartDate is not set after RotateKeyOnDemand")
	}
	after := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256, EncryptionContext: encCtx}))

	for name, g := range map[string]*kms.GenerateDataKeyOutput{"before rotation": before, "after rotation": after} {
		dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(arn), CiphertextBlob: g.CiphertextBlob, EncryptionContext: encCtx}))
		if !bytes.Equal(dec.Plaintext, g.Plaintext) {
			t.Errorf("%s: Decrypt returned another data key", name)
		}
	}

	must[*kms.DisableKeyRotationOutput](t)(c.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(arn)}))
	st = must[*kms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(arn)}))
	if st.KeyRotationEnabled {
		t.Error("DisableKeyRotation left rotation enabled")
	}
	srv.SetKeyEnabled(arn, false)
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(arn)})
	wantCode(t, err, "DisabledException")
}

func TestKMSFailNext(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	ctx := context.Background()
	arn := srv.NewKey()
	gen := func() error {
		_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256})
		return err
	}

	srv.FailNext(workflowtest.KMSGenerateDataKey, 2, "ThrottlingException")
	srv.FailNext(workflowtest.KMSGenerateDataKey, 1, "KMSInternalException")
	for i, want := range []struct {
		code   string
		status int
	}{{"ThrottlingException", 400}, {"ThrottlingException", 400}, {"KMSInternalException", 500}} {
		err := gen()
		wantCode(t, err, want.code)
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != want.status {
			t.Errorf("fault %d: HTTP status %v, want %d", i, re, want.status)
		}
	}
	if err := gen(); err != nil {
		t.Fatalf("after the injected faults: %v", err)
	}
	// Faults of one operation do not affect another.
	srv.FailNext(workflowtest.KMSDecrypt, 1, "DependencyTimeoutException")
	if err := gen(); err != nil {
		t.Fatalf("GenerateDataKey failed with a Decrypt fault queued: %v", err)
	}
	_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("x")})
	wantCode(t, err, "DependencyTimeoutException")

	srv.FailNext(workflowtest.KMSAnyOperation, 1, "KeyUnavailableException")
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
	wantCode(t, err, "KeyUnavailableException")

	srv.FailNext(workflowtest.KMSGenerateDataKey, 5, "ThrottlingException")
	srv.FailNext(workflowtest.KMSGenerateDataKey, 0, "")
	if err := gen(); err != nil {
		t.Fatalf("FailNext(op, 0) did not clear the faults: %v", err)
	}

	if got := srv.Calls(workflowtest.KMSGenerateDataKey); got != 6 {
		t.Errorf("Calls(GenerateDataKey) = %d, want 6 (faulted requests count)", got)
	}
	if got := srv.Calls(workflowtest.KMSAnyOperation); got != 8 {
		t.Errorf("Calls(*) = %d, want 8", got)
	}
	srv.ResetCalls()
	if got := srv.Calls(workflowtest.KMSAnyOperation); got != 0 {
		t.Errorf("after ResetCalls, Calls(*) = %d", got)
	}
}

func TestKMSClientRetriesWhenAsked(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	arn := srv.NewKey()
	ctx := context.Background()
	in := &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256}

	srv.FailNext(workflowtest.KMSGenerateDataKey, 2, "ThrottlingException")
	retrying := srv.Client(func(o *kms.Options) { o.RetryMaxAttempts = 3 })
	if _, err := retrying.GenerateDataKey(ctx, in); err != nil {
		t.Fatalf("with 3 attempts, 2 throttled requests: %v", err)
	}
	if got := srv.Calls(workflowtest.KMSGenerateDataKey); got != 3 {
		t.Errorf("Calls = %d, want 3 attempts", got)
	}

	// The default client makes one attempt.
	srv.ResetCalls()
	srv.FailNext(workflowtest.KMSGenerateDataKey, 1, "ThrottlingException")
	_, err := srv.Client().GenerateDataKey(ctx, in)
	wantCode(t, err, "ThrottlingException")
	if got := srv.Calls(workflowtest.KMSGenerateDataKey); got != 1 {
		t.Errorf("default client: Calls = %d, want 1", got)
	}
}

func TestKMSUnavailableDropAndLatency(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	ctx := context.Background()
	arn := srv.NewKey()
	in := &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256}

	srv.SetUnavailable(true)
	_, err := c.GenerateDataKey(ctx, in)
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusServiceUnavailable {
		t.Fatalf("unavailable: error %v, want HTTP 503", err)
	}
	srv.SetUnavailable(false)

	srv.SetDropConnections(true)
	_, err = c.GenerateDataKey(ctx, in)
	var se *smithyhttp.RequestSendError
	if !errors.As(err, &se) {
		t.Fatalf("dropped connection: error %v (%T), want a *smithyhttp.RequestSendError", err, err)
	}
	srv.SetDropConnections(false)

	srv.SetLatency(time.Minute)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = c.GenerateDataKey(short, in)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("latency beyond the deadline: error %v, want context.DeadlineExceeded", err)
	}
	srv.SetLatency(0)

	if _, err := c.GenerateDataKey(ctx, in); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if got := srv.Calls(workflowtest.KMSGenerateDataKey); got != 4 {
		t.Errorf("Calls = %d, want 4", got)
	}
}

func TestKMSRejectsBadRequests(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	post := func(target, contentType, auth string, body []byte) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.Endpoint()+"/", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", contentType)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Type string `json:"__type"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatalf("error body: %v", err)
		}
		return resp.StatusCode, e.Type
	}
	const ct = "application/x-amz-json-1.1"
	const auth = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00"
	for _, tc := range []struct {
		name, target, ct, auth string
		body                   []byte
		status                 int
		typ                    string
	}{
		{"no Authorization", "TrentService.CreateKey", ct, "", []byte("{}"), 400, "MissingAuthenticationTokenException"},
		{"not SigV4", "TrentService.CreateKey", ct, "Basic dXNlcjpwYXNz", []byte("{}"), 400, "IncompleteSignatureException"},
		{"unknown operation", "TrentService.Sign", ct, auth, []byte("{}"), 400, "UnknownOperationException"},
		{"no target", "", ct, auth, []byte("{}"), 400, "UnknownOperationException"},
		{"wrong content type", "TrentService.CreateKey", "application/json", auth, []byte("{}"), 400, "SerializationException"},
		{"malformed JSON", "TrentService.CreateKey", ct, auth, []byte("{"), 400, "SerializationException"},
		{"body too large", "TrentService.Encrypt", ct, auth, bytes.Repeat([]byte(" "), workflowtest.KMSMaxRequestBody+1), 400, "ValidationException"},
	} {
		status, typ := post(tc.target, tc.ct, tc.auth, tc.body)
		if status != tc.status || typ != tc.typ {
			t.Errorf("%s: HTTP %d %s, want %d %s", tc.name, status, typ, tc.status, tc.typ)
		}
	}
}

func TestKMSConcurrentCalls(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	arn := srv.NewKey()
	const workers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				out, err := c.Encrypt(context.Background(), &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("p")})
				if err == nil {
					_, err = c.Decrypt(context.Background(), &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if e, d := srv.Calls(workflowtest.KMSEncrypt), srv.Calls(workflowtest.KMSDecrypt); e != workers*each || d != workers*each {
		t.Errorf("Calls: Encrypt %d Decrypt %d, want %d each", e, d, workers*each)
	}
}
