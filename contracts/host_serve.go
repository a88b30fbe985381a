package contracts

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/satchel-net/satchel/contracts/pb"
)

// A host's one handler of /satchel/contract/1.0.0: OFFER goes to the
// Renter whose proposal it answers, the rest to the latest Responder.

// role is one part serving the contract protocol on a host.
type role struct {
	serve func(ctx context.Context, s network.Stream, req *pb.Request) error
	// open reports whether proposal id is open on a Renter (nil for a
	// Responder).
	open func(id ID) bool

	ctx     context.Context // ends when the role is removed
	cancel  context.CancelFunc
	running sync.WaitGroup // its requests being served
}

// newRole returns a role serving requests with serve; open is a Renter's.
func newRole(serve func(context.Context, network.Stream, *pb.Request) error, open func(ID) bool) *role {
	r := &role{serve: serve, open: open}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// addRole makes r serve its requests on the host (a Renter's OFFERs, or
// a Responder's requests, taking them over from an earlier Responder
// until r is removed), setting the protocol's handler with the first
// role.
func (s *hostShare) addRole(r *role) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.mu.Lock()
	if r.open != nil {
		s.renters = append(s.renters, r)
	} else {
		s.responders = append(s.responders, r)
	}
	set := !s.serving
	s.serving = true
	s.mu.Unlock()
	if set {
		s.h.Protocol().SetHandler(Protocol, s.serve)
	}
}

// removeRole stops r serving; it returns once the requests r was serving
// ended (their streams are reset). The protocol's handler goes with the
// host's last role.
func (s *hostShare) removeRole(r *role) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.mu.Lock()
	s.renters = slices.DeleteFunc(s.renters, func(x *role) bool { return x == r })
	s.responders = slices.DeleteFunc(s.responders, func(x *role) bool { return x == r })
	last := len(s.renters)+len(s.responders) == 0
	if last {
		s.serving = false
	}
	s.mu.Unlock()
	r.cancel()
	r.running.Wait()
	if last {
		s.h.Protocol().RemoveHandler(Protocol)
	}
}

// serve reads a contract request and passes it to the role that takes
// it; with none, it is refused.
func (s *hostShare) serve(ctx context.Context, st network.Stream) error {
	var req pb.Request
	if err := s.h.Protocol().ReadMsg(st, &req, MaxFrame); err != nil {
		return err
	}
	r, err := s.enter(&req)
	if err != nil {
		return s.h.Protocol().WriteMsg(st, &pb.Response{Body: &pb.Response_Refusal{Refusal: refusal(err)}})
	}
	defer r.running.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A role removed while it serves ends its stream, as a removed
	// handler's streams end.
	stop := context.AfterFunc(r.ctx, func() { cancel(); _ = st.Reset() })
	defer stop()
	return r.serve(ctx, st, &req)
}

// enter picks the role that takes req and counts the request as served
// by it: an OFFER's Renter (the one whose proposal it answers, else the
// latest), another request's latest Responder. An error says why none
// does.
func (s *hostShare) enter(req *pb.Request) (*role, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r *role
	if o := req.GetOffer(); o != nil {
		r = s.renterFor(o)
		if r == nil {
			return nil, fmt.Errorf("%w: no proposal is open on this peer (it runs no renter)", ErrNotFound)
		}
	} else {
		if len(s.responders) == 0 {
			return nil, malformed("a renter takes only OFFER")
		}
		r = s.responders[len(s.responders)-1]
	}
	r.running.Add(1)
	return r, nil
}

// renterFor returns the Renter on which o's proposal is open, else the
// latest (which refuses it), nil with none. Call with s.mu.
func (s *hostShare) renterFor(o *pb.Offer) *role {
	if len(s.renters) == 0 {
		return nil
	}
	if id, err := idFrom(o.ProposalId, "proposal id"); err == nil {
		for _, r := range s.renters {
			if r.open(id) {
				return r
			}
		}
	}
	return s.renters[len(s.renters)-1]
}
