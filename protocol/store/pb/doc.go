// Package pb holds the protobuf messages of /satchel/store/1.0.0, generated
// from store.proto by `make proto`. docs/PROTOCOL.md describes the exchange
// and the signed receipts.
package pb
