package testnet

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/topics"
)

// DefaultContractTopics are the contract topics a devnet's providers
// subscribe to when Config.ContractTopics is nil and Config.Contracts is
// set: every size and duration class at high availability and speed, and
// the seed's backup topic.
var DefaultContractTopics = func() []topics.Topic {
	var ts []topics.Topic
	for _, s := range []topics.Descriptor{topics.Low, topics.Medium, topics.High} {
		for _, d := range []topics.Descriptor{topics.Low, topics.Medium, topics.High} {
			ts = append(ts, topics.New(s, d, topics.High, topics.High))
		}
	}
	return append(ts, topics.New(topics.High, topics.High, topics.Low, topics.Low))
}()

// providerContracts is a provider's contract side: gossip, responder and
// the contract store in DIR/contracts.
type providerContracts struct {
	store *contracts.Store
	resp  *contracts.Responder
}

// contractTopics returns the topics providers subscribe to, or nil when
// the network runs without contracts.
func (c Config) contractTopics() []topics.Topic {
	if len(c.ContractTopics) > 0 {
		return c.ContractTopics
	}
	if c.Contracts {
		return DefaultContractTopics
	}
	return nil
}

// startContracts starts the provider's responder on h, taking MIRROR
// requests and granting srv's upload sessions. Called with p.mu held.
func (p *Provider) startContracts(h *p2p.Host, reg prometheus.Registerer, srv *provider.Server) (*providerContracts, error) {
	ts := p.net.cfg.contractTopics()
	if ts == nil {
		return nil, nil
	}
	st, err := contracts.OpenStore(filepath.Join(p.Dir, "contracts"))
	if err != nil {
		return nil, fmt.Errorf("testnet: provider %d: %w", p.Index, err)
	}
	log := p.net.cfg.Logger.With("provider", p.Index)
	c := p.net.Client
	m, err := contracts.NewMetrics(reg)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("testnet: provider %d: contract metrics: %w", p.Index, err)
	}
	resp, err := contracts.NewResponder(h, contracts.NewGossip(h, c, log, contracts.WithGossipMetrics(m)),
		contracts.Identity{Key: p.Key, Worker: p.Worker, Bucket: p.Bucket},
		contracts.NewChainAuthority(c, p.Bucket), contracts.NewLedger(c, p.Bucket, srv.FreeDisk()), st,
		contracts.WithTopics(ts...), contracts.WithLogger(log), contracts.WithMetrics(m), contracts.WithMirrorer(srv))
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("testnet: provider %d: %w", p.Index, err)
	}
	// Streamed upload sessions are taken under consigned contracts' grants.
	srv.SetUploadGrants(resp)
	return &providerContracts{store: st, resp: resp}, nil
}

func (pc *providerContracts) close() error {
	if pc == nil {
		return nil
	}
	return errors.Join(pc.resp.Close(), pc.store.Close())
}

// Contracts returns the running provider's contract responder and store,
// or nils when the network runs without contracts or the provider is down.
func (p *Provider) Contracts() (*contracts.Responder, *contracts.Store) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.contracts == nil {
		return nil, nil
	}
	return p.contracts.resp, p.contracts.store
}

// ContractTopics returns the contract topics the network's providers
// subscribe to (none when it runs without contracts).
func (n *Network) ContractTopics() []topics.Topic { return n.cfg.contractTopics() }

// RenterOption configures the renter RenterHost starts.
type RenterOption func(*renterConfig)

type renterConfig struct{ store *contracts.Store }

// WithRenterStore makes the renter keep its contracts in store (the
// caller closes it after the network).
func WithRenterStore(store *contracts.Store) RenterOption {
	return func(c *renterConfig) { c.store = store }
}

// RenterHost starts a host outside the providers, bootstrapped to the
// running ones and scoring contract topics as they do, with the network
// member's renter on it (keeping no contracts unless WithRenterStore).
// Each call starts a new one; Close closes them.
func (n *Network) RenterHost(ctx context.Context, opts ...RenterOption) (*p2p.Host, *contracts.Renter, error) {
	var cfg renterConfig
	for _, o := range opts {
		o(&cfg)
	}
	h, err := n.outsideHost(ctx, "testnet-renter", p2p.WithPubSubOptions(contracts.ScoreOptions()...))
	if err != nil {
		return nil, nil, fmt.Errorf("testnet: renter host: %w", err)
	}
	log := n.cfg.Logger.With("component", "testnet-renter")
	g := contracts.NewGossip(h, n.Client, log)
	r := contracts.NewRenter(h, g, n.Member, n.MemberID, n.Client, cfg.store, log)
	n.clientMu.Lock()
	n.renters = append(n.renters, renterHost{h, g, r})
	n.clientMu.Unlock()
	return h, r, nil
}

// renterHost is a host RenterHost started, closed with the network.
type renterHost struct {
	h *p2p.Host
	g *contracts.Gossip
	r *contracts.Renter
}

func (rh renterHost) close() error {
	return errors.Join(rh.r.Close(), rh.g.Close(), rh.h.Close())
}
