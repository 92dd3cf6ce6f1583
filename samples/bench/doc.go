// Package bench holds payloadkit's end-to-end benchmarks on one in-process Temporal server:
//
//   - BenchmarkThroughput: workflows passing a realistic JSON document through three activities,
//     with the SDK's default converter, the SDK's zlib codec, a Kit with zero Options and a Kit
//     with compression, encryption and telemetry, measured in interleaved rounds and reported as
//     ratios to the default converter.
//
//   - BenchmarkStoredBytes: the stored bytes per payload of the SDK's plain converter,
//     compression alone, and envelope formats v1 and v2 (static keyring and KMS-sized data keys)
//     over a weighted mix of payload sizes.
//
//   - BenchmarkQuickstartHistory: the history size of the quickstart's workflow under v1 and v2.
//
//     cd samples && go test -run '^$' -bench Throughput -benchtime 1x ./bench
//     cd samples && GOMAXPROCS=1 go test -run '^$' -bench Throughput -benchtime 1x ./bench
//     cd samples && go test -run '^$' -bench 'StoredBytes|QuickstartHistory' -benchtime 1x ./bench
//
// `make bench` runs them (the throughput benchmark both ways) and adds their figures to
// docs/BENCHMARKS.md.
package bench
