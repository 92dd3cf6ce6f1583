package codecserver

import (
	"go.temporal.io/sdk/converter"
)

// CodecSource is anything holding a codec chain in converter.NewCodecDataConverter order, such
// as *payloadkit.Kit.
type CodecSource interface {
	Codecs() []converter.PayloadCodec
}

// FromKit maps each of namespaces to the codecs of kit (a *payloadkit.Kit), for Config.Namespaces:
//
//	h, err := codecserver.New(codecserver.Config{
//		Namespaces: codecserver.FromKit(kit, "orders", "billing"),
//		Auth:       auth,
//	})
//
// Merge the maps of several Kits (maps.Copy) when namespaces use different keys or stores.
func FromKit(kit CodecSource, namespaces ...string) map[string][]converter.PayloadCodec {
	m := make(map[string][]converter.PayloadCodec, len(namespaces))
	for _, ns := range namespaces {
		m[ns] = kit.Codecs()
	}
	return m
}
