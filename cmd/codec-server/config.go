package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix prefixes the environment variable of every flag: -jwks-url is read from
// PAYLOADKIT_CODEC_JWKS_URL when the flag is not given.
const EnvPrefix = "PAYLOADKIT_CODEC_"

// maxConfigFileSize bounds the config and static tokens files.
const maxConfigFileSize = 1 << 20

// errConfig is wrapped by every configuration error.
var errConfig = errors.New("invalid configuration")

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

// flagValues holds the command line (and environment) settings.
type flagValues struct {
	fs *flag.FlagSet

	config, listen, tlsCert, tlsKey, origins                                     string
	jwksURL, issuer, audience, nsClaim, permClaim, subClaim, staticTokens, defNS string
	namespace, compression, keyringFile, kmsKeyID, kmsRegion, kmsEndpoint        string
	offloadDir, s3Bucket, s3Region, s3Endpoint, offloadPrefix                    string
	allowCredentials, insecure, s3PathStyle, allowWildcard                       bool
	maxBody, claimLimit, maxDecoded, maxResponse                                 int64
	maxPayloads, offloadThreshold                                                int
	leeway, shutdownTimeout                                                      time.Duration
	given                                                                        map[string]bool
}

func newFlagSet(out io.Writer) *flagValues {
	v := &flagValues{fs: flag.NewFlagSet("codec-server", flag.ContinueOnError), given: map[string]bool{}}
	fs := v.fs
	fs.SetOutput(out)
	fs.StringVar(&v.config, "config", "", "JSON configuration file")
	fs.StringVar(&v.listen, "listen", "", "listen address (default 127.0.0.1:8081)")
	fs.StringVar(&v.tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	fs.StringVar(&v.tlsKey, "tls-key", "", "TLS key file (PEM)")
	fs.StringVar(&v.origins, "origins", "", "comma-separated browser origins allowed by CORS (the Temporal Web UI)")
	fs.BoolVar(&v.allowCredentials, "allow-credentials", false, "send Access-Control-Allow-Credentials: true")
	fs.BoolVar(&v.insecure, "insecure", false, "serve without authentication (local development only)")
	fs.StringVar(&v.jwksURL, "jwks-url", "", "JWKS URL of the token issuer")
	fs.StringVar(&v.issuer, "issuer", "", "required token issuer (iss)")
	fs.StringVar(&v.audience, "audience", "", "comma-separated accepted audiences (aud)")
	fs.StringVar(&v.nsClaim, "namespaces-claim", "", "claim listing namespaces (default \"namespaces\")")
	fs.StringVar(&v.permClaim, "permissions-claim", "", "claim listing rights (default \"permissions\")")
	fs.StringVar(&v.subClaim, "subject-claim", "", "claim naming the caller (default \"sub\")")
	fs.DurationVar(&v.leeway, "leeway", 0, "clock skew tolerated on exp, nbf and iat (default 30s)")
	fs.BoolVar(&v.allowWildcard, "allow-wildcard-namespaces", false, "let a token's namespaces claim \"*\" or permission \"*:<role>\" grant rights on every namespace")
	fs.StringVar(&v.staticTokens, "static-tokens-file", "", "JSON file of static bearer tokens")
	fs.Int64Var(&v.maxBody, "max-body-bytes", 0, "largest request body (default 4 MiB)")
	fs.IntVar(&v.maxPayloads, "max-payloads", 0, "most payloads per request (default 1000)")
	fs.Int64Var(&v.claimLimit, "claim-display-limit", 0, "claim size above which /decode answers a placeholder (default 1 MiB, -1: always fetch)")
	fs.Int64Var(&v.maxDecoded, "max-decoded-bytes", 0, "most decoded bytes per /decode request (default 32 MiB)")
	fs.Int64Var(&v.maxResponse, "max-response-bytes", 0, "largest response body in bytes (default 48 MiB)")
	fs.StringVar(&v.defNS, "default-namespace", "", "namespace for requests that name none")
	fs.DurationVar(&v.shutdownTimeout, "shutdown-timeout", 0, "graceful shutdown bound (default 15s)")
	fs.StringVar(&v.namespace, "namespace", "", "comma-separated namespaces served with the pipeline flags below")
	fs.StringVar(&v.compression, "compression", "", "pipeline: compression algorithm (zstd, s2, gzip, none)")
	fs.StringVar(&v.keyringFile, "keyring-file", "", "pipeline: static keyring JSON file")
	fs.StringVar(&v.kmsKeyID, "kms-key-id", "", "pipeline: AWS KMS key id, ARN or alias")
	fs.StringVar(&v.kmsRegion, "kms-region", "", "pipeline: AWS KMS region")
	fs.StringVar(&v.kmsEndpoint, "kms-endpoint", "", "pipeline: AWS KMS endpoint URL")
	fs.StringVar(&v.offloadDir, "offload-dir", "", "pipeline: offload store directory")
	fs.StringVar(&v.s3Bucket, "s3-bucket", "", "pipeline: offload store S3 bucket")
	fs.StringVar(&v.s3Region, "s3-region", "", "pipeline: S3 region")
	fs.StringVar(&v.s3Endpoint, "s3-endpoint", "", "pipeline: S3 endpoint URL (S3-compatible services)")
	fs.BoolVar(&v.s3PathStyle, "s3-path-style", false, "pipeline: path-style S3 addressing")
	fs.StringVar(&v.offloadPrefix, "offload-prefix", "", "pipeline: object key prefix")
	fs.IntVar(&v.offloadThreshold, "offload-threshold", 0, "pipeline: offload threshold in bytes")
	return v
}

// envName is the environment variable of flag name.
func envName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parse reads args, then fills flags not given from the environment.
func (v *flagValues) parse(args []string, getenv func(string) string) error {
	if err := v.fs.Parse(args); err != nil {
		return err
	}
	if v.fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errConfig, v.fs.Args())
	}
	v.fs.Visit(func(f *flag.Flag) { v.given[f.Name] = true })
	var err error
	v.fs.VisitAll(func(f *flag.Flag) {
		if v.given[f.Name] || err != nil {
			return
		}
		if val := getenv(envName(f.Name)); val != "" {
			if e := v.fs.Set(f.Name, val); e != nil {
				err = fmt.Errorf("%w: %s: %v", errConfig, envName(f.Name), e)
				return
			}
			v.given[f.Name] = true
		}
	})
	return err
}

// loadConfig builds the configuration: the file (if any), then flags and environment.
func loadConfig(args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	v := newFlagSet(out)
	if err := v.parse(args, getenv); err != nil {
		return nil, err
	}
	cfg := &Config{}
	if v.config != "" {
		b, err := readBounded(v.config)
		if err != nil {
			return nil, fmt.Errorf("%w: config file: %w", errConfig, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(cfg); err != nil {
			return nil, fmt.Errorf("%w: config file %s: %w", errConfig, v.config, err)
		}
	}
	v.apply(cfg)
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8081"
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = Duration(15 * time.Second)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

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
func (v *flagValues) apply(cfg *Config) {
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
	if !g["namespace"] {
		return
	}
	p := Pipeline{Compression: v.compression}
	if v.keyringFile != "" || v.kmsKeyID != "" {
		p.Encryption = &EncryptionConfig{KeyringFile: v.keyringFile, KMSKeyID: v.kmsKeyID, KMSRegion: v.kmsRegion, KMSEndpoint: v.kmsEndpoint}
	}
	if v.offloadDir != "" || v.s3Bucket != "" {
		p.Offload = &OffloadConfig{Dir: v.offloadDir, S3Bucket: v.s3Bucket, S3Region: v.s3Region, S3Endpoint: v.s3Endpoint,
			S3PathStyle: v.s3PathStyle, Prefix: v.offloadPrefix, Threshold: v.offloadThreshold}
	}
	if cfg.Namespaces == nil {
		cfg.Namespaces = map[string]Pipeline{}
	}
	for _, ns := range splitList(v.namespace) {
		cfg.Namespaces[ns] = p
	}
}

// validate checks what can be checked without building anything. codecserver.New and the
// payloadkit constructors check the rest.
func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errConfig, fmt.Sprintf(format, args...))
	}
	if len(c.Namespaces) == 0 {
		return bad("no namespaces: set \"namespaces\" in the config file or -namespace")
	}
	hasJWT := c.Auth.JWKSURL != "" || c.Auth.Issuer != "" || len(c.Auth.Audience) > 0
	hasAuth := hasJWT || c.Auth.StaticTokensFile != ""
	switch {
	case !hasAuth && !c.Insecure:
		return bad("no authentication configured: set a JWKS URL (-jwks-url, -issuer, -audience) or a static tokens file (-static-tokens-file), or -insecure for local development")
	case hasAuth && c.Insecure:
		return bad("-insecure cannot be combined with authentication settings")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return bad("TLS needs both a certificate and a key file")
	}
	if c.ShutdownTimeout < 0 {
		return bad("shutdown timeout must not be negative")
	}
	for ns, p := range c.Namespaces {
		switch p.Compression {
		case "", "zstd", "s2", "gzip", "none":
		default:
			return bad("namespace %q: compression %q: allowed values are zstd, s2, gzip and none", ns, p.Compression)
		}
		if e := p.Encryption; e != nil && (e.KeyringFile == "") == (e.KMSKeyID == "") {
			return bad("namespace %q: encryption needs exactly one of keyring_file and kms_key_id", ns)
		}
		if o := p.Offload; o != nil {
			if (o.Dir == "") == (o.S3Bucket == "") {
				return bad("namespace %q: offload needs exactly one of dir and s3_bucket", ns)
			}
			if o.Threshold < 0 {
				return bad("namespace %q: offload threshold must not be negative", ns)
			}
		}
	}
	return nil
}

// staticTokensFile is the JSON form of a static tokens file.
type staticTokensFile struct {
	Tokens []struct {
		Token      string   `json:"token"`
		Subject    string   `json:"subject"`
		Namespaces []string `json:"namespaces"`
		Decode     bool     `json:"decode"`
		Encode     bool     `json:"encode"`
	} `json:"tokens"`
}

func readBounded(path string) ([]byte, error) {
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
