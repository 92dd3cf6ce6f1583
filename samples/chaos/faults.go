package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/samples/internal/history"
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func pow(x, y float64) float64 { return math.Pow(x, y) }

func (f *fleet) snapshot() []*workerProc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*workerProc(nil), f.procs...)
}

// firstResultClaim returns the claim of the result of w's first activity, once it completed.
func (e *env) firstResultClaim(ctx context.Context, w *wf) (offload.Claim, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		runID, _, _, _, _, _, _ := w.snapshot()
		if runID != "" {
			events, err := history.Events(ctx, e.client, w.spec.ID, runID)
			if err == nil {
				for _, ev := range events {
					if ev.GetEventType() != enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED {
						continue
					}
					ps := ev.GetActivityTaskCompletedEventAttributes().GetResult().GetPayloads()
					if len(ps) != 1 || !offload.IsClaim(ps[0]) {
						return offload.Claim{}, fmt.Errorf("%s: the first result is not a claim", w.spec.ID)
					}
					return offload.ParseClaim(ps[0])
				}
			}
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return offload.Claim{}, err
		}
	}
	return offload.Claim{}, fmt.Errorf("%s: first activity not completed after 3 minutes", w.spec.ID)
}

// faultCorrupt flips one byte of the object holding the victim's first result, then lets the
// victim and the control workflow (same shape, object untouched) read their results.
func (e *env) faultCorrupt(ctx context.Context) error {
	e.fleet.setPhase("corrupt")
	claim, err := e.firstResultClaim(ctx, e.victim)
	if err != nil {
		return err
	}
	if _, err := e.firstResultClaim(ctx, e.control); err != nil {
		return err
	}
	s3c, bucket := e.minio.Client(), e.minio.Bucket()
	obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(claim.Key)})
	if err != nil {
		return fmt.Errorf("reading object %s: %w", claim.Key, err)
	}
	data, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil {
		return fmt.Errorf("reading object %s: %w", claim.Key, err)
	}
	data[len(data)/2] ^= 0x40
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(claim.Key), Body: bytes.NewReader(data)}); err != nil {
		return fmt.Errorf("writing corrupted object %s: %w", claim.Key, err)
	}
	logf("corrupted object %s (%d bytes)", claim.Key, len(data))
	for _, w := range []*wf{e.victim, e.control} {
		if err := e.client.SignalWorkflow(ctx, w.spec.ID, "", signalName, nil); err != nil {
			return fmt.Errorf("signalling %s: %w", w.spec.ID, err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		_, vd, _, _, _, _, _ := e.victim.snapshot()
		_, cd, _, _, _, _, _ := e.control.snapshot()
		if vd && cd {
			break
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	_, vDone, vFailed, _, vFailure, _, _ := e.victim.snapshot()
	_, cDone, cFailed, cResult, _, _, _ := e.control.snapshot()
	named := strings.Contains(vFailure, claim.Key) && strings.Contains(vFailure, "integrity")
	observed := fmt.Sprintf("victim failed=%t, error names the key=%t; control completed=%t, digest right=%t",
		vDone && vFailed, named, cDone && !cFailed, cResult == e.control.want)
	e.record(faultResult{
		Fault:    "stored object corrupted",
		Injected: "one byte flipped in the object of a workflow's 1 MiB activity result",
		Expected: "that workflow fails with an integrity error naming the key; nothing else fails",
		Observed: observed + " (other workflows: see the totals)",
		OK:       vDone && vFailed && named && cDone && !cFailed && cResult == e.control.want,
	})
	return nil
}

// faultKill SIGKILLs worker 1 while it runs activities, then restarts it.
func (e *env) faultKill(ctx context.Context) error {
	e.fleet.setPhase("kill")
	deadline := time.Now().Add(30 * time.Second)
	w := e.fleet.get(0)
	for w != nil && w.activities() == 0 && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	running := 0
	if w != nil {
		running = w.activities()
	}
	e.fleet.stop(0, syscall.SIGKILL)
	err := sleepCtx(ctx, 3*time.Second)
	if err == nil {
		_, err = e.fleet.start(0)
	}
	e.record(faultResult{
		Fault:    "worker SIGKILLed mid-activity",
		Injected: "worker 1 killed with SIGKILL, restarted 3s later",
		Expected: "its activities time out (heartbeat) and are retried on the fleet",
		Observed: fmt.Sprintf("%d activities running at the kill", running),
		OK:       running > 0, // the heartbeat-timeout retries are checked in verify
	})
	return err
}

// faultRotate points the primary alias at a new key while workflows are in flight.
func (e *env) faultRotate(ctx context.Context) error {
	e.fleet.setPhase("rotate")
	e.kms.SetAlias(primaryAlias, e.keyB)
	e.proxy.rotated.Store(true)
	rotatedAt := time.Now()
	logf("primary key rotated: %s now names the second key", primaryAlias)
	deadline := rotatedAt.Add(cacheMaxAge + 30*time.Second)
	for e.proxy.answers("after", "GenerateDataKey", e.keyB) == 0 && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return err
	}
	newKeys := e.proxy.answers("after", "GenerateDataKey", e.keyB)
	oldAfter := e.proxy.answers("after", "GenerateDataKey", e.keyA)
	oldDecrypts := e.proxy.answers("after", "Decrypt", e.keyA)
	e.record(faultResult{
		Fault:    "primary key rotated in flight",
		Injected: "the primary key alias re-pointed from key A to key B",
		Expected: "new data keys come from key B only; payloads under key A keep decrypting",
		Observed: fmt.Sprintf("after rotation: %d data keys from B, %d from A; %d data keys under A decrypted", newKeys, oldAfter, oldDecrypts),
		OK:       newKeys > 0 && oldAfter == 0,
	})
	return nil
}

// codecCounts counts Codec Server answers.
type codecCounts struct {
	mu         sync.Mutex
	byStatus   map[int]int
	unexpected int
	requests   int
}

// faultCodecLoad runs concurrent Codec Server clients decoding the fleet's histories: 70% with
// the namespace's token, 15% with an invalid token, 15% with another namespace's token.
func (e *env) faultCodecLoad(ctx context.Context) (err error) {
	e.fleet.setPhase("codec-load")
	var (
		cacheMu sync.Mutex
		bodies  = map[string][]byte{}
	)
	body := func(ctx context.Context, w *wf) ([]byte, error) {
		cacheMu.Lock()
		b, ok := bodies[w.spec.ID]
		cacheMu.Unlock()
		if ok {
			return b, nil
		}
		runID, _, _, _, _, _, _ := w.snapshot()
		ps, err := history.Payloads(ctx, e.client, w.spec.ID, runID)
		if err != nil {
			return nil, err
		}
		var in commonpb.Payloads
		for _, p := range ps {
			if len(in.Payloads) < 16 {
				in.Payloads = append(in.Payloads, p.Payload)
			}
		}
		b, err = protojson.Marshal(&in)
		if err != nil {
			return nil, fmt.Errorf("marshalling payloads: %w", err)
		}
		cacheMu.Lock()
		bodies[w.spec.ID] = b
		cacheMu.Unlock()
		return b, nil
	}
	var startedWFs []*wf
	for _, w := range e.wfs {
		if runID, _, _, _, _, _, _ := w.snapshot(); runID != "" {
			startedWFs = append(startedWFs, w)
		}
	}
	if len(startedWFs) == 0 {
		return errors.New("codec load: no workflow started yet")
	}
	cc := &codecCounts{byStatus: map[int]int{}}
	e.codecCounts = cc
	loadCtx, cancel := context.WithTimeout(ctx, e.p.CodecLoad)
	defer cancel()
	httpClient := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for range e.p.CodecClients {
		wg.Go(func() {
			for loadCtx.Err() == nil {
				w := startedWFs[mrand.IntN(len(startedWFs))]
				b, err := body(loadCtx, w)
				if err != nil {
					_ = sleepCtx(loadCtx, 100*time.Millisecond)
					continue
				}
				token, want := e.tokens["valid"], http.StatusOK
				switch x := mrand.Float64(); {
				case x < 0.15:
					token, want = "chaos-invalid-"+randHex(16), http.StatusUnauthorized
				case x < 0.30:
					token, want = e.tokens["other"], http.StatusForbidden
				}
				req, err := http.NewRequestWithContext(loadCtx, http.MethodPost, e.codec.URL+"/decode", bytes.NewReader(b))
				if err != nil {
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Namespace", e.ns)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := httpClient.Do(req)
				if err != nil {
					continue // the load window ended
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				cc.mu.Lock()
				cc.requests++
				cc.byStatus[resp.StatusCode]++
				if resp.StatusCode != want {
					cc.unexpected++
				}
				cc.mu.Unlock()
			}
		})
	}
	wg.Wait()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e.record(faultResult{
		Fault:    "Codec Server load",
		Injected: fmt.Sprintf("%d concurrent clients for %s decoding the fleet's histories, 15%% invalid tokens, 15%% another namespace's token", e.p.CodecClients, e.p.CodecLoad),
		Expected: "valid token 200, invalid 401, other namespace 403; nothing else",
		Observed: fmt.Sprintf("%d requests: %d 2xx, %d 401, %d 403, %d unexpected", cc.requests, cc.byStatus[200], cc.byStatus[401], cc.byStatus[403], cc.unexpected),
		OK:       cc.requests > 0 && cc.unexpected == 0,
	})
	return nil
}
