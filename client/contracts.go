package client

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/topics"
)

// Defaults of ContractNeeds.
const (
	// DefaultContractDuration is how long a put asks providers to store.
	DefaultContractDuration = 30 * 24 * time.Hour
	// DefaultContractWindow is how long a put collects offers.
	DefaultContractWindow = 2 * time.Second
)

// ContractNeeds are what a put asks of providers in its contract proposal.
// The zero value asks for DefaultContractDuration at high availability and
// high speed, collecting offers for DefaultContractWindow.
type ContractNeeds struct {
	Duration     time.Duration
	Availability topics.Descriptor
	Speed        topics.Descriptor
	Window       time.Duration
	// Negotiated, when set, is called with the negotiation's outcome (nil
	// and the error when the proposal could not be made or published).
	Negotiated func(*contracts.Negotiation, error)
}

// WithContracts makes a put of a file negotiate storage contracts before it
// pushes: it publishes a proposal for the file's size and needs on the
// matching contract topic, collects offers, consigns with the best N
// providers (N the put's redundancy) and pushes to them first; the other
// providers of the bag remain replacements as before. Only the consigned
// providers take chunks before the object is registered, each under its
// contract's upload session; the others, and every provider when no offer
// comes, get the chunks once the object is registered, in object mode with
// proofs (the chain alone authorises those). A put whose size is not known
// up front (Upload) is spooled to a file first.
func WithContracts(r *contracts.Renter, needs ContractNeeds) PutOption {
	return putOption(func(o *putOptions) {
		o.contracts = &contractPut{renter: r, needs: needs}
	})
}

type contractPut struct {
	renter *contracts.Renter
	needs  ContractNeeds
}

// negotiate runs the contract negotiation of a put of size bytes and
// returns live with the consigned providers first, best first, and the
// contracts consigned.
func (c *Client) negotiate(ctx context.Context, cp *contractPut, bag chain.BagID, size int64, chunkSize, want int, live []candidate) ([]candidate, []contracts.Consigned) {
	if size <= 0 {
		c.log.Debug("no contract negotiation for an upload of unknown or zero size; using the chain's providers", "bag", bag)
		return live, nil
	}
	n := cp.needs
	req := contracts.Request{
		Terms: contracts.Terms{
			Bag: bag, Size: uint64(size), Chunks: uint64((size + int64(chunkSize) - 1) / int64(chunkSize)),
			Availability: cmp.Or(n.Availability, topics.High), Speed: cmp.Or(n.Speed, topics.High),
			Redundancy: uint32(min(want, contracts.MaxRedundancy)),
		},
		Duration: cmp.Or(n.Duration, DefaultContractDuration),
		Window:   cmp.Or(n.Window, DefaultContractWindow),
		// No more authorised offers can come than the bag has providers.
		Enough: max(1, min(2*want, namedCount(live))),
	}
	neg, err := cp.renter.Negotiate(ctx, req)
	if n.Negotiated != nil {
		n.Negotiated(neg, err)
	}
	if err != nil {
		if errors.Is(err, contracts.ErrNoOffers) {
			c.log.Debug("no contract offers; falling back to the providers the chain and the DHT name", "bag", bag, "err", err)
		} else {
			c.log.Warn("contract negotiation failed; falling back to the providers the chain and the DHT name", "bag", bag, "err", err)
		}
		return live, nil
	}
	rank := map[string]int{}
	sessions := map[string][]byte{}
	for i, cs := range neg.Contracts {
		rank[cs.Contract.ProviderPeer.String()] = i + 1
		sessions[cs.Contract.ProviderPeer.String()] = slices.Clone(cs.Grant.Session[:])
	}
	out := slices.Clone(live)
	for i := range out {
		out[i].session = sessions[out[i].peer.String()]
	}
	slices.SortStableFunc(out, func(a, b candidate) int {
		ra, rb := rank[a.peer.String()], rank[b.peer.String()]
		switch {
		case ra > 0 && rb > 0:
			return cmp.Compare(ra, rb)
		case ra > 0:
			return -1
		case rb > 0:
			return 1
		}
		return 0
	})
	c.log.Debug("contracts consigned", "bag", bag, "topic", neg.Proposal.Topic, "offers", len(neg.Offers), "consigned", len(neg.Contracts))
	return out, neg.Contracts
}

// recordBound records, in the renter's contract store, the object each
// consigned contract's upload was bound to, for those of its providers that
// hold it: a contract signed before its object existed names none, and
// without this a completed upload's contracts look like an abandoned one's.
// A failure to record costs nothing but that, so it is logged.
func (c *Client) recordBound(cp *contractPut, consigned []contracts.Consigned, obj Object) {
	if cp == nil {
		return
	}
	for _, cs := range consigned {
		if !slices.Contains(obj.Providers, cs.Contract.ProviderPeer) {
			continue
		}
		if err := cp.renter.SetBound(cs.Contract, obj.ID); err != nil {
			c.log.Warn("record a contract's object", "contract", cs.Contract.ID, "object", obj.ID, "err", err)
		}
	}
}

// namedCount is the number of candidates the chain names as operators of
// the bag's buckets: the most offers a proposal for the bag can get.
func namedCount(live []candidate) int {
	n := 0
	for _, c := range live {
		if c.named {
			n++
		}
	}
	return n
}
