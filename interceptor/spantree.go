package interceptor

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// FormatSpanTree renders spans as an indented tree, one span a line: name, duration, and the
// payloadkit sizes recorded on it (codec bytes in -> out, then each stage of a codec span in the
// order it ran with its duration and output size, input and result sizes). Children follow
// their parent ordered by start time; spans whose parent is not in spans are roots.
//
//	StartWorkflow:Greet 2ms input=1.2KiB
//	├─ payloadkit.encode 140µs 64.0KiB -> 1.3KiB (compression 120µs -> 1.2KiB, encryption 15µs -> 1.3KiB)
//	└─ RunWorkflow:Greet 1ms
func FormatSpanTree(spans []sdktrace.ReadOnlySpan) string {
	ids := make(map[trace.SpanID]bool, len(spans))
	for _, s := range spans {
		ids[s.SpanContext().SpanID()] = true
	}
	children := make(map[trace.SpanID][]sdktrace.ReadOnlySpan)
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if p := s.Parent(); p.IsValid() && ids[p.SpanID()] {
			children[p.SpanID()] = append(children[p.SpanID()], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(list []sdktrace.ReadOnlySpan) {
		sort.SliceStable(list, func(i, j int) bool {
			if !list[i].StartTime().Equal(list[j].StartTime()) {
				return list[i].StartTime().Before(list[j].StartTime())
			}
			return list[i].Name() < list[j].Name()
		})
	}
	byStart(roots)
	var b strings.Builder
	var walk func(s sdktrace.ReadOnlySpan, prefix, branch string)
	walk = func(s sdktrace.ReadOnlySpan, prefix, branch string) {
		b.WriteString(prefix)
		b.WriteString(branch)
		b.WriteString(spanLine(s))
		b.WriteByte('\n')
		kids := children[s.SpanContext().SpanID()]
		byStart(kids)
		next := prefix
		switch branch {
		case "├─ ":
			next += "│  "
		case "└─ ":
			next += "   "
		}
		for i, k := range kids {
			if i == len(kids)-1 {
				walk(k, next, "└─ ")
			} else {
				walk(k, next, "├─ ")
			}
		}
	}
	for _, r := range roots {
		walk(r, "", "")
	}
	return b.String()
}

func spanLine(s sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	b.WriteString(s.Name())
	if d := s.EndTime().Sub(s.StartTime()); d >= 0 && !s.EndTime().IsZero() {
		b.WriteByte(' ')
		b.WriteString(formatDuration(d))
	}
	attrs := make(map[attribute.Key]attribute.Value, len(s.Attributes()))
	for _, kv := range s.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	in, hasIn := attrs[AttrBytesIn]
	out, hasOut := attrs[AttrBytesOut]
	switch {
	case hasIn && hasOut:
		fmt.Fprintf(&b, " %s -> %s", formatBytes(in.AsInt64()), formatBytes(out.AsInt64()))
	case hasIn:
		fmt.Fprintf(&b, " %s -> error", formatBytes(in.AsInt64()))
	}
	if stages := stageSummary(s.Attributes(), attrs); stages != "" {
		fmt.Fprintf(&b, " (%s)", stages)
	}
	if v, ok := attrs[AttrInputBytes]; ok {
		fmt.Fprintf(&b, " input=%s", formatBytes(v.AsInt64()))
	}
	if v, ok := attrs[AttrResultBytes]; ok {
		fmt.Fprintf(&b, " result=%s", formatBytes(v.AsInt64()))
	}
	for _, e := range s.Events() {
		if e.Name == EventLargePayload {
			b.WriteString(" [large payload]")
			break
		}
	}
	return b.String()
}

// stageSummary lists the stages of a codec span in the order their attributes were set (the
// order they ran): "compression 120µs -> 1.2KiB, encryption 15µs -> error".
func stageSummary(list []attribute.KeyValue, attrs map[attribute.Key]attribute.Value) string {
	var parts []string
	for _, kv := range list {
		k := string(kv.Key)
		if !strings.HasPrefix(k, "payloadkit.") || !strings.HasSuffix(k, stageDurationSuffix) {
			continue
		}
		stage := strings.TrimSuffix(strings.TrimPrefix(k, "payloadkit."), stageDurationSuffix)
		d := time.Duration(kv.Value.AsFloat64() * float64(time.Millisecond))
		out := "error"
		if v, ok := attrs[AttrStageBytesOut(stage)]; ok {
			out = formatBytes(v.AsInt64())
		}
		parts = append(parts, fmt.Sprintf("%s %s -> %s", stage, formatDuration(d), out))
	}
	return strings.Join(parts, ", ")
}

func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%dB", n)
	}
}
