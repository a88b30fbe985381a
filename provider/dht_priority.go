package provider

import (
	"context"

	"github.com/satchel-net/satchel/internal/operators"
)

// startRecordPriority names the chain's active storage operators as the
// host's DHT priority peers (operators.Priority, over the set the audit
// relay reads), with a first read of them under way, when the chain client
// can list the storage buckets. Close removes the rule. It is called by
// Start.
func (s *Server) startRecordPriority(ctx context.Context) {
	lister, ok := s.c.(operators.Lister)
	if !ok {
		return
	}
	s.priority = operators.NewPriority(&s.audits.relay.operators, lister, s.log)
	s.priority.Ask()
	s.goFunc(func() { s.priority.Run(ctx) })
	s.h.SetProviderPriority(s.priority.Is)
}
