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
// Renter whose proposal it answers, CONSIGN to the Responder that made the
// offer it signs, the rest to the latest Responder.

// role is one part serving the contract protocol on a host.
type role struct {
	serve func(ctx context.Context, s network.Stream, req *pb.Request) error
	// renter tells a Renter's role from a Responder's.
	renter bool
	// has reports whether id is the role's: a proposal open on a Renter,
	// an offer pending or consigned on a Responder.
	has func(id ID) bool

	ctx     context.Context // ends when the role is removed
	cancel  context.CancelFunc
	running sync.WaitGroup // its requests being served
}

// newRole returns a Renter's role (renter) or a Responder's serving
// requests with serve, owning the IDs has reports.
func newRole(renter bool, serve func(context.Context, network.Stream, *pb.Request) error, has func(ID) bool) *role {
	r := &role{serve: serve, renter: renter, has: has}
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
	if r.renter {
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
// latest), a CONSIGN's Responder (the one that offered the contract, else
// the latest), another request's latest Responder. An error says why none
// does.
func (s *hostShare) enter(req *pb.Request) (*role, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r *role
	switch b := req.Body.(type) {
	case *pb.Request_Offer:
		r = owner(s.renters, b.Offer.GetProposalId())
		if r == nil {
			return nil, fmt.Errorf("%w: no proposal is open on this peer (it runs no renter)", ErrNotFound)
		}
	case *pb.Request_Consign:
		r = owner(s.responders, b.Consign.GetContract().GetId())
	default:
		r = owner(s.responders, nil)
	}
	if r == nil {
		return nil, malformed("a renter takes only OFFER")
	}
	r.running.Add(1)
	return r, nil
}

// owner returns the role of rs that has id, else the latest (which
// refuses what is not its own), nil with none. Call with s.mu.
func owner(rs []*role, id []byte) *role {
	if len(rs) == 0 {
		return nil
	}
	if id, err := idFrom(id, "id"); err == nil && len(rs) > 1 {
		for _, r := range rs {
			if r.has(id) {
				return r
			}
		}
	}
	return rs[len(rs)-1]
}
