package testnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// distributorsFile records the distribution side the network set up: the
// family and, per distributor, its worker and bucket.
const distributorsFile = "distributors.json"

type distributorSetup struct {
	Family  chain.FamilyID               `json:"family"`
	Workers []chain.WorkerID             `json:"workers"`
	Buckets []chain.DistributionBucketID `json:"buckets"`
}

// Distributor is one distributor node of a network: a distribution worker
// operating one bucket of the network's family, which holds the network's
// bag, and while it runs its host and server.
type Distributor struct {
	// Index is the distributor's position in the network.
	Index  int
	Worker chain.WorkerID
	Bucket chain.DistributionBucketID
	Key    chain.Key
	// Dir holds its identity key and cache.
	Dir string

	net  *Network
	opts []distributor.Option

	mu       sync.Mutex
	host     *p2p.Host
	fetch    *fetch.Client
	server   *distributor.Server
	registry *prometheus.Registry
}

// AddDistributor adds a distributor to the network and starts it: on first
// use it creates the distribution family, and per distributor a
// distribution worker (key "distributor-<i>") and a bucket holding the
// network's bag, whose invitation the worker accepts; later starts on the
// same directory reuse them. The node serves HTTP on a free loopback port
// and publishes its endpoint in its operator metadata. opts are added to
// distributor.New's options after the network's own.
func (n *Network) AddDistributor(ctx context.Context, opts ...distributor.Option) (*Distributor, error) {
	n.distMu.Lock()
	defer n.distMu.Unlock()
	i := len(n.distributors)
	su, err := n.distributionSetup(ctx, i)
	if err != nil {
		return nil, err
	}
	key, err := chain.LoadOrCreateKey(keyFile(n.Dir, fmt.Sprintf("distributor-%d", i)))
	if err != nil {
		return nil, fmt.Errorf("testnet: distributor %d key: %w", i, err)
	}
	d := &Distributor{Index: i, Worker: su.Workers[i], Bucket: su.Buckets[i], Key: key,
		Dir: filepath.Join(n.Dir, fmt.Sprintf("distributor-%d", i)), net: n, opts: opts}
	if err := d.start(ctx); err != nil {
		return nil, err
	}
	n.distributors = append(n.distributors, d)
	return d, nil
}

// Distributor returns distributor i.
func (n *Network) Distributor(i int) *Distributor {
	n.distMu.Lock()
	defer n.distMu.Unlock()
	return n.distributors[i]
}

// distributionSetup returns the chain setup of distributor i, making it
// (and the family) when the network has none yet.
func (n *Network) distributionSetup(ctx context.Context, i int) (distributorSetup, error) {
	path := filepath.Join(n.Dir, distributorsFile)
	var su distributorSetup
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &su); err != nil {
			return su, fmt.Errorf("testnet: %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		res, err := n.Client.Submit(ctx, n.DistributionLead, chain.MsgCreateDistributionBucketFamily{})
		if err != nil {
			return su, fmt.Errorf("testnet: create distribution family: %w", err)
		}
		fam, ok := chain.FindEvent[chain.DistributionFamilyCreated](res.Result.Events)
		if !ok {
			return su, errors.New("testnet: create family: no DistributionFamilyCreated event")
		}
		su.Family = fam.Family
	default:
		return su, err
	}
	if i < len(su.Workers) {
		return su, nil
	}
	key, err := chain.LoadOrCreateKey(keyFile(n.Dir, fmt.Sprintf("distributor-%d", i)))
	if err != nil {
		return su, err
	}
	w, bkt, err := n.setupDistributor(ctx, su.Family, key)
	if err != nil {
		return su, err
	}
	su.Workers = append(su.Workers, w)
	su.Buckets = append(su.Buckets, bkt)
	out, err := json.MarshalIndent(su, "", "  ")
	if err != nil {
		return su, err
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return su, fmt.Errorf("testnet: record distributors: %w", err)
	}
	return su, nil
}

// setupDistributor makes a distribution worker with key, a bucket of
// family it operates, and puts the network's bag in the bucket.
func (n *Network) setupDistributor(ctx context.Context, family chain.FamilyID, key chain.Key) (chain.WorkerID, chain.DistributionBucketID, error) {
	lead := n.DistributionLead
	res, err := n.Client.Submit(ctx, lead, chain.MsgAddWorker{Group: chain.DistributionGroup, Account: key.Account()})
	if err != nil {
		return 0, chain.DistributionBucketID{}, fmt.Errorf("testnet: add distribution worker: %w", err)
	}
	added, ok := chain.FindEvent[chain.WorkerAdded](res.Result.Events)
	if !ok {
		return 0, chain.DistributionBucketID{}, errors.New("testnet: add worker: no WorkerAdded event")
	}
	res, err = n.Client.Submit(ctx, lead, chain.MsgCreateDistributionBucket{Family: family, AcceptingNewBags: true})
	if err != nil {
		return 0, chain.DistributionBucketID{}, fmt.Errorf("testnet: create distribution bucket: %w", err)
	}
	created, ok := chain.FindEvent[chain.DistributionBucketCreated](res.Result.Events)
	if !ok {
		return 0, chain.DistributionBucketID{}, errors.New("testnet: create bucket: no DistributionBucketCreated event")
	}
	b := created.Bucket
	steps := []struct {
		key chain.Key
		msg chain.Msg
	}{
		{lead, chain.MsgInviteDistributionBucketOperator{Bucket: b, Worker: added.Worker}},
		{key, chain.MsgAcceptDistributionBucketInvitation{Bucket: b, Worker: added.Worker}},
		{lead, chain.MsgUpdateBagDistributionBuckets{Bag: n.Bag, Family: b.Family, Add: []uint64{b.Index}}},
	}
	for _, st := range steps {
		if _, err := n.Client.Submit(ctx, st.key, st.msg); err != nil {
			return 0, chain.DistributionBucketID{}, fmt.Errorf("testnet: distribution bucket %s: %s: %w", b, st.msg.Type(), err)
		}
	}
	return added.Worker, b, nil
}

// start starts the distributor's host and server, connected to the
// running providers, and publishes its endpoint.
func (d *Distributor) start(ctx context.Context) (err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.server != nil {
		return fmt.Errorf("testnet: distributor %d is running", d.Index)
	}
	n := d.net
	log := n.cfg.Logger.With("distributor", d.Index)
	key, err := p2p.LoadOrCreateIdentity(filepath.Join(d.Dir, "identity.key"))
	if err != nil {
		return fmt.Errorf("testnet: distributor %d: identity: %w", d.Index, err)
	}
	var bootstrap []peer.AddrInfo
	for _, p := range n.running() {
		bootstrap = append(bootstrap, p.AddrInfo())
	}
	h, err := p2p.New(ctx, p2p.WithIdentity(key), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"),
		p2p.WithBootstrap(bootstrap...), p2p.WithLogger(log))
	if err != nil {
		return fmt.Errorf("testnet: distributor %d: host: %w", d.Index, err)
	}
	fc := fetch.NewClient(h.Libp2p())
	defer func() {
		if err != nil {
			fc.Close()
			h.Close()
		}
	}()
	reg := prometheus.NewRegistry()
	id := distributor.Identity{Worker: d.Worker, Buckets: []chain.DistributionBucketID{d.Bucket}}
	opts := append([]distributor.Option{
		distributor.WithLogger(log),
		distributor.WithMetrics(reg),
		distributor.WithCacheDir(filepath.Join(d.Dir, "cache")),
		distributor.WithHTTPAddr("127.0.0.1:0"),
	}, d.opts...)
	srv, err := distributor.New(h, fc, n.Client, id, opts...)
	if err != nil {
		return fmt.Errorf("testnet: distributor %d: %w", d.Index, err)
	}
	if err := srv.Start(ctx); err != nil {
		srv.Close()
		return fmt.Errorf("testnet: distributor %d: %w", d.Index, err)
	}
	if err := distributor.PublishEndpoint(ctx, n.Client, d.Key, id, srv.URL()+"/"); err != nil {
		srv.Close()
		return fmt.Errorf("testnet: distributor %d: %w", d.Index, err)
	}
	d.host, d.fetch, d.server, d.registry = h, fc, srv, reg
	return nil
}

// Kill stops the distributor; its directory (identity, cache) stays.
func (d *Distributor) Kill() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.server == nil {
		return nil
	}
	errs := []error{d.server.Close(), d.fetch.Close(), d.host.Close()}
	d.host, d.fetch, d.server, d.registry = nil, nil, nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testnet: distributor %d: %w", d.Index, err)
	}
	return nil
}

// Restart starts a stopped distributor again on its directory.
func (d *Distributor) Restart(ctx context.Context) error { return d.start(ctx) }

// Server returns the running distributor's server (nil when stopped).
func (d *Distributor) Server() *distributor.Server {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.server
}

// Registry returns the running distributor's metrics registry.
func (d *Distributor) Registry() *prometheus.Registry {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.registry
}

// URL returns the base URL of the running distributor's HTTP API.
func (d *Distributor) URL() string {
	if s := d.Server(); s != nil {
		return s.URL()
	}
	return ""
}

// AssetURL returns the URL of object id at the running distributor.
func (d *Distributor) AssetURL(id chain.ObjectID) string {
	return d.URL() + "/api/v1/assets/" + id.String()
}

// closeDistributors stops every distributor (Network.Close calls it first).
func (n *Network) closeDistributors() error {
	n.distMu.Lock()
	ds := n.distributors
	n.distMu.Unlock()
	var errs []error
	for _, d := range ds {
		errs = append(errs, d.Kill())
	}
	return errors.Join(errs...)
}
