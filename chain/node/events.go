package node

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

// encodeEvents turns chain events into ABCI events.
func encodeEvents(evs []chain.Event) ([]abci.Event, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	out := make([]abci.Event, 0, len(evs))
	for _, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", ev.Type, err)
		}
		out = append(out, abci.Event{
			Type: EventType,
			Attributes: []abci.EventAttribute{
				{Key: AttrType, Value: ev.Type, Index: true},
				{Key: AttrEvent, Value: string(b), Index: false},
			},
		})
	}
	return out, nil
}

// decodeEvents picks the chain events out of ABCI events, in order, skipping
// events of other types.
func decodeEvents(evs []abci.Event) ([]chain.Event, error) {
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

// txResult converts an ABCI transaction result to the chain's.
func txResult(r *abci.ExecTxResult) (chain.TxResult, error) {
	evs, err := decodeEvents(r.Events)
	if err != nil {
		return chain.TxResult{}, err
	}
	return chain.TxResult{Code: r.Code, Log: r.Log, Events: evs}, nil
}
