package workflowtest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// kmsRequest holds the members of every supported operation's input (AWS JSON 1.1 member names).
type kmsRequest struct {
	KeyId                string
	AliasName            string
	TargetKeyId          string
	Description          string
	KeySpec              string
	KeyUsage             string
	Origin               string
	MultiRegion          bool
	NumberOfBytes        *int
	EncryptionContext    map[string]string
	EncryptionAlgorithm  string
	Plaintext            []byte
	CiphertextBlob       []byte
	GrantTokens          []string
	RotationPeriodInDays *int
	DryRun               bool
}

type kmsPrimaryKey struct {
	Arn    string
	Region string
}

type kmsMultiRegionConfiguration struct {
	MultiRegionKeyType string
	PrimaryKey         kmsPrimaryKey
	ReplicaKeys        []kmsPrimaryKey
}

type kmsKeyMetadata struct {
	AWSAccountId             string
	Arn                      string
	CreationDate             float64
	CustomerMasterKeySpec    string
	Description              string
	Enabled                  bool
	EncryptionAlgorithms     []string
	KeyId                    string
	KeyManager               string
	KeySpec                  string
	KeyState                 string
	KeyUsage                 string
	MultiRegion              bool
	MultiRegionConfiguration *kmsMultiRegionConfiguration `json:",omitempty"`
	Origin                   string
}

// Blob format of the server's ciphertexts (opaque to clients, like AWS KMS's):
//
//	magic "PKK" | version 0x01 | len(key id) uint8 | key id | key version uint32 BE | nonce [12] | AES-GCM ciphertext+tag
//
// The additional data is the blob up to the nonce followed by the canonical encryption context.
var kmsBlobMagic = []byte{'P', 'K', 'K', 0x01}

const (
	kmsNonceSize   = 12
	kmsTagSize     = 16
	kmsMaxKeyIDLen = 64
)

var (
	kmsAliasPattern = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)
	kmsKeyIDPattern = regexp.MustCompile(`^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
)

func kmsKeyARN(id string) string {
	return "arn:aws:kms:" + KMSRegion + ":" + KMSAccountID + ":key/" + id
}

func kmsCheckAliasName(name string) *kmsError {
	if !kmsAliasPattern.MatchString(name) {
		return kmsErr("ValidationException", "alias name %q must match alias/[a-zA-Z0-9/_-]+", name)
	}
	if strings.HasPrefix(name, "alias/aws/") {
		return kmsErr("InvalidAliasNameException", "alias names beginning with alias/aws/ are reserved")
	}
	return nil
}

func (k *KMS) dispatch(op string, req *kmsRequest) (any, *kmsError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch op {
	case KMSCreateKey:
		return k.opCreateKey(req)
	case KMSCreateAlias:
		return k.opCreateAlias(req)
	case KMSDescribeKey:
		key, err := k.resolveLocked(req.KeyId, true)
		if err != nil {
			return nil, err
		}
		return map[string]any{"KeyMetadata": key.metadata()}, nil
	case KMSGenerateDataKey:
		return k.opGenerateDataKey(req)
	case KMSEncrypt:
		return k.opEncrypt(req)
	case KMSDecrypt:
		return k.opDecrypt(req)
	case KMSEnableKey, KMSDisableKey:
		key, err := k.resolveLocked(req.KeyId, false)
		if err != nil {
			return nil, err
		}
		key.enabled = op == KMSEnableKey
		return struct{}{}, nil
	case KMSEnableKeyRotation, KMSDisableKeyRotation:
		return k.opKeyRotation(op, req)
	case KMSRotateKeyOnDemand:
		key, err := k.usableKeyLocked(req.KeyId, false)
		if err != nil {
			return nil, err
		}
		key.rotate()
		return map[string]string{"KeyId": key.id}, nil
	case KMSGetKeyRotationStatus:
		key, err := k.resolveLocked(req.KeyId, false)
		if err != nil {
			return nil, err
		}
		resp := map[string]any{"KeyId": kmsKeyARN(key.id), "KeyRotationEnabled": key.rotationEnabled}
		if key.rotationEnabled {
			resp["RotationPeriodInDays"] = key.rotationPeriod
			resp["NextRotationDate"] = kmsEpoch(key.created.AddDate(0, 0, key.rotationPeriod))
		}
		if !key.lastRotation.IsZero() {
			resp["OnDemandRotationStartDate"] = kmsEpoch(key.lastRotation)
		}
		return resp, nil
	}
	return nil, kmsErr("UnknownOperationException", "operation %q is not supported by the KMS test server", op)
}

func (k *KMS) opCreateKey(req *kmsRequest) (any, *kmsError) {
	if req.KeySpec != "" && req.KeySpec != "SYMMETRIC_DEFAULT" {
		return nil, kmsErr("UnsupportedOperationException", "KeySpec %q is not supported; only SYMMETRIC_DEFAULT", req.KeySpec)
	}
	if req.KeyUsage != "" && req.KeyUsage != "ENCRYPT_DECRYPT" {
		return nil, kmsErr("UnsupportedOperationException", "KeyUsage %q is not supported; only ENCRYPT_DECRYPT", req.KeyUsage)
	}
	if req.Origin != "" && req.Origin != "AWS_KMS" {
		return nil, kmsErr("UnsupportedOperationException", "Origin %q is not supported; only AWS_KMS", req.Origin)
	}
	if len(req.Description) > 8192 {
		return nil, kmsErr("ValidationException", "Description is longer than 8192 characters")
	}
	key := k.createKeyLocked(req.Description, req.MultiRegion)
	return map[string]any{"KeyMetadata": key.metadata()}, nil
}

func (k *KMS) createKeyLocked(description string, multiRegion bool) *kmsKey {
	var b [16]byte
	_, _ = rand.Read(b[:])
	var id string
	if multiRegion {
		id = "mrk-" + hex.EncodeToString(b[:])
	} else {
		b[6] = b[6]&0x0f | 0x40 // UUID version 4
		b[8] = b[8]&0x3f | 0x80
		id = kmsFormatUUID(b)
	}
	key := &kmsKey{
		id:             id,
		description:    description,
		created:        time.Now(),
		enabled:        true,
		multiRegion:    multiRegion,
		rotationPeriod: 365,
	}
	key.rotate()
	key.lastRotation = time.Time{}
	k.keys[id] = key
	return key
}

func (key *kmsKey) rotate() {
	material := make([]byte, 32)
	_, _ = rand.Read(material)
	key.versions = append(key.versions, material)
	key.lastRotation = time.Now()
}

func (key *kmsKey) metadata() kmsKeyMetadata {
	state := "Enabled"
	if !key.enabled {
		state = "Disabled"
	}
	md := kmsKeyMetadata{
		AWSAccountId:          KMSAccountID,
		Arn:                   kmsKeyARN(key.id),
		CreationDate:          kmsEpoch(key.created),
		CustomerMasterKeySpec: "SYMMETRIC_DEFAULT",
		Description:           key.description,
		Enabled:               key.enabled,
		EncryptionAlgorithms:  []string{"SYMMETRIC_DEFAULT"},
		KeyId:                 key.id,
		KeyManager:            "CUSTOMER",
		KeySpec:               "SYMMETRIC_DEFAULT",
		KeyState:              state,
		KeyUsage:              "ENCRYPT_DECRYPT",
		MultiRegion:           key.multiRegion,
		Origin:                "AWS_KMS",
	}
	if key.multiRegion {
		md.MultiRegionConfiguration = &kmsMultiRegionConfiguration{
			MultiRegionKeyType: "PRIMARY",
			PrimaryKey:         kmsPrimaryKey{Arn: kmsKeyARN(key.id), Region: KMSRegion},
			ReplicaKeys:        []kmsPrimaryKey{},
		}
	}
	return md
}

func kmsEpoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func (k *KMS) opCreateAlias(req *kmsRequest) (any, *kmsError) {
	if err := kmsCheckAliasName(req.AliasName); err != nil {
		return nil, err
	}
	if _, exists := k.aliases[req.AliasName]; exists {
		return nil, kmsErr("AlreadyExistsException", "alias %s already exists", kmsAliasARN(req.AliasName))
	}
	key, err := k.resolveLocked(req.TargetKeyId, false)
	if err != nil {
		return nil, err
	}
	k.aliases[req.AliasName] = key.id
	return struct{}{}, nil
}

func kmsAliasARN(name string) string {
	return "arn:aws:kms:" + KMSRegion + ":" + KMSAccountID + ":" + name
}

func (k *KMS) opKeyRotation(op string, req *kmsRequest) (any, *kmsError) {
	key, err := k.usableKeyLocked(req.KeyId, false)
	if err != nil {
		return nil, err
	}
	if op == KMSDisableKeyRotation {
		key.rotationEnabled = false
		return struct{}{}, nil
	}
	period := 365
	if req.RotationPeriodInDays != nil {
		period = *req.RotationPeriodInDays
		if period < 90 || period > 2560 {
			return nil, kmsErr("ValidationException", "RotationPeriodInDays %d is outside [90, 2560]", period)
		}
	}
	key.rotationEnabled = true
	key.rotationPeriod = period
	return struct{}{}, nil
}

func (k *KMS) opGenerateDataKey(req *kmsRequest) (any, *kmsError) {
	var n int
	switch {
	case req.KeySpec != "" && req.NumberOfBytes != nil:
		return nil, kmsErr("ValidationException", "specify either KeySpec or NumberOfBytes, not both")
	case req.KeySpec == "AES_256":
		n = 32
	case req.KeySpec == "AES_128":
		n = 16
	case req.KeySpec != "":
		return nil, kmsErr("ValidationException", "KeySpec %q must be AES_256 or AES_128", req.KeySpec)
	case req.NumberOfBytes != nil:
		n = *req.NumberOfBytes
		if n < 1 || n > kmsMaxDataKey {
			return nil, kmsErr("ValidationException", "NumberOfBytes %d is outside [1, %d]", n, kmsMaxDataKey)
		}
	default:
		return nil, kmsErr("ValidationException", "KeySpec or NumberOfBytes is required")
	}
	key, err := k.usableKeyLocked(req.KeyId, true)
	if err != nil {
		return nil, err
	}
	if err := kmsCheckContext(req.EncryptionContext); err != nil {
		return nil, err
	}
	if req.DryRun {
		return nil, kmsErr("DryRunOperationException", "the request would have succeeded")
	}
	plaintext := make([]byte, n)
	_, _ = rand.Read(plaintext)
	blob := key.seal(plaintext, req.EncryptionContext)
	return map[string]any{"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": kmsKeyARN(key.id)}, nil
}

func (k *KMS) opEncrypt(req *kmsRequest) (any, *kmsError) {
	if len(req.Plaintext) < 1 || len(req.Plaintext) > kmsMaxPlaintext {
		return nil, kmsErr("ValidationException", "Plaintext length %d is outside [1, %d]", len(req.Plaintext), kmsMaxPlaintext)
	}
	if err := kmsCheckAlgorithm(req.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	key, err := k.usableKeyLocked(req.KeyId, true)
	if err != nil {
		return nil, err
	}
	if err := kmsCheckContext(req.EncryptionContext); err != nil {
		return nil, err
	}
	if req.DryRun {
		return nil, kmsErr("DryRunOperationException", "the request would have succeeded")
	}
	blob := key.seal(req.Plaintext, req.EncryptionContext)
	return map[string]any{"CiphertextBlob": blob, "KeyId": kmsKeyARN(key.id), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil
}

func (k *KMS) opDecrypt(req *kmsRequest) (any, *kmsError) {
	if len(req.CiphertextBlob) < 1 || len(req.CiphertextBlob) > kmsMaxCiphertext {
		return nil, kmsErr("ValidationException", "CiphertextBlob length %d is outside [1, %d]", len(req.CiphertextBlob), kmsMaxCiphertext)
	}
	if err := kmsCheckAlgorithm(req.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	if err := kmsCheckContext(req.EncryptionContext); err != nil {
		return nil, err
	}
	var want *kmsKey
	if req.KeyId != "" {
		var err *kmsError
		if want, err = k.resolveLocked(req.KeyId, true); err != nil {
			return nil, err
		}
	}
	blob, ok := kmsParseBlob(req.CiphertextBlob)
	if !ok {
		return nil, kmsErr("InvalidCiphertextException", "the ciphertext is malformed")
	}
	key := k.keys[blob.keyID]
	if want != nil && want != key {
		return nil, kmsErr("IncorrectKeyException",
			"the key ID in the request does not identify a KMS key that can perform this operation")
	}
	if key == nil {
		return nil, kmsErr("InvalidCiphertextException", "the ciphertext refers to a key that does not exist")
	}
	if !key.enabled {
		return nil, kmsErr("DisabledException", "%s is disabled", kmsKeyARN(key.id))
	}
	if blob.version >= uint32(len(key.versions)) {
		return nil, kmsErr("InvalidCiphertextException", "the ciphertext refers to an unknown key version")
	}
	plaintext, err := kmsAEAD(key.versions[blob.version]).Open(nil, blob.nonce, blob.sealed,
		kmsAAD(blob.header, req.EncryptionContext))
	if err != nil {
		return nil, kmsErr("InvalidCiphertextException", "the ciphertext or its encryption context is not valid")
	}
	if req.DryRun {
		return nil, kmsErr("DryRunOperationException", "the request would have succeeded")
	}
	return map[string]any{"KeyId": kmsKeyARN(key.id), "Plaintext": plaintext, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil
}

func kmsCheckAlgorithm(alg string) *kmsError {
	if alg != "" && alg != "SYMMETRIC_DEFAULT" {
		return kmsErr("InvalidKeyUsageException", "EncryptionAlgorithm %q is not valid for a symmetric key", alg)
	}
	return nil
}

func kmsCheckContext(ctx map[string]string) *kmsError {
	if len(ctx) > kmsMaxContext {
		return kmsErr("ValidationException", "EncryptionContext has %d pairs; at most %d are accepted", len(ctx), kmsMaxContext)
	}
	return nil
}

// resolveLocked finds the key named by name: a key id, key ARN and, if allowAlias, an alias name
// or alias ARN. k.mu must be held.
func (k *KMS) resolveLocked(name string, allowAlias bool) (*kmsKey, *kmsError) {
	if name == "" {
		return nil, kmsErr("ValidationException", "KeyId is required")
	}
	ref := name
	if rest, ok := strings.CutPrefix(name, "arn:"); ok {
		parts := strings.SplitN(rest, ":", 5) // partition, service, region, account, resource
		if len(parts) != 5 || parts[0] != "aws" || parts[1] != "kms" {
			return nil, kmsErr("NotFoundException", "invalid arn %q", name)
		}
		if parts[2] != KMSRegion || parts[3] != KMSAccountID {
			return nil, kmsErr("NotFoundException", "%s does not exist in region %s of account %s", name, KMSRegion, KMSAccountID)
		}
		ref = parts[4]
		if id, ok := strings.CutPrefix(ref, "key/"); ok {
			ref = id
		} else if !strings.HasPrefix(ref, "alias/") {
			return nil, kmsErr("NotFoundException", "invalid arn %q", name)
		}
	}
	if strings.HasPrefix(ref, "alias/") {
		if !allowAlias {
			return nil, kmsErr("NotFoundException", "%s: this operation accepts a key id or key ARN, not an alias", name)
		}
		id, ok := k.aliases[ref]
		if !ok {
			return nil, kmsErr("NotFoundException", "alias %s is not found", kmsAliasARN(ref))
		}
		ref = id
	}
	key, ok := k.keys[ref]
	if !ok {
		return nil, kmsErr("NotFoundException", "key %s does not exist", kmsKeyARN(ref))
	}
	return key, nil
}

// usableKeyLocked resolves name and fails with DisabledException when the key is disabled.
func (k *KMS) usableKeyLocked(name string, allowAlias bool) (*kmsKey, *kmsError) {
	key, err := k.resolveLocked(name, allowAlias)
	if err != nil {
		return nil, err
	}
	if !key.enabled {
		return nil, kmsErr("DisabledException", "%s is disabled", kmsKeyARN(key.id))
	}
	return key, nil
}

func kmsAEAD(material []byte) cipher.AEAD {
	block, err := aes.NewCipher(material)
	if err != nil {
		panic(fmt.Sprintf("kms test server: AES key: %v", err)) // material is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("kms test server: GCM: %v", err))
	}
	return aead
}

// kmsAAD returns header followed by the canonical encoding of ctx: pairs sorted by key, each key
// and value prefixed by its uint32 length.
func kmsAAD(header []byte, ctx map[string]string) []byte {
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	aad := append([]byte(nil), header...)
	aad = binary.BigEndian.AppendUint32(aad, uint32(len(keys)))
	for _, k := range keys {
		aad = binary.BigEndian.AppendUint32(aad, uint32(len(k)))
		aad = append(aad, k...)
		aad = binary.BigEndian.AppendUint32(aad, uint32(len(ctx[k])))
		aad = append(aad, ctx[k]...)
	}
	return aad
}

// seal encrypts plaintext under the key's newest version and returns the ciphertext blob.
func (key *kmsKey) seal(plaintext []byte, ctx map[string]string) []byte {
	nonce := make([]byte, kmsNonceSize)
	_, _ = rand.Read(nonce)
	return key.sealWithNonce(plaintext, ctx, nonce)
}

func (key *kmsKey) sealWithNonce(plaintext []byte, ctx map[string]string, nonce []byte) []byte {
	version := uint32(len(key.versions) - 1)
	header := append([]byte(nil), kmsBlobMagic...)
	header = append(header, byte(len(key.id)))
	header = append(header, key.id...)
	header = binary.BigEndian.AppendUint32(header, version)
	blob := append(header, nonce...)
	return kmsAEAD(key.versions[version]).Seal(blob, nonce, plaintext, kmsAAD(header, ctx))
}

type kmsBlob struct {
	header  []byte
	keyID   string
	version uint32
	nonce   []byte
	sealed  []byte
}

// kmsParseBlob splits a ciphertext blob, bounding every length before use.
func kmsParseBlob(b []byte) (kmsBlob, bool) {
	if len(b) < len(kmsBlobMagic)+1 || string(b[:len(kmsBlobMagic)]) != string(kmsBlobMagic) {
		return kmsBlob{}, false
	}
	idLen := int(b[len(kmsBlobMagic)])
	off := len(kmsBlobMagic) + 1
	if idLen == 0 || idLen > kmsMaxKeyIDLen || len(b) < off+idLen+4+kmsNonceSize+kmsTagSize {
		return kmsBlob{}, false
	}
	keyID := string(b[off : off+idLen])
	if !kmsKeyIDPattern.MatchString(keyID) {
		return kmsBlob{}, false
	}
	off += idLen
	version := binary.BigEndian.Uint32(b[off:])
	off += 4
	return kmsBlob{
		header:  b[:off],
		keyID:   keyID,
		version: version,
		nonce:   b[off : off+kmsNonceSize],
		sealed:  b[off+kmsNonceSize:],
	}, true
}
