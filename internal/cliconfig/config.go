// Package cliconfig is the one configuration of the payloadkit commands: the Codec Server
// (payloadkit serve, cmd/codec-server) and the commands that decode or inspect payloads
// (payloadkit decode, inspect). It reads a JSON file, environment variables
// (PAYLOADKIT_CODEC_<FLAG>) and flags, flags winning over the environment and the environment
// over the file, and builds the codec pipeline of each namespace and the Codec Server handler.
package cliconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix prefixes the environment variable of every flag: -jwks-url is read from
// PAYLOADKIT_CODEC_JWKS_URL when the flag is not given.
const EnvPrefix = "PAYLOADKIT_CODEC_"

// maxConfigFileSize bounds the config and static tokens files.
const maxConfigFileSize = 1 << 20

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid configuration")

// Config is the codec server configuration, read from a JSON file and overridden by
// environment variables and flags (flags win).
type Config struct {
	// Listen is the TCP address to listen on. Defaults to "127.0.0.1:8081".
	Listen string `json:"listen"`
	// TLS serves HTTPS when both files are set.
	TLS TLSConfig `json:"tls"`
	// AllowedOrigins are the browser origins (the Temporal Web UI) allowed by CORS.
	AllowedOrigins []string `json:"allowed_origins"`
	// AllowCredentials sends Access-Control-Allow-Credentials to allowed origins.
	AllowCredentials bool `json:"allow_credentials"`
	// Insecure serves without authentication (local development only).
	Insecure bool `json:"insecure"`
	// Auth configures JWT and static token authentication (one or both).
	Auth AuthConfig `json:"auth"`
	// Limits bound requests.
	Limits LimitsConfig `json:"limits"`
	// DefaultNamespace serves requests that name no namespace.
	DefaultNamespace string `json:"default_namespace"`
	// ShutdownTimeout bounds the graceful shutdown. Defaults to 15s.
	ShutdownTimeout Duration `json:"shutdown_timeout"`
	// Namespaces maps each namespace to its codec pipeline.
	Namespaces map[string]Pipeline `json:"namespaces"`
}

// TLSConfig names the certificate and key files.
type TLSConfig struct {
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// AuthConfig configures authentication.
type AuthConfig struct {
	JWKSURL          string   `json:"jwks_url"`
	Issuer           string   `json:"issuer"`
	Audience         []string `json:"audience"`
	NamespacesClaim  string   `json:"namespaces_claim"`
	PermissionsClaim string   `json:"permissions_claim"`
	SubjectClaim     string   `json:"subject_claim"`
	Leeway           Duration `json:"leeway"`
	// AllowWildcardNamespaces lets a token's namespaces claim "*" or a permission "*:<role>"
	// grant rights on every namespace. Defaults to false: such grants are ignored.
	AllowWildcardNamespaces bool `json:"allow_wildcard_namespaces"`
	// StaticTokensFile is a JSON file: {"tokens":[{"token":..., "subject":..., "namespaces":[...],
	// "decode":true, "encode":false}]}.
	StaticTokensFile string `json:"static_tokens_file"`
}

// LimitsConfig bounds requests; zero values mean the codecserver defaults.
type LimitsConfig struct {
	MaxBodyBytes      int64 `json:"max_body_bytes"`
	MaxPayloads       int   `json:"max_payloads"`
	ClaimDisplayLimit int64 `json:"claim_display_limit"`
	MaxDecodedBytes   int64 `json:"max_decoded_bytes"`
	MaxResponseBytes  int64 `json:"max_response_bytes"`
}

// Pipeline is the codec chain of one namespace: it must match the workers' Kit options.
type Pipeline struct {
	// Compression is "zstd" (default), "s2", "gzip" or "none". Decoding reads every algorithm.
	Compression string `json:"compression"`
	// Encryption, if set, decrypts (and encrypts) with a static keyring or AWS KMS.
	Encryption *EncryptionConfig `json:"encryption"`
	// Offload, if set, reads (and writes) offloaded payloads.
	Offload *OffloadConfig `json:"offload"`
}

// EncryptionConfig selects the key provider: exactly one of KeyringFile and KMSKeyID.
type EncryptionConfig struct {
	// KeyringFile is a JSON keyring file ({"primary":"id","keys":{"id":"base64key"}}).
	KeyringFile string `json:"keyring_file"`
	// KMSKeyID is an AWS KMS key id, ARN or alias; credentials come from the AWS default chain.
	KMSKeyID string `json:"kms_key_id"`
	// KMSRegion overrides the AWS region.
	KMSRegion string `json:"kms_region"`
	// KMSEndpoint overrides the KMS endpoint URL (for a KMS-compatible service).
	KMSEndpoint string `json:"kms_endpoint"`
}

// OffloadConfig selects the store: exactly one of Dir and S3Bucket.
type OffloadConfig struct {
	Dir         string `json:"dir"`
	S3Bucket    string `json:"s3_bucket"`
	S3Region    string `json:"s3_region"`
	S3Endpoint  string `json:"s3_endpoint"`
	S3PathStyle bool   `json:"s3_path_style"`
	// S3StoreName must match the workers' store name if they set one (default "s3/<bucket>").
	S3StoreName string `json:"s3_store_name"`
	// Prefix must match the workers' offload.Options.Prefix.
	Prefix string `json:"prefix"`
	// Threshold must match the workers' offload.Options.Threshold (used by /encode).
	Threshold int `json:"threshold"`
}

// Duration is a time.Duration written as a Go duration string ("30s") in JSON.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// FlagSet is what Register needs of a flag set. The standard library's *flag.FlagSet and
// pflag's *pflag.FlagSet (cobra) both provide it.
type FlagSet interface {
	StringVar(p *string, name, value, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
	IntVar(p *int, name string, value int, usage string)
	Int64Var(p *int64, name string, value int64, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
	Set(name, value string) error
}

// Scope selects the flags Register adds.
type Scope int

// Flag scopes, combined with |.
const (
	// PipelineScope adds --config, --namespace and the pipeline flags (compression, keys,
	// offload store): what decoding needs.
	PipelineScope Scope = 1 << iota
	// ServerScope adds the Codec Server flags: listen address, TLS, CORS, authentication,
	// limits and shutdown.
	ServerScope
)

// DefaultNamespace is the namespace of commands without ServerScope when --namespace is not
// given, as in the Temporal CLI.
const DefaultNamespace = "default"

// pipelineFlagNames are the flags describing the pipeline given with --namespace.
var pipelineFlagNames = []string{"compression", "keyring-file", "kms-key-id", "kms-region", "kms-endpoint",
	"offload-dir", "s3-bucket", "s3-region", "s3-endpoint", "s3-path-style", "s3-store-name",
	"offload-prefix", "offload-threshold"}

// Flags holds the command line (and environment) settings registered on a flag set.
type Flags struct {
	fs    FlagSet
	scope Scope
	names []string
	given map[string]bool

	config, listen, tlsCert, tlsKey, origins                                     string
	jwksURL, issuer, audience, nsClaim, permClaim, subClaim, staticTokens, defNS string
	namespace, compression, keyringFile, kmsKeyID, kmsRegion, kmsEndpoint        string
	offloadDir, s3Bucket, s3Region, s3Endpoint, s3StoreName, offloadPrefix       string
	allowCredentials, insecure, s3PathStyle, allowWildcard                       bool
	maxBody, claimLimit, maxDecoded, maxResponse                                 int64
	maxPayloads, offloadThreshold                                                int
	leeway, shutdownTimeout                                                      time.Duration
}

// Register adds the flags of scope to fs and returns their values, read by Load.
func Register(fs FlagSet, scope Scope) *Flags {
	v := &Flags{fs: fs, scope: scope, given: map[string]bool{}}
	str := func(p *string, name, usage string) { fs.StringVar(p, name, "", usage); v.names = append(v.names, name) }
	boolean := func(p *bool, name, usage string) { fs.BoolVar(p, name, false, usage); v.names = append(v.names, name) }
	i64 := func(p *int64, name, usage string) { fs.Int64Var(p, name, 0, usage); v.names = append(v.names, name) }
	integer := func(p *int, name, usage string) { fs.IntVar(p, name, 0, usage); v.names = append(v.names, name) }
	dur := func(p *time.Duration, name, usage string) {
		fs.DurationVar(p, name, 0, usage)
		v.names = append(v.names, name)
	}
	str(&v.config, "config", "JSON configuration file (the Codec Server's)")
	if scope&ServerScope != 0 {
		str(&v.listen, "listen", "listen address (default 127.0.0.1:8081)")
		str(&v.tlsCert, "tls-cert", "TLS certificate file (PEM)")
		str(&v.tlsKey, "tls-key", "TLS key file (PEM)")
		str(&v.origins, "origins", "comma-separated browser origins allowed by CORS (the Temporal Web UI)")
		boolean(&v.allowCredentials, "allow-credentials", "send Access-Control-Allow-Credentials: true")
		boolean(&v.insecure, "insecure", "serve without authentication (local development only)")
		str(&v.jwksURL, "jwks-url", "JWKS URL of the token issuer")
		str(&v.issuer, "issuer", "required token issuer (iss)")
		str(&v.audience, "audience", "comma-separated accepted audiences (aud)")
		str(&v.nsClaim, "namespaces-claim", "claim listing namespaces (default \"namespaces\")")
		str(&v.permClaim, "permissions-claim", "claim listing rights (default \"permissions\")")
		str(&v.subClaim, "subject-claim", "claim naming the caller (default \"sub\")")
		dur(&v.leeway, "leeway", "clock skew tolerated on exp, nbf and iat (default 30s)")
		boolean(&v.allowWildcard, "allow-wildcard-namespaces", "let a token's namespaces claim \"*\" or permission \"*:<role>\" grant rights on every namespace")
		str(&v.staticTokens, "static-tokens-file", "JSON file of static bearer tokens")
		i64(&v.maxBody, "max-body-bytes", "largest request body (default 4 MiB)")
		integer(&v.maxPayloads, "max-payloads", "most payloads per request (default 1000)")
		i64(&v.claimLimit, "claim-display-limit", "claim size above which /decode answers a placeholder (default 1 MiB, -1: always fetch)")
		i64(&v.maxDecoded, "max-decoded-bytes", "most decoded bytes per /decode request (default 32 MiB)")
		i64(&v.maxResponse, "max-response-bytes", "largest response body in bytes (default 48 MiB)")
		str(&v.defNS, "default-namespace", "namespace for requests that name none")
		dur(&v.shutdownTimeout, "shutdown-timeout", "graceful shutdown bound (default 15s)")
		str(&v.namespace, "namespace", "comma-separated namespaces served with the pipeline flags below")
	} else {
		str(&v.namespace, "namespace", "Temporal namespace; selects its pipeline in --config, or gets the pipeline flags (default \""+DefaultNamespace+"\")")
	}
	str(&v.compression, "compression", "pipeline: compression algorithm (zstd, s2, gzip, none)")
	str(&v.keyringFile, "keyring-file", "pipeline: static keyring JSON file")
	str(&v.kmsKeyID, "kms-key-id", "pipeline: AWS KMS key id, ARN or alias")
	str(&v.kmsRegion, "kms-region", "pipeline: AWS KMS region")
	str(&v.kmsEndpoint, "kms-endpoint", "pipeline: AWS KMS endpoint URL")
	str(&v.offloadDir, "offload-dir", "pipeline: offload store directory")
	str(&v.s3Bucket, "s3-bucket", "pipeline: offload store S3 bucket")
	str(&v.s3Region, "s3-region", "pipeline: S3 region")
	str(&v.s3Endpoint, "s3-endpoint", "pipeline: S3 endpoint URL (S3-compatible services)")
	boolean(&v.s3PathStyle, "s3-path-style", "pipeline: path-style S3 addressing")
	str(&v.s3StoreName, "s3-store-name", "pipeline: store name recorded in claims (default \"s3/<bucket>\")")
	str(&v.offloadPrefix, "offload-prefix", "pipeline: object key prefix")
	integer(&v.offloadThreshold, "offload-threshold", "pipeline: offload threshold in bytes")
	return v
}

// EnvName is the environment variable of flag name: PAYLOADKIT_CODEC_JWKS_URL for jwks-url.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Load builds the configuration after the flag set was parsed: changed reports the flags given
// on the command line; the flags not given are read from getenv (EnvName), then the file
// (--config) is read and the flags and environment override it. Load does not validate: call
// Config.Validate (Codec Server) or Config.PipelineFor.
func (v *Flags) Load(changed func(name string) bool, getenv func(string) string) (*Config, error) {
	for _, name := range v.names {
		if changed(name) {
			v.given[name] = true
			continue
		}
		if val := getenv(EnvName(name)); val != "" {
			if err := v.fs.Set(name, val); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrConfig, EnvName(name), err)
			}
			v.given[name] = true
		}
	}
	cfg := &Config{}
	if v.config != "" {
		b, err := ReadBounded(v.config)
		if err != nil {
			return nil, fmt.Errorf("%w: config file: %w", ErrConfig, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(cfg); err != nil {
			return nil, fmt.Errorf("%w: config file %s: %w", ErrConfig, v.config, err)
		}
	}
	if err := v.apply(cfg); err != nil {
		return nil, err
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8081"
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = Duration(15 * time.Second)
	}
	return cfg, nil
}

// Namespace is the --namespace value (or environment variable), DefaultNamespace if neither
// is set in a command without ServerScope.
func (v *Flags) Namespace() string {
	if v.namespace == "" && v.scope&ServerScope == 0 {
		return DefaultNamespace
	}
	return v.namespace
}

// NamespaceGiven reports whether --namespace (or its environment variable) was set.
func (v *Flags) NamespaceGiven() bool { return v.given["namespace"] }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// apply overrides cfg with the flags (or environment variables) given.
func (v *Flags) apply(cfg *Config) error {
	g := v.given
	setS := func(name string, dst *string, val string) {
		if g[name] {
			*dst = val
		}
	}
	setS("listen", &cfg.Listen, v.listen)
	setS("tls-cert", &cfg.TLS.CertFile, v.tlsCert)
	setS("tls-key", &cfg.TLS.KeyFile, v.tlsKey)
	if g["origins"] {
		cfg.AllowedOrigins = splitList(v.origins)
	}
	if g["allow-credentials"] {
		cfg.AllowCredentials = v.allowCredentials
	}
	if g["insecure"] {
		cfg.Insecure = v.insecure
	}
	setS("jwks-url", &cfg.Auth.JWKSURL, v.jwksURL)
	setS("issuer", &cfg.Auth.Issuer, v.issuer)
	if g["audience"] {
		cfg.Auth.Audience = splitList(v.audience)
	}
	setS("namespaces-claim", &cfg.Auth.NamespacesClaim, v.nsClaim)
	setS("permissions-claim", &cfg.Auth.PermissionsClaim, v.permClaim)
	setS("subject-claim", &cfg.Auth.SubjectClaim, v.subClaim)
	if g["leeway"] {
		cfg.Auth.Leeway = Duration(v.leeway)
	}
	if g["allow-wildcard-namespaces"] {
		cfg.Auth.AllowWildcardNamespaces = v.allowWildcard
	}
	setS("static-tokens-file", &cfg.Auth.StaticTokensFile, v.staticTokens)
	if g["max-body-bytes"] {
		cfg.Limits.MaxBodyBytes = v.maxBody
	}
	if g["max-payloads"] {
		cfg.Limits.MaxPayloads = v.maxPayloads
	}
	if g["claim-display-limit"] {
		cfg.Limits.ClaimDisplayLimit = v.claimLimit
	}
	if g["max-decoded-bytes"] {
		cfg.Limits.MaxDecodedBytes = v.maxDecoded
	}
	if g["max-response-bytes"] {
		cfg.Limits.MaxResponseBytes = v.maxResponse
	}
	setS("default-namespace", &cfg.DefaultNamespace, v.defNS)
	if g["shutdown-timeout"] {
		cfg.ShutdownTimeout = Duration(v.shutdownTimeout)
	}
	pipelineGiven := false
	for _, name := range pipelineFlagNames {
		pipelineGiven = pipelineGiven || g[name]
	}
	var namespaces []string
	switch {
	case v.scope&ServerScope != 0 && g["namespace"]:
		namespaces = splitList(v.namespace)
	case v.scope&ServerScope != 0 && pipelineGiven:
		return fmt.Errorf("%w: the pipeline flags (--compression, --keyring-file, --kms-key-id, --offload-dir, --s3-bucket, ...) need --namespace", ErrConfig)
	case v.scope&ServerScope == 0 && pipelineGiven:
		// One namespace: its pipeline is the flags'.
		namespaces = []string{v.Namespace()}
	}
	if len(namespaces) == 0 {
		return nil
	}
	p := Pipeline{Compression: v.compression}
	if v.keyringFile != "" || v.kmsKeyID != "" {
		p.Encryption = &EncryptionConfig{KeyringFile: v.keyringFile, KMSKeyID: v.kmsKeyID, KMSRegion: v.kmsRegion, KMSEndpoint: v.kmsEndpoint}
	}
	if v.offloadDir != "" || v.s3Bucket != "" {
		p.Offload = &OffloadConfig{Dir: v.offloadDir, S3Bucket: v.s3Bucket, S3Region: v.s3Region, S3Endpoint: v.s3Endpoint,
			S3PathStyle: v.s3PathStyle, S3StoreName: v.s3StoreName, Prefix: v.offloadPrefix, Threshold: v.offloadThreshold}
	}
	if cfg.Namespaces == nil {
		cfg.Namespaces = map[string]Pipeline{}
	}
	for _, ns := range namespaces {
		cfg.Namespaces[ns] = p
	}
	return nil
}

// PipelineFor returns the validated pipeline of namespace ns. A configuration without any
// namespace gives the default pipeline (zstd decoding, no keys, no store).
func (c *Config) PipelineFor(ns string) (Pipeline, error) {
	if len(c.Namespaces) == 0 {
		return Pipeline{}, nil
	}
	p, ok := c.Namespaces[ns]
	if !ok {
		names := make([]string, 0, len(c.Namespaces))
		for n := range c.Namespaces {
			names = append(names, n)
		}
		sort.Strings(names)
		return Pipeline{}, fmt.Errorf("%w: namespace %q is not configured (configured: %s); use --namespace or the pipeline flags",
			ErrConfig, ns, strings.Join(names, ", "))
	}
	if err := p.validate(ns); err != nil {
		return Pipeline{}, err
	}
	return p, nil
}

// Validate checks a Codec Server configuration as far as it can be checked without building
// anything. codecserver.New and the payloadkit constructors check the rest.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if len(c.Namespaces) == 0 {
		return bad("no namespaces: set \"namespaces\" in the config file or --namespace")
	}
	hasJWT := c.Auth.JWKSURL != "" || c.Auth.Issuer != "" || len(c.Auth.Audience) > 0
	hasAuth := hasJWT || c.Auth.StaticTokensFile != ""
	switch {
	case !hasAuth && !c.Insecure:
		return bad("no authentication configured: set a JWKS URL (--jwks-url, --issuer, --audience) or a static tokens file (--static-tokens-file), or --insecure for local development")
	case hasAuth && c.Insecure:
		return bad("--insecure cannot be combined with authentication settings")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return bad("TLS needs both a certificate and a key file")
	}
	if c.ShutdownTimeout < 0 {
		return bad("shutdown timeout must not be negative")
	}
	for ns, p := range c.Namespaces {
		if err := p.validate(ns); err != nil {
			return err
		}
	}
	return nil
}

// validate checks the pipeline of namespace ns.
func (p Pipeline) validate(ns string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: namespace %q: %s", ErrConfig, ns, fmt.Sprintf(format, args...))
	}
	switch p.Compression {
	case "", "zstd", "s2", "gzip", "none":
	default:
		return bad("compression %q: allowed values are zstd, s2, gzip and none", p.Compression)
	}
	if e := p.Encryption; e != nil && (e.KeyringFile == "") == (e.KMSKeyID == "") {
		return bad("encryption needs exactly one of keyring_file and kms_key_id")
	}
	if o := p.Offload; o != nil {
		if (o.Dir == "") == (o.S3Bucket == "") {
			return bad("offload needs exactly one of dir and s3_bucket")
		}
		if o.Threshold < 0 {
			return bad("offload threshold must not be negative")
		}
	}
	return nil
}

// StaticTokensFile is the JSON form of a static tokens file.
type StaticTokensFile struct {
	Tokens []struct {
		Token      string   `json:"token"`
		Subject    string   `json:"subject"`
		Namespaces []string `json:"namespaces"`
		Decode     bool     `json:"decode"`
		Encode     bool     `json:"encode"`
	} `json:"tokens"`
}

// ReadBounded reads the file at path, at most 1 MiB (configuration, tokens and keyring files).
func ReadBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfigFileSize {
		return nil, fmt.Errorf("%s is larger than %s bytes", path, strconv.Itoa(maxConfigFileSize))
	}
	return b, nil
}
