package contracts

import (
	"sync"

	"github.com/satchel-net/satchel/p2p"
)

// hostShare is what the contract parts on one libp2p host share. Pubsub
// takes one validator per topic per PubSub and a host one handler per
// protocol, while a host may run several parts, each with its own Gossip:
// a Responder beside a Renter (a provider that also rents), two Renters,
// a Responder started again beside the one it replaces. So the first hold
// of a topic registers the one validator, which judges with the Gossip of
// the topic's oldest live subscription, else of its oldest Publish in
// flight (host_topics.go), and one handler serves /satchel/contract/1.0.0,
// passing OFFER to the Renter whose proposal it answers, CONSIGN to the
// Responder that made the offer, and the rest to the latest Responder
// (host_serve.go).
type hostShare struct {
	h    *p2p.Host
	refs int // under sharesMu: the holds and roles using the share

	mu    sync.Mutex
	holds map[string][]hold // per topic whose validator is registered, oldest first

	// vmu orders registering and unregistering the topics' validators,
	// and is held across those pubsub calls so that mu, which the
	// validators and the protocol handler take, is not.
	vmu sync.Mutex

	// hmu orders setting and removing the protocol handler, and is not
	// held while a stream is served.
	hmu        sync.Mutex
	renters    []*role // under mu, oldest first
	responders []*role // under mu, oldest first; the last serves
	serving    bool    // under mu: the protocol handler is set
}

// hold is one hold of a topic: a subscription's, or a Publish's while it
// publishes.
type hold struct {
	g   *Gossip
	sub bool
}

// shares are the hostShares in use, one per host.
var (
	sharesMu sync.Mutex
	shares   = make(map[*p2p.Host]*hostShare)
)

// acquireShare returns h's share, counting one more user of it: a topic
// hold or a role. Each acquireShare is matched by one put.
func acquireShare(h *p2p.Host) *hostShare {
	sharesMu.Lock()
	defer sharesMu.Unlock()
	s := shares[h]
	if s == nil {
		s = &hostShare{h: h, holds: make(map[string][]hold)}
		shares[h] = s
	}
	s.refs++
	return s
}

// put lets go of one use of s; the last forgets it, its holds and roles
// gone by then.
func (s *hostShare) put() {
	sharesMu.Lock()
	defer sharesMu.Unlock()
	s.refs--
	if s.refs == 0 && shares[s.h] == s {
		delete(shares, s.h)
	}
}
