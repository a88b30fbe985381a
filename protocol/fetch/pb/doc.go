// Package pb holds the protobuf messages of /satchel/fetch/1.0.0, generated
// from fetch.proto by `make proto`. docs/PROTOCOL.md describes the exchange.
package pb
