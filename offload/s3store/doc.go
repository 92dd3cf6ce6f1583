// Package s3store is an offload.Store in an S3 bucket: AWS S3 or a compatible service such as
// MinIO. It sits in its own package so that importing offload does not pull in the AWS SDK.
//
// New takes the narrow Client interface (the seven *s3.Client methods the store calls; pass an
// *s3.Client, or a fake in tests), a bucket and an *Options, nil for the defaults:
//
//	store, err := s3store.New(s3.NewFromConfig(cfg), "payloads", &s3store.Options{
//		SSEKMS:       true,
//		SSEKMSKeyID:  "alias/temporal-payloads",
//		StorageClass: types.StorageClassIntelligentTiering,
//		Tags:         map[string]string{"retention": "30d"},
//	})
//	...
//	kit, err := payloadkit.New(ctx, payloadkit.Options{Offload: &offload.Options{Store: store}})
//
// Objects up to Options.PartSize (DefaultPartSize, 16 MiB) are written with one PutObject; larger
// ones with a multipart upload of about equal parts, at most Options.UploadConcurrency in
// parallel, aborted when any part fails so that no parts are left billed in the bucket.
// PutParts (offload.PartsPutter) writes an object given as byte slices, the codec's framing
// and the payload's own data, without joining them: request bodies and parts are sections of
// the caller's bytes, and the caller's SHA-256 signs a single PutObject so that the AWS SDK does
// not hash the body again. GetInto (offload.SizedGetter) reads an object of the size a claim
// names into one buffer of exactly that size, from twice the part size with ranged GETs in
// parallel; GetIntoHashing (offload.HashingGetter) does the same while it feeds the bytes
// complete from the start of the buffer to the codec's SHA-256, so that verifying a large
// object ends soon after its last byte arrives.
// Every object carries the user metadata payloadkit-namespace, payloadkit-written (RFC 3339
// UTC) and payloadkit-format ("1"), for lifecycle rules and audits; Stat (offload.Stater)
// reports an object's size and LastModified, with which the codec refreshes deduplicated
// objects older than offload.Options.RefreshAge.
// GetBounded refuses, from the Content-Length and without reading the body, an object larger
// than the caller's bound, so that the offload codec and storage driver never read an
// unexpected object whole.
//
// Errors are *offload.Error values naming the operation, the store and the key. A missing object
// matches offload.ErrNotFound; every other failure matches offload.ErrStore, and also
// offload.ErrRetryable when retrying may succeed (network errors, timeouts, throttling, 5xx).
// Exists and Stat use HeadObject, which needs s3:ListBucket permission to tell a missing object (404)
// from a forbidden one (403).
//
// The store passes the conformance suite in offload/storetest; its tests run it on MinIO, found
// through the PAYLOADKIT_S3_* environment variables (see workflowtest.S3).
package s3store
