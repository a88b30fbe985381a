package distributor

import "github.com/satchel-net/satchel/internal/operators"

// startRecordPriority names the chain's active storage operators as the
// host's DHT priority peers, as storage providers do: a distributor runs a
// DHT server too, and a swarm of fresh peer IDs announcing random keys
// would otherwise crowd the storage providers' records out of it. It needs
// a chain reader that lists the storage buckets (*chain.Client does);
// Close removes the rule.
func (s *Server) startRecordPriority() {
	lister, ok := s.index.c.(operators.Lister)
	if !ok {
		return
	}
	s.priority = operators.NewPriority(&s.operators, lister, s.log)
	s.priority.Ask()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.priority.Run(s.ctx)
	}()
	s.h.SetProviderPriority(s.priority.Is)
}
