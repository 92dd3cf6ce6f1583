// Package codecserver is a Temporal Codec Server: an http.Handler that encodes and decodes payloads
// for the Temporal Web UI and CLI, with authentication, CORS, namespace isolation and limits.
//
// # Protocol
//
// The handler speaks the protocol of the Temporal SDK's converter.NewRemotePayloadCodec and of the
// Web UI: POST /encode and POST /decode with a JSON body {"payloads": [...]} (the protobuf JSON
// form of temporal.api.common.v1.Payloads), answered in the same form. The namespace comes from
// the X-Namespace header or a path prefix (/{namespace}/decode); codecs implementing
// converter.PayloadCodecWithSerializationContext receive converter.WorkflowSerializationContext
// with that namespace, so encryption contexts match what workers wrote. An unknown namespace is
// answered 404; there is no fallback to another namespace's codecs. GET /healthz answers "ok".
//
// # Authentication
//
// Config.Auth authenticates every /encode and /decode request (CORS preflights and /healthz
// need none). NewJWTAuthenticator verifies bearer JWTs against a JWKS (RS*, PS*, ES*, EdDSA; never
// "none" or HS*), checking issuer, audience, exp and nbf, and maps claims to namespaces and
// rights. StaticTokens accepts fixed bearer tokens; AnyOf combines authenticators. Invalid or
// missing credentials are answered 401; a valid caller without the namespace or right, 403.
// New refuses a Config without Auth unless Insecure is set.
//
// # Audit
//
// Each request produces one slog line ("codec request") with the subject, namespace, endpoint,
// payload count, bytes in and out, duration, status and outcome. Payload contents, tokens and
// keys are never logged.
//
// # Offloaded payloads
//
// Claim-check payloads whose claim-size exceeds Config.ClaimDisplayLimit are not fetched by
// /decode: a small json/plain placeholder (see Placeholder) naming the size and object key is
// returned in their place, so the Web UI stays responsive on histories with large payloads.
package codecserver
