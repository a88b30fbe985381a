package fetch

import (
	"fmt"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// Budget refusals. A GET the memory budget has no room for is REFUSED; who
// should act depends on whose budget is spent (p2p.BudgetScope). A reader's
// own is answered "retry with fewer requests in flight"; a shared one is
// answered busy: the provider is loaded by others, and the reader should
// read from another provider (ErrProviderBusy).

// budgetRefusal is the reply to a GET whose reservation failed with err.
func budgetRefusal(err error) *pb.FetchReply {
	if scope, shared := p2p.BudgetScope(err); shared {
		return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED, Busy: true,
			Reason: fmt.Sprintf("provider busy: its memory budget for all peers (scope %q) is spent; try another provider", scope)}
	}
	return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED,
		Reason: fmt.Sprintf("provider is at this reader's memory budget (%v); retry later with fewer requests in flight", err)}
}
