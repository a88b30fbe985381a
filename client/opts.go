package client

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chunker"
)

// PutOption configures Put, PutFile and Upload. A value an option cannot
// take fails the call it is given to at once, with an error wrapping
// ErrInvalidOption (or ErrRedundancy) that names the option.
type PutOption interface{ applyPut(*putOptions) }

// GetOption configures Get, GetRange and Open; an invalid one fails them
// at once, like a PutOption.
type GetOption interface{ applyGet(*getOptions) }

type putOptions struct {
	progress      func(Progress)
	redundancy    int
	minRedundancy int
	chunkSize     int
	acceptTimeout time.Duration
	expiry        time.Duration
	contracts     *contractPut // WithContracts (client/contracts.go)
	replication   Replication  // WithReplication (client/pipeline.go)
}

type getOptions struct {
	progress func(Progress)
	peers    []peer.AddrInfo
}

type putOption func(*putOptions)

func (f putOption) applyPut(o *putOptions) { f(o) }

type getOption func(*getOptions)

func (f getOption) applyGet(o *getOptions) { f(o) }

// ProgressOption reports progress; it configures uploads and downloads
// alike.
type ProgressOption struct{ fn func(Progress) }

func (p ProgressOption) applyPut(o *putOptions) { o.progress = p.fn }
func (p ProgressOption) applyGet(o *getOptions) { o.progress = p.fn }

// WithProgress calls fn with a snapshot of the operation's progress:
// whenever the file or a chunk changes state, and at most every 50 ms for
// storage link changes and download bytes, and once more at the end.
// Calls are never concurrent; fn must return quickly. If fn panics it is
// not called again (by any operation given this option) and the panic is
// logged at Warn; the operation goes on — most calls come from its own
// goroutines, where a panic would end the program.
func WithProgress(fn func(Progress)) ProgressOption { return ProgressOption{fn: guardProgress(fn)} }

// guardProgress returns fn, which stops being called once it panicked (the
// panic goes on to the tracker that called it, which logs it).
func guardProgress(fn func(Progress)) func(Progress) {
	if fn == nil {
		return nil
	}
	var broken atomic.Bool
	return func(p Progress) {
		if broken.Load() {
			return
		}
		returned := false
		defer func() {
			if !returned {
				broken.Store(true)
			}
		}()
		fn(p)
		returned = true
	}
}

// WithRedundancy sets how many providers must each hold every chunk (N).
// The default, and the most, is the number of storage buckets storing the
// bag: asking for more fails the upload with ErrRedundancy before any byte
// is sent. 0 means the default; a negative n is an invalid option.
func WithRedundancy(n int) PutOption {
	return putOption(func(o *putOptions) { o.redundancy = n })
}

// WithMinRedundancy sets the fewest providers an upload may end with when
// providers fail and no other provider of the bag can replace them. The
// default is the upload's redundancy (every storage bucket of the bag
// unless WithRedundancy asks for fewer): an upload that cannot reach it
// fails with a *NoProviderError rather than report success on fewer
// copies than the bag promises. A caller that accepts less sets it lower:
// the upload then completes with receipts from the live providers and the
// chain's acceptance, the providers of the bag sync the rest, and the
// returned Object says so (Object.Degraded). Values below 1 mean the
// default; one above the upload's redundancy fails it with ErrRedundancy.
func WithMinRedundancy(n int) PutOption {
	return putOption(func(o *putOptions) { o.minRedundancy = n })
}

// WithChunkSize overrides Config.ChunkSize for one upload: 1 to
// chunker.MaxChunkSize bytes.
func WithChunkSize(n int) PutOption {
	return putOption(func(o *putOptions) { o.chunkSize = n })
}

// WithAcceptTimeout bounds the wait for the chain to accept the object once
// every chunk is stored and bound (default 2 minutes). When it passes,
// the upload fails with ErrNotAccepted and running it again resumes the wait.
// It must be longer than 0.
func WithAcceptTimeout(d time.Duration) PutOption {
	return putOption(func(o *putOptions) { o.acceptTimeout = d })
}

// WithExpiry sets how long providers keep chunks that are not bound to an
// object yet (default 24 hours): the agreement expiry of every chunk
// request. Before registration chunks go only under a storage contract
// (WithContracts), whose upload session lasts at most its grant, which
// slides one grant TTL (an hour) past the session's last chunk; receipts
// say the expiry given. It must be longer than 0.
func WithExpiry(d time.Duration) PutOption {
	return putOption(func(o *putOptions) { o.expiry = d })
}

// WithPeers adds peers to read from besides the bag's providers, tried
// first; every block they send is verified like any other.
func WithPeers(peers ...peer.AddrInfo) GetOption {
	return getOption(func(o *getOptions) { o.peers = append(o.peers, peers...) })
}

// putOptions applies opts over the client's defaults and checks the
// result, so a bad option fails the call it is given to, before anything
// is read or sent.
func (c *Client) putOptions(opts []PutOption) (putOptions, error) {
	o := putOptions{chunkSize: c.cfg.ChunkSize, acceptTimeout: 2 * time.Minute, expiry: 24 * time.Hour}
	for _, f := range opts {
		if f != nil {
			f.applyPut(&o)
		}
	}
	return o, o.check()
}

// check refuses option values no upload can run with.
func (o *putOptions) check() error {
	switch {
	case o.chunkSize < 1 || o.chunkSize > chunker.MaxChunkSize:
		return optionErrorf("WithChunkSize(%d): a chunk is 1 to %d bytes", o.chunkSize, chunker.MaxChunkSize)
	case o.redundancy < 0:
		return optionErrorf("WithRedundancy(%d): ask for 1 copy or more, or 0 for one per storage bucket of the bag", o.redundancy)
	case o.redundancy > 0 && o.minRedundancy > o.redundancy:
		return fmt.Errorf("%w: WithMinRedundancy(%d) asks for more copies than WithRedundancy(%d) makes; ask for at most %d",
			ErrRedundancy, o.minRedundancy, o.redundancy, o.redundancy)
	case o.acceptTimeout <= 0:
		return optionErrorf("WithAcceptTimeout(%s): the wait for the chain must be longer than 0", o.acceptTimeout)
	case o.expiry <= 0:
		return optionErrorf("WithExpiry(%s): providers must keep unbound chunks for longer than 0", o.expiry)
	case o.replication < ReplicateAuto || o.replication > ReplicatePipelined:
		return optionErrorf("WithReplication(%s): want ReplicateAuto, ReplicateDirect or ReplicatePipelined", o.replication)
	case o.contracts != nil && o.contracts.renter == nil:
		return optionErrorf("WithContracts: the renter is nil; pass the *contracts.Renter that negotiates")
	case o.contracts != nil && (o.contracts.needs.Duration < 0 || o.contracts.needs.Window < 0):
		return optionErrorf("WithContracts: negative duration %s or window %s in ContractNeeds", o.contracts.needs.Duration, o.contracts.needs.Window)
	}
	return nil
}

// getOptions applies opts and checks the result.
func getOpts(opts []GetOption) (getOptions, error) {
	var o getOptions
	for _, f := range opts {
		if f != nil {
			f.applyGet(&o)
		}
	}
	for i, p := range o.peers {
		if err := p.ID.Validate(); err != nil {
			return o, optionErrorf("WithPeers: peer %d of %d has no valid peer ID (%v)", i+1, len(o.peers), err)
		}
	}
	return o, nil
}

// optionErrorf returns an error wrapping ErrInvalidOption.
func optionErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}
