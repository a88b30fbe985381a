package rpc

import (
	"encoding/json"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/satchel-net/satchel/chain"
)

// How chain events travel in ABCI results. Every chain.Event becomes one ABCI
// event of type EventType whose attribute AttrEvent holds the event as JSON
// (not indexed) and whose attribute AttrType holds the event's type (marked
// for indexing, so a node run with a tx indexer can search by it, e.g.
// "satchel.type='BagCreated'"; Satchel's nodes run without one).
const (
	EventType = "satchel"
	AttrEvent = "event"
	AttrType  = "type"
)

// DecodeEvents picks the chain events out of ABCI events, in order, skipping
// events of other types.
func DecodeEvents(evs []abci.Event) ([]chain.Event, error) {
	var out []chain.Event
	for _, ev := range evs {
		if ev.Type != EventType {
			continue
		}
		for _, a := range ev.Attributes {
			if a.Key != AttrEvent {
				continue
			}
			var ce chain.Event
			if err := json.Unmarshal([]byte(a.Value), &ce); err != nil {
				return nil, fmt.Errorf("decode chain event: %w", err)
			}
			out = append(out, ce)
		}
	}
	return out, nil
}

// TxResult converts an ABCI transaction result to the chain's.
func TxResult(r *abci.ExecTxResult) (chain.TxResult, error) {
	evs, err := DecodeEvents(r.Events)
	if err != nil {
		return chain.TxResult{}, err
	}
	return chain.TxResult{Code: r.Code, Log: r.Log, Events: evs}, nil
}
