package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/pflag"

	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
)

// storeFlags select the offload store, with the names and meanings of cmd/codec-server's flags.
type storeFlags struct {
	dir, bucket, region, endpoint, storeName string
	pathStyle                                bool
}

// register adds the S3 flags, and --offload-dir when withDir.
func (f *storeFlags) register(fs *pflag.FlagSet, withDir bool) {
	if withDir {
		fs.StringVar(&f.dir, "offload-dir", "", "offload store directory (file store)")
	}
	fs.StringVar(&f.bucket, "s3-bucket", "", "offload store S3 bucket")
	fs.StringVar(&f.region, "s3-region", "", "S3 region (default: from the AWS environment)")
	fs.StringVar(&f.endpoint, "s3-endpoint", "", "S3 endpoint URL (S3-compatible services)")
	fs.BoolVar(&f.pathStyle, "s3-path-style", false, "path-style S3 addressing")
	fs.StringVar(&f.storeName, "s3-store-name", "", "store name recorded in claims (default \"s3/<bucket>\")")
}

// s3Client returns the S3 client of the flags; credentials come from the AWS default chain.
func (f *storeFlags) s3Client(ctx context.Context) (*s3.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if f.region != "" {
		opts = append(opts, awsconfig.WithRegion(f.region))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, usageErrorf("AWS configuration for S3: %w", err)
	}
	if ac.Region == "" {
		return nil, usageErrorf("no AWS region: set --s3-region or AWS_REGION")
	}
	return s3.NewFromConfig(ac, func(so *s3.Options) {
		if f.endpoint != "" {
			so.BaseEndpoint = aws.String(f.endpoint)
		}
		so.UsePathStyle = f.pathStyle
	}), nil
}

// store builds the store of the flags: exactly one of --offload-dir and --s3-bucket.
func (f *storeFlags) store(ctx context.Context) (offload.Store, error) {
	switch {
	case (f.dir == "") == (f.bucket == ""):
		return nil, usageErrorf("select the store with exactly one of --offload-dir and --s3-bucket")
	case f.dir != "" && (f.region != "" || f.endpoint != "" || f.storeName != "" || f.pathStyle):
		return nil, usageErrorf("--s3-* flags apply to --s3-bucket, not --offload-dir")
	case f.dir != "":
		// NewFileStore creates a missing directory; a mistyped one must not read as "all missing".
		if st, err := os.Stat(f.dir); err != nil || !st.IsDir() {
			return nil, usageErrorf("--offload-dir %s is not an existing directory", f.dir)
		}
		s, err := offload.NewFileStore(f.dir)
		if err != nil {
			return nil, usageErrorf("--offload-dir: %w", err)
		}
		return s, nil
	}
	client, err := f.s3Client(ctx)
	if err != nil {
		return nil, err
	}
	s, err := s3store.New(client, f.bucket, &s3store.Options{Name: f.storeName})
	if err != nil {
		return nil, usageErrorf("S3 store: %w", err)
	}
	return s, nil
}

// describe names the store for messages, without credentials.
func (f *storeFlags) describe(s offload.Store) string {
	if f.dir != "" {
		return fmt.Sprintf("%s (directory %s)", s.Name(), f.dir)
	}
	return fmt.Sprintf("%s (bucket %s)", s.Name(), f.bucket)
}
