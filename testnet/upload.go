package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store"
)

// Upload stores data in the network's bag the way a client does, but
// pushing to the providers named by index rather than to every provider
// the chain assigns: it chunks data (chunker.DefaultChunkSize), registers
// the object on chain with the member's key, pushes every chunk with its
// proof to each named provider over /satchel/store/1.0.0 and binds the
// object. With no index it pushes to provider 0. It returns the object as
// registered; the providers accept it on chain on their own.
//
// It is for tests and the devnet, which need to put an object on chosen
// providers; applications use package client.
func (n *Network) Upload(ctx context.Context, data []byte, to ...int) (chain.DataObject, error) {
	return n.UploadChunked(ctx, data, chunker.DefaultChunkSize, to...)
}

// UploadChunked is Upload with a chunk size, so a test can make a DAG of
// several levels out of little data.
func (n *Network) UploadChunked(ctx context.Context, data []byte, chunkSize int, to ...int) (chain.DataObject, error) {
	if len(to) == 0 {
		to = []int{0}
	}
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(chunkSize))
	if err != nil {
		return chain.DataObject{}, err
	}
	obj, err := n.Register(ctx, uint64(len(data)), res.Root.String())
	if err != nil {
		return obj, err
	}
	return obj, n.Push(ctx, obj, data, res, to...)
}

// Register registers an object of size bytes with content ID root in the
// network's bag, signed by the member, and returns it.
func (n *Network) Register(ctx context.Context, size uint64, root string) (chain.DataObject, error) {
	r, err := n.Client.Submit(ctx, n.Member, chain.MsgRegisterDataObjects{
		Bag:     n.Bag,
		Objects: []chain.ObjectSpec{{Size: size, ContentID: root}},
	})
	if err != nil {
		return chain.DataObject{}, fmt.Errorf("testnet: register object: %w", err)
	}
	reg, ok := chain.FindEvent[chain.ObjectsRegistered](r.Result.Events)
	if !ok || len(reg.Objects) != 1 {
		return chain.DataObject{}, errors.New("testnet: register object: no ObjectsRegistered event")
	}
	return reg.Objects[0], nil
}

// Push pushes the chunks of a registered object (data chunked as res) to
// the providers named by index, in parallel, and binds it on each.
func (n *Network) Push(ctx context.Context, obj chain.DataObject, data []byte, res *chunker.Result, to ...int) error {
	h, err := n.ClientHost(ctx)
	if err != nil {
		return err
	}
	errs := make([]error, len(to))
	var wg sync.WaitGroup
	for i, idx := range to {
		wg.Go(func() { errs[i] = n.push(ctx, h, n.Provider(idx), obj, data, res) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *Network) push(ctx context.Context, h *p2p.Host, p *Provider, obj chain.DataObject, data []byte, res *chunker.Result) error {
	ai := p.AddrInfo()
	if ai.ID == "" {
		return fmt.Errorf("testnet: provider %d is not running", p.Index)
	}
	if err := h.Connect(ctx, ai); err != nil {
		return fmt.Errorf("testnet: connect to provider %d: %w", p.Index, err)
	}
	st, err := store.Open(ctx, h.Libp2p(), ai.ID)
	if err != nil {
		return fmt.Errorf("testnet: open store stream to provider %d: %w", p.Index, err)
	}
	defer st.Close()
	for i, c := range res.Chunks {
		proof, err := res.Proof(i)
		if err != nil {
			return err
		}
		_, err = st.Push(ctx, store.ChunkPush{
			Bag:    string(obj.Bag),
			Object: uint64(obj.ID),
			Index:  i,
			CID:    c.CID,
			Data:   data[c.Offset : c.Offset+int64(c.Size)],
			Proof:  proof,
		})
		if err != nil {
			return fmt.Errorf("testnet: push chunk %d to provider %d: %w", i, p.Index, err)
		}
	}
	if err := st.Bind(ctx, store.BindRequest{Bag: string(obj.Bag), Object: uint64(obj.ID), Chunks: res.Chunks}); err != nil {
		return fmt.Errorf("testnet: bind object %d on provider %d: %w", obj.ID, p.Index, err)
	}
	return nil
}

// ClientHost returns the network's client host, a libp2p host outside the
// providers that uploads and reads as a client would, starting it on first
// use. Close closes it.
func (n *Network) ClientHost(ctx context.Context) (*p2p.Host, error) {
	n.clientMu.Lock()
	defer n.clientMu.Unlock()
	if n.client != nil {
		return n.client, nil
	}
	h, err := n.outsideHost(ctx, "testnet-client")
	if err != nil {
		return nil, fmt.Errorf("testnet: client host: %w", err)
	}
	n.client = h
	return h, nil
}

// outsideHost starts a host outside the providers, in DHT client mode on
// loopback, bootstrapped to the running providers, logging as component.
func (n *Network) outsideHost(ctx context.Context, component string, opts ...p2p.Option) (*p2p.Host, error) {
	var bootstrap []peer.AddrInfo
	for _, p := range n.running() {
		bootstrap = append(bootstrap, p.AddrInfo())
	}
	return p2p.New(ctx, append([]p2p.Option{
		p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"),
		p2p.WithDHTMode(dht.ModeClient),
		p2p.WithBootstrap(bootstrap...),
		p2p.WithLogger(n.cfg.Logger.With("component", component)),
	}, opts...)...)
}
