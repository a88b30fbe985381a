// Package faults is Satchel's fault suite: whole networks in one process
// (testnet) with faults injected, each scenario reporting what it attempted,
// what was acknowledged, what was lost (must be 0), how many corrupted reads
// were served (must be 0) and how long recovery took.
//
// `go test ./faults` (and `make test`) runs the short form of every scenario;
// `make faults` runs the long form (FAULTS_LONG=1: 50+ kills, 10,000 fuzzed
// frames per protocol) and writes the figures to the file FAULTS_REPORT
// names. docs/RELIABILITY.md, "Fault suite figures", holds the latest.
//
// There is no library here: the package is its tests.
package faults
