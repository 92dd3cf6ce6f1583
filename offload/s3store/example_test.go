package s3store_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
)

// A claim-check codec over an S3 bucket. A small in-process HTTP server stands in for S3; in
// production the client is s3.NewFromConfig(cfg).
func Example() {
	fake := newFakeS3Server()
	defer fake.Close()
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(fake.URL),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  aws.AnonymousCredentials{},
	})

	store, err := s3store.New(client, "payloads", nil)
	if err != nil {
		panic(err)
	}
	codec, err := offload.NewCodec(&offload.Options{Store: store, Threshold: 1024})
	if err != nil {
		panic(err)
	}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), codec)

	report := strings.Repeat("line item\n", 1000) // 10 KiB, 11 KiB as JSON
	payload, err := dc.ToPayload(report)
	if err != nil {
		panic(err)
	}
	claim, err := offload.ParseClaim(payload)
	if err != nil {
		panic(err)
	}
	var back string
	if err := dc.FromPayload(payload, &back); err != nil {
		panic(err)
	}
	fmt.Println("store:", claim.Store)
	fmt.Println("object:", fake.Objects()[0][:len("/payloads/payloadkit/_/sha256/")])
	fmt.Println("round trip:", back == report)

	_, err = store.Get(context.Background(), "payloadkit/_/sha256/missing")
	fmt.Println(err)
	// Output:
	// store: s3/payloads
	// object: /payloads/payloadkit/_/sha256/
	// round trip: true
	// offload: get payloadkit/_/sha256/missing [store=s3/payloads]: object not found
}

// Options are validated once, by New: a zero field means its default, a bad value is an error.
func ExampleNew() {
	client := s3.New(s3.Options{Region: "us-east-1"})
	store, err := s3store.New(client, "payloads", &s3store.Options{
		Name:              "archive",
		PartSize:          64 << 20,
		UploadConcurrency: 8,
		Tags:              map[string]string{"retention": "30d"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(store.Name(), store.Bucket(), store.PartSize()>>20, "MiB parts")

	_, err = s3store.New(client, "payloads", &s3store.Options{PartSize: 1 << 20})
	fmt.Println(err)
	// Output:
	// archive payloads 64 MiB parts
	// s3store: PartSize must be at least MinPartSize (5242880 bytes), got 1048576
}

// fakeS3Server answers path-style PutObject, GetObject and HeadObject requests from memory.
type fakeS3Server struct {
	*httptest.Server
	mu      sync.Mutex
	objects map[string][]byte
}

func newFakeS3Server() *fakeS3Server {
	f := &fakeS3Server{objects: map[string][]byte{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *fakeS3Server) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.objects[r.URL.Path] = b
	case http.MethodGet, http.MethodHead:
		b, ok := f.objects[r.URL.Path]
		if !ok {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			if r.Method == http.MethodGet {
				io.WriteString(w, "<Error><Code>NoSuchKey</Code><Message>missing</Message></Error>")
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if r.Method == http.MethodGet {
			w.Write(b)
		}
	default:
		http.Error(w, "not implemented", http.StatusNotImplemented)
	}
}

// Objects returns the paths (/<bucket>/<key>) of the stored objects.
func (f *fakeS3Server) Objects() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.objects))
	for k := range f.objects {
		out = append(out, k)
	}
	return out
}
