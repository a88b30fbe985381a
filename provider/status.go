package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/httpserve"
)

// StatusPath is where the status server answers with the node's Status as
// JSON; MetricsPath is where it serves Prometheus metrics.
const (
	StatusPath  = "/api/v1/status"
	MetricsPath = "/metrics"
	// TombstonesPath lists the tombstones (GET); POST
	// TombstonesPath/{object}/keep keeps an object the chain deleted and
	// POST TombstonesPath/{object}/release lets it go again. Both need
	// ActionHeader and are refused across origins.
	TombstonesPath = "/api/v1/tombstones"
)

// Status is what a node reports about itself at StatusPath.
type Status struct {
	// PeerID and Addrs are the node's libp2p identity and addresses.
	PeerID string   `json:"peerId"`
	Addrs  []string `json:"addrs"`
	// Worker and Bucket are the node's chain identity.
	Worker uint64 `json:"worker"`
	Bucket uint64 `json:"bucket"`
	// Bags are the bags assigned to the bucket and those still held.
	Bags []BagStatus `json:"bags"`
	// Objects, Blocks and Bytes count what the store holds.
	Objects uint64 `json:"objects"`
	Blocks  uint64 `json:"blocks"`
	Bytes   uint64 `json:"bytes"`
	// SyncBacklog counts objects waiting to be synced or being synced;
	// Syncing the latter.
	SyncBacklog int `json:"syncBacklog"`
	Syncing     int `json:"syncing"`
	// AcceptQueue counts bound objects waiting to be accepted on chain.
	AcceptQueue int `json:"acceptQueue"`
	// CleanupWaiting counts objects of bags moved away that wait for other
	// providers to confirm they hold them.
	CleanupWaiting int `json:"cleanupWaiting"`
	// Quarantined counts corrupt blocks set aside; RepairQueue those
	// waiting to be fetched again.
	Quarantined uint64 `json:"quarantined"`
	RepairQueue int    `json:"repairQueue"`
	// Peers counts the libp2p peers connected now.
	Peers int `json:"peers"`
	// ChainHeight is the last block whose events the node handled.
	ChainHeight int64 `json:"chainHeight"`
	// Audits and Scrub report the node's audits of its peers and the
	// background re-verification of its own blocks.
	Audits *AuditStatus `json:"audits,omitempty"`
	Scrub  *ScrubStatus `json:"scrub,omitempty"`
	// Tombstones are the objects the chain deleted that the node still
	// holds: removed when due unless kept (POST TombstonesPath/{object}/keep).
	Tombstones []Tombstone `json:"tombstones"`
	// Contracts is the node's storage contract side, when it runs one
	// (provider/contracts.go).
	Contracts *ContractStatus `json:"contracts,omitempty"`
	// Disk is the block store's file system, where it can be read
	// (provider/diskfull.go).
	Disk *DiskStatus `json:"disk,omitempty"`
}

// BagStatus is one bag in a Status.
type BagStatus struct {
	ID string `json:"id"`
	// Assigned is whether the chain assigns the bag to the node's bucket;
	// a held bag that is not assigned is waiting for cleanup.
	Assigned bool `json:"assigned"`
	// Objects counts the bag's objects the node holds.
	Objects int `json:"objects"`
	// Provided is when the bag key was last announced on the DHT.
	Provided *time.Time `json:"provided,omitempty"`
}

// Status returns the node's current status.
func (s *Server) Status() Status {
	st := s.bs.Stats()
	queued, running := s.syncer.counts()
	out := Status{
		PeerID:         s.h.ID().String(),
		Worker:         uint64(s.id.Worker),
		Bucket:         uint64(s.id.Bucket),
		Objects:        st.Objects,
		Blocks:         st.Blocks,
		Bytes:          st.Bytes,
		SyncBacklog:    queued + running,
		Syncing:        running,
		AcceptQueue:    s.acceptor.count(),
		CleanupWaiting: s.cleanupWaiting(),
		Quarantined:    st.Quarantined,
		RepairQueue:    s.repairs.size(),
		Peers:          len(s.h.Libp2p().Network().Peers()),
		ChainHeight:    s.state.height(),
		Audits:         s.auditStatus(),
		Scrub:          s.scrubStatus(),
		Tombstones:     s.tombs.list(),
		Disk:           s.diskStatus(),
	}
	for _, a := range s.h.Addrs() {
		out.Addrs = append(out.Addrs, a.String())
	}
	out.Contracts = s.contractStatus()
	bags := map[string]bool{}
	for _, b := range s.assignedList() {
		bags[string(b)] = true
	}
	held, _ := s.holdings.bagList() // an unreadable index shows the assigned bags alone
	for _, b := range held {
		if _, ok := bags[b]; !ok {
			bags[b] = false
		}
	}
	for id, assigned := range bags {
		bs := BagStatus{ID: id, Assigned: assigned, Objects: s.holdings.bagObjects(id)}
		if t := s.announce.lastProvided(chain.BagID(id)); !t.IsZero() {
			bs.Provided = &t
		}
		out.Bags = append(out.Bags, bs)
	}
	slices.SortFunc(out.Bags, func(a, b BagStatus) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	if out.Bags == nil {
		out.Bags = []BagStatus{}
	}
	return out
}

// statusMaxConns bounds the status server's connections: its clients are
// the operator's tools and a metrics scraper.
const statusMaxConns = 64

// startStatus listens on the status address and serves the status page
// and the metrics until Close.
func (s *Server) startStatus() error {
	ln, err := net.Listen("tcp", s.cfg.statusAddr)
	if err != nil {
		return fmt.Errorf("provider: status server: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StatusPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Status())
	})
	mux.HandleFunc("GET "+AuditsPath, s.serveHeard)
	s.tombstoneRoutes(mux)
	if g, ok := s.cfg.registerer.(prometheus.Gatherer); ok {
		mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	ln = httpserve.LimitConns(ln, statusMaxConns)
	s.httpSrv = httpserve.Server(loopbackHostsOnly(mux, ln.Addr()))
	s.httpAddr = ln.Addr()
	s.goFunc(func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("status server stopped", "err", err)
		}
	})
	return nil
}
