package node

import (
	"encoding/json"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
)

// How chain events travel in ABCI results: see rpc.EventType.
const (
	EventType = rpc.EventType
	AttrEvent = rpc.AttrEvent
	AttrType  = rpc.AttrType
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

// decodeEvents picks the chain events out of ABCI events (rpc.DecodeEvents).
func decodeEvents(evs []abci.Event) ([]chain.Event, error) { return rpc.DecodeEvents(evs) }
