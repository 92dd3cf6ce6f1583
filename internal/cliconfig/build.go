package cliconfig

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/codecserver"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
)

// Server is the Codec Server handler and the Kits it must close on shutdown.
type Server struct {
	// Handler serves /encode and /decode.
	Handler http.Handler
	kits    []*payloadkit.Kit
}

// Close closes the Kits of every namespace.
func (b *Server) Close() {
	for _, k := range b.kits {
		_ = k.Close()
	}
}

// BuildServer turns cfg into the Codec Server handler. log receives start-up lines; serverLog
// is given to the codecserver (which marks its lines insecure=true itself when Insecure is set).
func BuildServer(ctx context.Context, cfg *Config, log, serverLog *slog.Logger) (*Server, error) {
	b := &Server{}
	namespaces := map[string][]converter.PayloadCodec{}
	names := make([]string, 0, len(cfg.Namespaces))
	for ns := range cfg.Namespaces {
		names = append(names, ns)
	}
	sort.Strings(names)
	for _, ns := range names {
		kit, err := BuildKit(ctx, cfg.Namespaces[ns])
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("namespace %q: %w", ns, err)
		}
		b.kits = append(b.kits, kit)
		namespaces[ns] = kit.Codecs()
		log.Info("namespace configured", "namespace", ns, "stages", kit.Stages())
	}
	auth, err := BuildAuth(ctx, cfg, log)
	if err != nil {
		b.Close()
		return nil, err
	}
	h, err := codecserver.New(codecserver.Config{
		Namespaces:        namespaces,
		DefaultNamespace:  cfg.DefaultNamespace,
		Auth:              auth,
		Insecure:          cfg.Insecure,
		AllowedOrigins:    cfg.AllowedOrigins,
		AllowCredentials:  cfg.AllowCredentials,
		MaxBodyBytes:      cfg.Limits.MaxBodyBytes,
		MaxPayloads:       cfg.Limits.MaxPayloads,
		ClaimDisplayLimit: cfg.Limits.ClaimDisplayLimit,
		MaxDecodedBytes:   cfg.Limits.MaxDecodedBytes,
		MaxResponseBytes:  cfg.Limits.MaxResponseBytes,
		Logger:            serverLog,
	})
	if err != nil {
		b.Close()
		return nil, err
	}
	b.Handler = h
	return b, nil
}

// BuildAuth builds the authenticator of cfg: static tokens, JWTs or both; nil when Insecure.
func BuildAuth(ctx context.Context, cfg *Config, log *slog.Logger) (codecserver.Authenticator, error) {
	var auths []codecserver.Authenticator
	a := cfg.Auth
	if a.StaticTokensFile != "" {
		st, err := LoadStaticTokens(a.StaticTokensFile)
		if err != nil {
			return nil, err
		}
		auths = append(auths, st)
	}
	if a.JWKSURL != "" || a.Issuer != "" || len(a.Audience) > 0 {
		j, err := codecserver.NewJWTAuthenticator(codecserver.JWTConfig{
			JWKSURL:          a.JWKSURL,
			Issuer:           a.Issuer,
			Audience:         a.Audience,
			NamespacesClaim:  a.NamespacesClaim,
			PermissionsClaim: a.PermissionsClaim,
			SubjectClaim:     a.SubjectClaim,
			Leeway:           time.Duration(a.Leeway),

			AllowWildcardNamespaces: a.AllowWildcardNamespaces,
		})
		if err != nil {
			return nil, err
		}
		// Fetch the keys now so a wrong URL shows at start-up; requests retry later if it fails.
		if err := j.Refresh(ctx); err != nil {
			log.Warn("JWKS not reachable at start-up; will retry on requests", "error", err)
		}
		auths = append(auths, j)
	}
	if len(auths) == 0 {
		return nil, nil // Insecure, checked by validate and codecserver.New
	}
	return codecserver.AnyOf(auths...), nil
}

// LoadStaticTokens reads a static tokens file (StaticTokensFile).
func LoadStaticTokens(path string) (codecserver.Authenticator, error) {
	b, err := ReadBounded(path)
	if err != nil {
		return nil, fmt.Errorf("%w: static tokens file: %w", ErrConfig, err)
	}
	var f StaticTokensFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: static tokens file %s: %w", ErrConfig, path, err)
	}
	m := map[string]codecserver.Principal{}
	for i, t := range f.Tokens {
		if _, dup := m[t.Token]; dup {
			return nil, fmt.Errorf("%w: static tokens file %s: token %d (subject %q) is a duplicate", ErrConfig, path, i, t.Subject)
		}
		m[t.Token] = codecserver.Principal{Subject: t.Subject, Namespaces: t.Namespaces, CanDecode: t.Decode, CanEncode: t.Encode}
	}
	auth, err := codecserver.StaticTokens(m)
	if err != nil {
		return nil, fmt.Errorf("static tokens file %s: %w", path, err)
	}
	return auth, nil
}

func awsConfig(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	return awsconfig.LoadDefaultConfig(ctx, opts...)
}

// buildKit builds the Kit of one namespace pipeline.
func BuildKit(ctx context.Context, p Pipeline) (*payloadkit.Kit, error) {
	var opts payloadkit.Options
	if p.Compression != "" {
		opts.Compression = &codec.CompressionOptions{Algorithm: codec.Algorithm(p.Compression)}
	}
	if e := p.Encryption; e != nil {
		var keys codec.KeyProvider
		switch {
		case e.KeyringFile != "":
			r, err := codec.LoadKeyringFile(e.KeyringFile)
			if err != nil {
				return nil, err
			}
			keys = r
		default:
			ac, err := awsConfig(ctx, e.KMSRegion)
			if err != nil {
				return nil, fmt.Errorf("AWS configuration for KMS: %w", err)
			}
			client := kms.NewFromConfig(ac, func(o *kms.Options) {
				if e.KMSEndpoint != "" {
					o.BaseEndpoint = aws.String(e.KMSEndpoint)
				}
			})
			prov, err := awskms.New(client, e.KMSKeyID)
			if err != nil {
				return nil, err
			}
			keys = prov
		}
		opts.Encryption = &codec.EncryptionOptions{Keys: keys}
	}
	if o := p.Offload; o != nil {
		store, err := BuildStore(ctx, o)
		if err != nil {
			return nil, err
		}
		opts.Offload = &offload.Options{Store: store, Prefix: o.Prefix, Threshold: o.Threshold}
	}
	return payloadkit.New(ctx, opts)
}

// BuildStore builds the offload store of o: a directory or an S3 bucket (credentials from the
// AWS default chain).
func BuildStore(ctx context.Context, o *OffloadConfig) (offload.Store, error) {
	if o.Dir != "" {
		return offload.NewFileStore(o.Dir)
	}
	ac, err := awsConfig(ctx, o.S3Region)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration for S3: %w", err)
	}
	client := s3.NewFromConfig(ac, func(so *s3.Options) {
		if o.S3Endpoint != "" {
			so.BaseEndpoint = aws.String(o.S3Endpoint)
		}
		so.UsePathStyle = o.S3PathStyle
	})
	return s3store.New(client, o.S3Bucket, &s3store.Options{Name: o.S3StoreName})
}
