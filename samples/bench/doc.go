// Package bench holds payloadkit's end-to-end throughput benchmark: workflows passing a realistic
// JSON document through three activities on one in-process Temporal server, with the SDK's
// default converter, the SDK's zlib codec, a Kit with zero Options and a Kit with compression,
// encryption and telemetry, measured in interleaved rounds and reported as ratios to the default
// converter.
//
//	cd samples && go test -run '^$' -bench Throughput -benchtime 1x ./bench
//	cd samples && GOMAXPROCS=1 go test -run '^$' -bench Throughput -benchtime 1x ./bench
//
// `make bench` runs it both ways and adds its ratios to docs/BENCHMARKS.md.
package bench
