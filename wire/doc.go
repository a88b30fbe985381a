// Package wire holds the protobuf messages of Satchel's stream protocols
// (/satchel/store/1.0.0 and /satchel/fetch/1.0.0), generated from the .proto
// files beside this file by `make proto`. docs/PROTOCOL.md describes the
// exchanges; the p2p package frames the messages (uvarint length prefix).
package wire
