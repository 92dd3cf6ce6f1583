// Package offload is payloadkit's claim-check stage: payloads larger than a threshold are stored
// in a Store (S3, a local directory, or memory) and replaced in Temporal history by a small claim
// that records the store, object key, size and SHA-256 of the stored bytes.
//
// # Stores
//
// NewFileStore writes atomically to a local directory shared by the workers of one machine;
// NewMemoryStore keeps objects in memory for tests. The S3 store lives in its own package,
// offload/s3store, so that importing offload does not pull in the AWS SDK: s3store.New writes to
// an S3 bucket through a narrow client interface (*s3.Client implements it), with multipart
// uploads, optional SSE-KMS, storage class and object tags. Every store passes the conformance
// suite in offload/storetest; a Store of your own can run it too.
//
// # Options
//
// Constructors take an options struct (Options, StorageDriverOptions, s3store.Options) whose
// fields each say "Required." or "Defaults to …"; the zero value of a field means its default,
// and the constructor rejects invalid values (such as negative sizes) with an error naming the
// field, instead of clamping them.
//
// # Errors
//
// Every error is an *Error naming the operation, the store and the object key, and matches one of
// ErrNotFound, ErrIntegrity, ErrTooLarge or ErrStore with errors.Is, plus ErrRetryable for
// failures that may succeed when retried (network errors, timeouts, throttling, 5xx).
//
// # The codec (ModeCodec, the default)
//
// NewCodec returns a *Codec, a converter.PayloadCodec that runs last on the way out (after
// compression and encryption, so the store only ever sees what Temporal would have seen). A
// payload whose marshalled size is above Options.Threshold is marshalled deterministically and
// stored under
//
//	<Prefix>/<namespace>/sha256/<hex SHA-256 of the stored bytes>
//
// The namespace comes from the SDK's serialization context (workflow and activity contexts); when
// there is none (a DataConverter used outside the SDK's context-aware paths, a Codec Server, Nexus
// payloads) it is UnknownNamespace, "_". Keys are content addressed: the codec checks Exists first,
// so workflow task retries and repeated values cost no upload. The payload is replaced by a claim
// (encoding "binary/claim-check", see EncodingClaimCheck for the exact format, ClaimVersion 1).
// Decode verifies the claim, bounds the claimed size by MaxPayloadSize before any fetch, then
// checks the fetched object's size and SHA-256 before unmarshalling it.
//
// Store calls are bounded by Options.Timeout and run at most Options.Concurrency at a time per
// batch. They run inside workflow task processing, so a Kit with a remote store (one whose Remote
// method returns true, as s3store.Store's does) turns off the SDK's deadlock detector around the
// DataConverter.
//
// The codec sees only payload bytes: it works everywhere a DataConverter does, including the
// SDK's testsuite, clients, and a Codec Server (which can then show offloaded payloads in the Web
// UI, provided it can reach the store).
//
// # The SDK's external storage (ModeExternalStorage)
//
// NewStorageDriver adapts a Store to the Temporal SDK's experimental converter.StorageDriver and
// NewExternalStorage wraps it in a converter.ExternalStorage. Object keys follow the layout of the
// Temporal SDKs' S3 storage drivers (see DriverKey) and claim data uses their field names (bucket,
// key, hash_algorithm, hash_value, plus an optional size), so objects written through an s3store.Store
// are laid out like those of the SDK's own S3 driver. Each store call runs inside the SDK's
// limiter permit, so ExternalStorage.Concurrency applies.
//
// Trade-offs against the codec: the SDK offloads at the gRPC layer, after the DataConverter and
// its codecs, on workflow activations and completions as a whole; keys carry the workflow type, id
// and run id, which makes per-workflow cleanup and auditing easy. But it is experimental, it
// does not run in the SDK's testsuite (a test environment never calls the driver), a Codec Server
// never sees the stored payloads (the Web UI shows the SDK's reference instead), and the
// SDK compares sizes with ">= PayloadSizeThreshold" where the codec keeps payloads of exactly
// Threshold bytes inline.
package offload
