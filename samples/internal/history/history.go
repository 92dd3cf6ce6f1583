// Package history reads a workflow's history from a Temporal server and collects every payload it
// stores, as the server sees them (encoded), for the quickstart's report and the end-to-end tests.
package history

import (
	"context"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Payload is one payload stored in a history event.
type Payload struct {
	EventID   int64
	EventType enumspb.EventType
	// Field is the proto field path of the payload inside the event's attributes.
	Field   string
	Payload *commonpb.Payload
}

// Size is the payload's marshalled size in bytes, as stored by the server.
func (p Payload) Size() int { return proto.Size(p.Payload) }

// Encoding is the payload's encoding metadata.
func (p Payload) Encoding() string { return string(p.Payload.GetMetadata()["encoding"]) }

// Events returns the workflow's history events.
func Events(ctx context.Context, c client.Client, workflowID, runID string) ([]*historypb.HistoryEvent, error) {
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("reading history of %s: %w", workflowID, err)
		}
		events = append(events, ev)
	}
	return events, nil
}

// Payloads returns every payload stored in the workflow's history, in event order.
func Payloads(ctx context.Context, c client.Client, workflowID, runID string) ([]Payload, error) {
	events, err := Events(ctx, c, workflowID, runID)
	if err != nil {
		return nil, err
	}
	return FromEvents(events), nil
}

// FromEvents collects every payload held in events.
func FromEvents(events []*historypb.HistoryEvent) []Payload {
	var out []Payload
	for _, ev := range events {
		walk(ev.ProtoReflect(), "", func(path string, p *commonpb.Payload) {
			out = append(out, Payload{EventID: ev.GetEventId(), EventType: ev.GetEventType(), Field: path, Payload: p})
		})
	}
	return out
}

var payloadName = (&commonpb.Payload{}).ProtoReflect().Descriptor().FullName()

func walk(m protoreflect.Message, path string, visit func(string, *commonpb.Payload)) {
	if m.Descriptor().FullName() == payloadName {
		if p, ok := m.Interface().(*commonpb.Payload); ok {
			visit(path, p)
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := path + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), fmt.Sprintf("%s[%d]", name, i), visit)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				walk(mv.Message(), fmt.Sprintf("%s[%v]", name, k.Interface()), visit)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			walk(v.Message(), name, visit)
		}
		return true
	})
}
