package provider

import (
	"context"
	"slices"
	"sync"

	"github.com/satchel-net/satchel/chain"
)

// fakeChain is an in-memory chainAPI for unit tests of the node's parts
// that only talk to the chain. The integration tests use the real one.
type fakeChain struct {
	mu         sync.Mutex
	bags       map[chain.BagID]chain.Bag
	buckets    map[chain.StorageBucketID]chain.StorageBucket
	objects    map[chain.ObjectRef]chain.DataObject
	params     chain.Params
	submitted  []chain.Msg
	submitted1 chan chain.Msg
	subscribed chan int64
	// failSubmit, when set, decides the error of a submission.
	failSubmit func(chain.Msg) error
}

func newFakeChain() *fakeChain {
	return &fakeChain{
		bags:       map[chain.BagID]chain.Bag{},
		buckets:    map[chain.StorageBucketID]chain.StorageBucket{},
		objects:    map[chain.ObjectRef]chain.DataObject{},
		submitted1: make(chan chain.Msg, 100),
		subscribed: make(chan int64, 1),
	}
}

func (f *fakeChain) Info(context.Context) (chain.NodeInfo, error) {
	return chain.NodeInfo{ChainID: "satchel", Height: 1}, nil
}

func (f *fakeChain) Params(context.Context) (chain.Params, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.params, nil
}

func (f *fakeChain) Bag(_ context.Context, id chain.BagID) (chain.Bag, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bags[id]
	if !ok {
		return b, chain.Errorf(chain.ErrBagNotFound, "bag %s does not exist", id)
	}
	return b, nil
}

func (f *fakeChain) StorageBucket(_ context.Context, id chain.StorageBucketID) (chain.StorageBucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[id]
	if !ok {
		return b, chain.Errorf(chain.ErrStorageBucketNotFound, "storage bucket %d does not exist", id)
	}
	return b, nil
}

func (f *fakeChain) Worker(_ context.Context, g chain.Group, id chain.WorkerID) (chain.Worker, error) {
	return chain.Worker{Group: g, ID: id}, nil
}

func (f *fakeChain) DataObject(_ context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[chain.ObjectRef{Bag: bag, ID: id}]
	if !ok {
		return o, chain.Errorf(chain.ErrObjectNotFound, "data object %d does not exist in bag %s", id, bag)
	}
	return o, nil
}

func (f *fakeChain) Objects(_ context.Context, bag chain.BagID) ([]chain.DataObject, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []chain.DataObject
	for ref, o := range f.objects {
		if ref.Bag == bag {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b chain.DataObject) int { return int(a.ID) - int(b.ID) })
	return out, nil
}

// Submit records msg and applies accept_pending_data_objects like the
// chain: every object must exist, or nothing changes.
func (f *fakeChain) Submit(_ context.Context, _ chain.Key, msg chain.Msg) (chain.Committed, error) {
	f.mu.Lock()
	defer func() {
		f.mu.Unlock()
		f.submitted1 <- msg
	}()
	f.submitted = append(f.submitted, msg)
	if f.failSubmit != nil {
		if err := f.failSubmit(msg); err != nil {
			return chain.Committed{}, err
		}
	}
	m, ok := msg.(chain.MsgAcceptPendingDataObjects)
	if !ok {
		return chain.Committed{}, nil
	}
	for _, id := range m.Objects {
		if _, ok := f.objects[chain.ObjectRef{Bag: m.Bag, ID: id}]; !ok {
			return chain.Committed{}, chain.Errorf(chain.ErrObjectNotFound, "data object %d does not exist in bag %s", id, m.Bag)
		}
	}
	ev := chain.ObjectsAccepted{Bag: m.Bag, Bucket: m.Bucket, Worker: m.Worker}
	for _, id := range m.Objects {
		ref := chain.ObjectRef{Bag: m.Bag, ID: id}
		o := f.objects[ref]
		if !o.Accepted {
			o.Accepted = true
			f.objects[ref] = o
			ev.Objects = append(ev.Objects, id)
		}
	}
	return chain.Committed{Height: 2, Result: chain.TxResult{Events: []chain.Event{chain.NewEvent(ev)}}}, nil
}

func (f *fakeChain) Subscribe(ctx context.Context, from int64) (<-chan chain.BlockEvents, <-chan error) {
	out := make(chan chain.BlockEvents)
	errc := make(chan error, 1)
	select {
	case f.subscribed <- from:
	default:
	}
	go func() {
		<-ctx.Done()
		errc <- ctx.Err()
		close(out)
		close(errc)
	}()
	return out, errc
}

func (f *fakeChain) accepts() []chain.MsgAcceptPendingDataObjects {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []chain.MsgAcceptPendingDataObjects
	for _, m := range f.submitted {
		if a, ok := m.(chain.MsgAcceptPendingDataObjects); ok {
			out = append(out, a)
		}
	}
	return out
}
