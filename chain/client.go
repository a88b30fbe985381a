package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Reader is what a node needs to read from the data directory. Client
// implements it; depend on Reader (or a smaller interface of your own) so
// tests can substitute a fake.
type Reader interface {
	Info(ctx context.Context) (NodeInfo, error)
	Params(ctx context.Context) (Params, error)
	Account(ctx context.Context, a Account) (AccountInfo, error)
	Bag(ctx context.Context, id BagID) (Bag, error)
	Bags(ctx context.Context) ([]Bag, error)
	StorageBucket(ctx context.Context, id StorageBucketID) (StorageBucket, error)
	StorageBuckets(ctx context.Context) ([]StorageBucket, error)
	DistributionFamily(ctx context.Context, id FamilyID) (DistributionFamily, error)
	DistributionFamilies(ctx context.Context) ([]DistributionFamily, error)
	DistributionBucket(ctx context.Context, id DistributionBucketID) (DistributionBucket, error)
	DataObject(ctx context.Context, bag BagID, id ObjectID) (DataObject, error)
	ObjectByID(ctx context.Context, id ObjectID) (DataObject, error)
	Objects(ctx context.Context, bag BagID) ([]DataObject, error)
	Member(ctx context.Context, id MemberID) (Member, error)
	Channel(ctx context.Context, id ChannelID) (Channel, error)
	Workers(ctx context.Context, g Group) ([]Worker, error)
	Worker(ctx context.Context, g Group, id WorkerID) (Worker, error)
}

var _ Reader = (*Client)(nil)

// Client reads and writes the data directory through a Transport: typed
// queries, signed submissions with managed nonces, and a block event
// subscription. It is safe for concurrent use.
type Client struct {
	t       Transport
	chainID string

	mu     sync.Mutex
	nonces map[Account]*nonceState
	subBuf int
	// submitTimeout bounds a Submit whose ctx has no deadline: a node
	// that drops a transaction after CheckTx never reports it committed.
	submitTimeout time.Duration
}

// DefaultSubmitTimeout bounds Submit when its context has no deadline.
const DefaultSubmitTimeout = time.Minute

// WithSubmitTimeout sets how long Submit waits for a commit when its
// context has no deadline (default DefaultSubmitTimeout).
func WithSubmitTimeout(d time.Duration) ClientOption {
	return func(c *Client) {
		if d > 0 {
			c.submitTimeout = d
		}
	}
}

type nonceState struct {
	mu     sync.Mutex
	loaded bool
	next   uint64 // the next nonce to hand out
	// forgotten counts forgetNonce calls: a Prepare whose read began
	// before one (the nonce it read was refused since) does not load it.
	forgotten uint64
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithChainID sets the chain ID transactions are signed for. Without it the
// client asks the node (QueryInfo) before its first submission.
func WithChainID(id string) ClientOption { return func(c *Client) { c.chainID = id } }

// WithSubscribeBuffer sets how many blocks a subscription buffers ahead of
// its reader (default 16).
func WithSubscribeBuffer(n int) ClientOption {
	return func(c *Client) {
		if n >= 0 {
			c.subBuf = n
		}
	}
}

// NewClient returns a client that talks through t. Closing the client
// does not close t.
func NewClient(t Transport, opts ...ClientOption) *Client {
	c := &Client{t: t, nonces: map[Account]*nonceState{}, subBuf: 16, submitTimeout: DefaultSubmitTimeout}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Transport returns the transport the client uses.
func (c *Client) Transport() Transport { return c.t }

// ChainID returns the chain ID transactions are signed for, asking the
// node once when it was not configured.
func (c *Client) ChainID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.chainID
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	info, err := c.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("learn chain ID: %w", err)
	}
	c.mu.Lock()
	c.chainID = info.ChainID
	c.mu.Unlock()
	return info.ChainID, nil
}

func (c *Client) nonceFor(a Account) *nonceState {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.nonces[a]
	if !ok {
		s = &nonceState{}
		c.nonces[a] = s
	}
	return s
}

// Prepare learns what Submit needs before it can sign for key's account —
// the chain ID and the account's next nonce — unless the client knows them
// already, so a Submit that follows does not first wait for a read (over a
// proving transport a fresh read waits for the next block: up to the empty
// block interval on an idle chain). An uploader calls it while it hashes a
// file it registers once hashed. A nonce read with a block of lag
// (rpc.AcceptLag) that another transaction of the account has since used is
// refused at CheckTx, and Submit then reloads it and signs again.
//
// The read holds no lock (a Submit meanwhile reads the nonce itself, under
// its own deadline) and gives up after the client's submit timeout.
func (c *Client) Prepare(ctx context.Context, key Key) error {
	if key.IsZero() {
		return errors.New("prepare: no account key")
	}
	ctx, cancel := context.WithTimeout(ctx, c.submitTimeout)
	defer cancel()
	if _, err := c.ChainID(ctx); err != nil {
		return err
	}
	a := key.Account()
	s := c.nonceFor(a)
	s.mu.Lock()
	loaded, forgotten := s.loaded, s.forgotten
	s.mu.Unlock()
	if loaded {
		return nil
	}
	info, err := c.Account(ctx, a)
	if err != nil {
		return fmt.Errorf("fetch nonce of account %s: %w", a, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Not when a Submit loaded one meanwhile, nor when one found the
	// nonces stale since this read began (it reloads them fresh).
	if !s.loaded && s.forgotten == forgotten {
		s.next = max(s.next, info.Nonce+1)
		s.loaded = true
	}
	return nil
}

// nextNonce hands out the account's next nonce, loading the committed
// nonce from the node first when needed.
func (c *Client) nextNonce(ctx context.Context, a Account) (uint64, error) {
	s := c.nonceFor(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		info, err := c.Account(ctx, a)
		if err != nil {
			return 0, fmt.Errorf("fetch nonce of account %s: %w", a, err)
		}
		s.next = max(s.next, info.Nonce+1)
		s.loaded = true
	}
	n := s.next
	s.next++
	return n, nil
}

func (c *Client) forgetNonce(a Account) {
	s := c.nonceFor(a)
	s.mu.Lock()
	s.loaded = false
	s.forgotten++
	s.mu.Unlock()
}

// maxPendingRetries bounds how many blocks Submit waits out while the
// account has too many transactions waiting in the mempool, or the
// mempool a block's member registrations.
const maxPendingRetries = 20

// Submit signs msg with key, broadcasts it and waits until it is committed.
// A transaction the chain rejected returns its Committed (when it reached a
// block) and a *Error matching the runtime sentinel, e.g.
// errors.Is(err, ErrBucketFull). Nonces are handed out under a lock, so
// concurrent submissions with one key are safe; on a nonce error the client
// reloads the account's nonce and retries once, and while the account has
// as many transactions waiting as a node admits (ErrTooManyPending), or
// the mempool a block's member quota (ErrMembersPerBlock), it waits for
// the next block and tries again. A new worker's first transaction
// (accepting its bucket invitation, setting its operator metadata) that a
// node refuses as naming no worker (ErrWorkerNotFound) is sent once more
// after the next block: the node may not have committed the block that
// adds the worker. So is a new member's first transaction (creating a
// channel, uploading into its member bag, inviting) refused as naming no
// member (ErrMemberNotFound, or ErrBagNotFound for its member bag).
// Without a deadline on ctx, Submit gives up after the client's submit
// timeout (DefaultSubmitTimeout unless WithSubmitTimeout).
func (c *Client) Submit(ctx context.Context, key Key, msg Msg) (Committed, error) {
	if key.IsZero() {
		return Committed{}, errors.New("submit: no account key")
	}
	if msg == nil {
		return Committed{}, errors.New("submit: no message")
	}
	if err := msg.ValidateBasic(); err != nil {
		return Committed{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.submitTimeout)
		defer cancel()
	}
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return Committed{}, err
	}
	acct := key.Account()
	nonceRetried, newcomerRetried := false, false
	for attempt := 0; ; attempt++ {
		nonce, err := c.nextNonce(ctx, acct)
		if err != nil {
			return Committed{}, err
		}
		tx, err := SignTxForChain(chainID, key, nonce, msg)
		if err != nil {
			return Committed{}, err
		}
		res, err := c.t.BroadcastTx(ctx, tx)
		if err == nil && res.Result.Code != CodeOK {
			err = ErrorFromCode(res.Result.Code, res.Result.Log)
		}
		// Retry only a nonce refused at CheckTx (Height 0): a transaction
		// that reached a block used its nonce, and re-signing it could
		// execute the message twice.
		if err != nil && errors.Is(err, ErrBadNonce) && !nonceRetried && res.Height == 0 {
			nonceRetried = true
			c.forgetNonce(acct)
			continue
		}
		// The account has as many transactions waiting as a node admits
		// (ErrTooManyPending), or the mempool as many member
		// registrations as a block takes (ErrMembersPerBlock), refused at
		// CheckTx: the next block takes some, so wait for it and sign
		// again, rather than leave a newcomer to a busy block's refusal.
		// Nonces form a window, so the unused one leaves no gap that
		// blocks the next.
		if err != nil && waitable(err) && res.Height == 0 && attempt < maxPendingRetries {
			if _, werr := c.WaitForNextBlock(ctx); werr != nil {
				return res, err
			}
			continue
		}
		// A new worker's or member's first transaction refused at CheckTx
		// as naming no worker or member: the node has not committed the
		// block that adds it, and its provisional room for newcomers is
		// best effort (a few accounts, first come). One block later it
		// has, or never will.
		if err != nil && newcomerRefusal(msg, err) && res.Height == 0 && !newcomerRetried {
			newcomerRetried = true
			if _, werr := c.WaitForNextBlock(ctx); werr != nil {
				return res, err
			}
			continue
		}
		return res, err
	}
}

// newcomerRefusal reports whether err, a refusal of msg at CheckTx, may
// come of the node lacking the block that adds msg's worker or member.
func newcomerRefusal(msg Msg, err error) bool {
	switch {
	case errors.Is(err, ErrWorkerNotFound):
		return newWorkerMsg(msg)
	case errors.Is(err, ErrMemberNotFound), errors.Is(err, ErrBagNotFound):
		return newMemberMsg(msg)
	}
	return false
}

// newMemberMsg reports whether msg is one a new member's controller sends
// first, naming its own member: creating a channel, registering objects in
// its member bag, inviting as the member.
func newMemberMsg(msg Msg) bool {
	switch m := msg.(type) {
	case MsgCreateChannel:
		return true
	case MsgRegisterDataObjects:
		t, _, ok := m.Bag.Dynamic()
		return ok && t == MemberBagType
	case MsgInviteMember:
		return m.Member != nil
	}
	return false
}

// newWorkerMsg reports whether msg is one a new worker's role account
// sends first, naming its own worker: accepting its bucket invitation or
// setting its operator metadata.
func newWorkerMsg(msg Msg) bool {
	switch msg.(type) {
	case MsgAcceptStorageBucketInvitation, MsgSetStorageOperatorMetadata,
		MsgAcceptDistributionBucketInvitation, MsgSetDistributionOperatorMetadata:
		return true
	}
	return false
}

// waitable reports whether a refusal at CheckTx passes with the next
// block.
func waitable(err error) bool {
	return errors.Is(err, ErrTooManyPending) || errors.Is(err, ErrMembersPerBlock)
}

// Subscribe delivers the events of every committed block from fromHeight
// on, in order, one BlockEvents per block (Events may be empty). fromHeight
// <= 0 starts after the latest committed block. To resume after a restart,
// pass the last height handled plus one. The subscription ends when ctx is
// done or the transport fails: the error channel then receives the reason
// and both channels are closed.
func (c *Client) Subscribe(ctx context.Context, fromHeight int64) (<-chan BlockEvents, <-chan error) {
	out := make(chan BlockEvents, c.subBuf)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		defer close(errc)
		h := fromHeight
		if h <= 0 {
			latest, err := c.t.LatestHeight(ctx)
			if err != nil {
				errc <- fmt.Errorf("subscribe: latest height: %w", err)
				return
			}
			h = latest + 1
		}
		for {
			if err := c.t.WaitForHeight(ctx, h); err != nil {
				errc <- fmt.Errorf("subscribe: wait for block %d: %w", h, err)
				return
			}
			be, err := c.t.BlockEvents(ctx, h)
			if err != nil {
				errc <- fmt.Errorf("subscribe: events of block %d: %w", h, err)
				return
			}
			select {
			case out <- be:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
			h++
		}
	}()
	return out, errc
}

// WaitForNextBlock waits until a block after the latest committed one is
// committed and returns its height. Answers of a proving transport
// (chain/verify) trail the chain's head by a block, the one its last
// signed header covers: a read that missed what another party's
// transaction just committed sees it after this.
func (c *Client) WaitForNextBlock(ctx context.Context) (int64, error) {
	h, err := c.t.LatestHeight(ctx)
	if err != nil {
		return 0, fmt.Errorf("wait for the next block: %w", err)
	}
	if err := c.t.WaitForHeight(ctx, h+1); err != nil {
		return 0, fmt.Errorf("wait for the next block: %w", err)
	}
	return h + 1, nil
}

// query runs a typed query.
func query[T any](ctx context.Context, c *Client, path string, arg any) (T, error) {
	var zero T
	var data []byte
	if arg != nil {
		b, err := json.Marshal(arg)
		if err != nil {
			return zero, fmt.Errorf("query %s: %w", path, err)
		}
		data = b
	}
	b, err := c.t.Query(ctx, path, data)
	if err != nil {
		return zero, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return zero, fmt.Errorf("query %s: decode response: %w", path, err)
	}
	return v, nil
}

// Info returns the chain ID and the last committed height and app hash.
func (c *Client) Info(ctx context.Context) (NodeInfo, error) {
	return query[NodeInfo](ctx, c, QueryInfo, nil)
}

// Params returns the leads, limits, policies, blacklist and upload switch.
func (c *Client) Params(ctx context.Context) (Params, error) {
	return query[Params](ctx, c, QueryParams, nil)
}

// Account returns an account's last used nonce.
func (c *Client) Account(ctx context.Context, a Account) (AccountInfo, error) {
	return query[AccountInfo](ctx, c, QueryAccount, a)
}

// Bag returns a bag with its buckets.
func (c *Client) Bag(ctx context.Context, id BagID) (Bag, error) {
	return query[Bag](ctx, c, QueryBag, id)
}

// Bags returns every bag, ordered by ID, reading them page by page (see
// All).
func (c *Client) Bags(ctx context.Context) ([]Bag, error) {
	return All(ctx, c.BagsPage)
}

// StorageBucket returns a storage bucket with its bags.
func (c *Client) StorageBucket(ctx context.Context, id StorageBucketID) (StorageBucket, error) {
	return query[StorageBucket](ctx, c, QueryStorageBucket, id)
}

// StorageBuckets returns every storage bucket with its bags.
func (c *Client) StorageBuckets(ctx context.Context) ([]StorageBucket, error) {
	return query[[]StorageBucket](ctx, c, QueryStorageBuckets, nil)
}

// DistributionFamily returns a family with its buckets.
func (c *Client) DistributionFamily(ctx context.Context, id FamilyID) (DistributionFamily, error) {
	return query[DistributionFamily](ctx, c, QueryDistributionFamily, id)
}

// DistributionFamilies returns every family with its buckets.
func (c *Client) DistributionFamilies(ctx context.Context) ([]DistributionFamily, error) {
	return query[[]DistributionFamily](ctx, c, QueryDistributionFamilies, nil)
}

// DistributionBucket returns a distribution bucket with its bags.
func (c *Client) DistributionBucket(ctx context.Context, id DistributionBucketID) (DistributionBucket, error) {
	return query[DistributionBucket](ctx, c, QueryDistributionBucket, id)
}

// DataObject returns one data object of a bag.
func (c *Client) DataObject(ctx context.Context, bag BagID, id ObjectID) (DataObject, error) {
	return query[DataObject](ctx, c, QueryObject, ObjectRef{Bag: bag, ID: id})
}

// ObjectByID returns the data object with ID id from whichever bag holds
// it, in one read of the object-ID index (object IDs are unique across
// bags). No object with that ID is ErrObjectNotFound. On a chain started
// before the index (app version 2) an ID the index lacks is plain
// ErrNotFound: it may be an object registered then, whose bag is found only
// by asking DataObject of every bag.
func (c *Client) ObjectByID(ctx context.Context, id ObjectID) (DataObject, error) {
	return query[DataObject](ctx, c, QueryObjectByID, id)
}

// Objects returns every data object of a bag, by ID, reading them page by
// page (see All). An unknown bag is ErrBagNotFound.
func (c *Client) Objects(ctx context.Context, bag BagID) ([]DataObject, error) {
	return All(ctx, func(ctx context.Context, p PageRequest) (Page[DataObject], error) {
		return c.ObjectsPage(ctx, bag, p)
	})
}

// Member returns a member.
func (c *Client) Member(ctx context.Context, id MemberID) (Member, error) {
	return query[Member](ctx, c, QueryMember, id)
}

// Channel returns a channel.
func (c *Client) Channel(ctx context.Context, id ChannelID) (Channel, error) {
	return query[Channel](ctx, c, QueryChannel, id)
}

// Workers returns the workers of a group, by ID.
func (c *Client) Workers(ctx context.Context, g Group) ([]Worker, error) {
	return query[[]Worker](ctx, c, QueryWorkers, g)
}

// Worker returns one worker of a group.
func (c *Client) Worker(ctx context.Context, g Group, id WorkerID) (Worker, error) {
	return query[Worker](ctx, c, QueryWorker, WorkerRef{Group: g, ID: id})
}
