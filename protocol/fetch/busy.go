package fetch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// Budget refusals. A GET the memory budget has no room for is REFUSED; who
// should act depends on whose budget is spent. libp2p's resource manager
// names the scope whose limit was reached in its error ("stream-N",
// "peer:ID", "protocol:ID.peer:ID" — this reader's own — or "protocol:ID",
// "system", "transient" — every peer's together). A reader's own is
// answered "retry with fewer requests in flight"; a shared one is answered
// busy: the provider is loaded by others, and the reader should read from
// another provider (ErrProviderBusy).

// budgetRefusal is the reply to a GET whose reservation failed with err.
func budgetRefusal(err error) *pb.FetchReply {
	scope := exhaustedScope(err)
	if sharedScope(scope) {
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED, Busy: true,
			Reason: fmt.Sprintf("provider busy: its memory budget for all peers (scope %q) is spent; try another provider", scope)}
	}
	return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED,
		Reason: fmt.Sprintf("provider is at this reader's memory budget (%v); retry later with fewer requests in flight", err)}
}

// exhaustedScope returns the name of the resource scope whose limit err
// (from a reservation) reports reached, or "" if err names none.
func exhaustedScope(err error) string {
	for err != nil {
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range multi.Unwrap() {
				if s := exhaustedScope(e); s != "" {
					return s
				}
			}
			return ""
		}
		next := errors.Unwrap(err)
		if limitError(next) {
			return strings.TrimSuffix(err.Error(), ": "+next.Error())
		}
		err = next
	}
	return ""
}

// limitError reports whether err is the resource manager's own error for
// a limit reached, which the scope that reached it wraps with its name.
func limitError(err error) bool {
	_, mem := err.(*rcmgr.ErrMemoryLimitExceeded)
	return mem || err == network.ErrResourceLimitExceeded
}

// sharedScope reports whether the scope named is shared by every peer: the
// host's (system, transient), a protocol's or a service's, as opposed to a
// stream's, a connection's or a peer's (alone or within a protocol).
func sharedScope(name string) bool {
	switch {
	case name == "system" || name == "transient":
		return true
	case strings.Contains(name, ".peer:"):
		return false
	default:
		return strings.HasPrefix(name, "protocol:") || strings.HasPrefix(name, "service:")
	}
}
