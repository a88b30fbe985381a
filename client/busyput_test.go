package client

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
	"github.com/satchel-net/satchel/testnet"
	"github.com/satchel-net/satchel/topics"
)

// busyChunk is the chunk size of the uploads of these tests: the chunks of
// HoldStoreBudget's, so a provider held busy refuses every one.
const busyChunk = 1 << 20

// busyPutNet is a network of three providers whose store budgets are
// limited (testnet.LimitStoreBudget), so HoldStoreBudget can make them busy.
func busyPutNet(t *testing.T) *testnet.Network {
	t.Helper()
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3))
	ctx := testCtx(t)
	for _, p := range net.Providers() {
		if err := p.LimitStoreBudget(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return net
}

// holdStores makes every provider in ps busy for every uploader; the
// returned func ends the holds (and is called at cleanup too).
func holdStores(t *testing.T, ps ...*testnet.Provider) (release func()) {
	t.Helper()
	ctx := testCtx(t)
	var rels []func()
	release = func() {
		for _, r := range rels {
			r()
		}
		rels = nil
	}
	t.Cleanup(release)
	for _, p := range ps {
		r, err := p.HoldStoreBudget(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, r)
	}
	return release
}

// storeBytesIn is how many chunk bytes provider p took over the store
// protocol since it started.
func storeBytesIn(t *testing.T, p *testnet.Provider) float64 {
	t.Helper()
	n, _ := metricsutil.Counter(p.Registry(), "satchel_provider_store_bytes_in_total")
	return n
}

// checkStored reads obj back whole and compares it with data.
func checkStored(t *testing.T, c *Client, net *testnet.Network, obj Object, data []byte) {
	t.Helper()
	var out bytes.Buffer
	if _, err := c.Get(testCtx(t), ObjectRef(net.Bag, obj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("get the object put: %v (%d bytes of %d, equal %v)", err, out.Len(), len(data), bytes.Equal(out.Bytes(), data))
	}
}

// An upload whose providers answer busy for a while (their store budget
// for all uploaders spent by another peer's exchanges) waits for them, as
// reads do, and completes on the same providers once they are free: no
// provider given up, no spare asked, every receipt, the bytes back whole.
func TestNetworkPutWaitsForBusyProviders(t *testing.T) {
	net := busyPutNet(t)
	c := netClient(t, net, t.TempDir())
	ctx := testCtx(t)
	ps := net.Providers()
	release := holdStores(t, ps...)
	refused := func() (n float64) {
		for _, p := range ps {
			n += p.RefusedStores()
		}
		return n
	}
	before := refused()

	const chunks = 6
	data := randomBytes(t, chunks*busyChunk, 31)
	type result struct {
		obj Object
		err error
	}
	done := make(chan result, 1)
	go func() {
		obj, err := c.Put(ctx, net.Bag, bytes.NewReader(data), WithRedundancy(2), WithChunkSize(busyChunk))
		done <- result{obj, err}
	}()
	// Busy until the uploader asked its two targets for every chunk four
	// times (three pauses, 1.75 s), unless the put ends first.
	var res result
	ended := false
	testnet.Wait(t, "the busy providers to refuse the upload's chunks four times", func() bool {
		select {
		case res = <-done:
			ended = true
			return true
		default:
			return refused()-before >= 4*2*chunks
		}
	})
	release()
	if !ended {
		res = <-done
	}
	if res.err != nil {
		t.Fatalf("put while its providers were busy for a while: %v", res.err)
	}
	obj := res.obj
	if len(obj.Providers) != 2 {
		t.Fatalf("put stored on %d providers %v, want 2", len(obj.Providers), obj.Providers)
	}
	var spare *testnet.Provider
	for _, p := range ps {
		if !slices.Contains(obj.Providers, p.Host().ID()) {
			spare = p
		}
	}
	if spare == nil {
		t.Fatalf("no provider left out of %v", obj.Providers)
	}
	if n := storeBytesIn(t, spare); n != 0 {
		t.Fatalf("the spare provider took %v chunk bytes: a busy target was replaced", n)
	}
	checkStored(t, c, net, obj, data)
}

// A provider busy for longer than the upload's busy wait is given up after
// that wait (asked again meanwhile), and a spare takes its place; with no
// spare left that is not busy too, the put fails with ErrProvidersBusy,
// saying to retry later or wait longer.
func TestNetworkPutGivesUpBusyProviderAfterBusyWait(t *testing.T) {
	net := busyPutNet(t)
	ctx := testCtx(t)
	impatient := netClient(t, net, t.TempDir(), WithBusyWait(time.Second))
	bag, err := net.Client.Bag(ctx, net.Bag)
	if err != nil {
		t.Fatal(err)
	}
	var first *testnet.Provider // the upload's first target: its bag's first bucket's
	for _, p := range net.Providers() {
		if len(bag.StorageBuckets) > 0 && p.Bucket == bag.StorageBuckets[0] {
			first = p
		}
	}
	if first == nil {
		t.Fatalf("no provider operates the bag's first bucket (%v)", bag.StorageBuckets)
	}
	holdStores(t, first)

	const chunks = 6
	data := randomBytes(t, chunks*busyChunk, 32)
	before := first.RefusedStores()
	obj, err := impatient.Put(ctx, net.Bag, bytes.NewReader(data), WithRedundancy(2), WithChunkSize(busyChunk), WithReplication(ReplicateDirect))
	if err != nil {
		t.Fatalf("put with one target busy and a spare free: %v", err)
	}
	if len(obj.Providers) != 2 || slices.Contains(obj.Providers, first.Host().ID()) {
		t.Fatalf("put stored on %v; want 2 providers, not the busy one %s", obj.Providers, first.Host().ID())
	}
	// Every chunk was asked of the busy target, then again after each
	// pause of the busy wait (0.25 s, 0.5 s): the third answers refused
	// busy give it up (its stream closed, the others may not arrive).
	// Counting busy answers as failures gives it up on the 12th
	// (targetFailures): at the second.
	if n := first.RefusedStores() - before; n <= 2*chunks {
		t.Fatalf("the busy target refused %v chunk exchanges; want every chunk asked twice and more, waiting before giving it up", n)
	}
	checkStored(t, impatient, net, obj, data)

	// Every provider busy: no spare to turn to.
	var rest []*testnet.Provider
	for _, p := range net.Providers() {
		if p != first {
			rest = append(rest, p)
		}
	}
	holdStores(t, rest...)
	data = randomBytes(t, chunks*busyChunk, 33)
	_, err = impatient.Put(ctx, net.Bag, bytes.NewReader(data), WithRedundancy(2), WithChunkSize(busyChunk))
	var np *NoProviderError
	if !errors.Is(err, ErrProvidersBusy) || !errors.As(err, &np) ||
		!strings.Contains(err.Error(), "run the command again later") || !strings.Contains(err.Error(), "--busy-wait") {
		t.Fatalf("put while every provider stays busy: %v; want ErrProvidersBusy saying to retry later or wait longer", err)
	}
	busy := map[peer.ID]bool{}
	for _, pe := range np.Tried {
		if errors.Is(pe.Err, ErrProvidersBusy) && errors.Is(pe.Err, store.ErrProviderBusy) {
			busy[pe.Peer] = true
		}
	}
	if len(busy) < 2 {
		t.Fatalf("%d providers given up busy (%v); want both targets", len(busy), np.Tried)
	}
	t.Log(err)
}

// busyBind is a provider's busy refusal of a BIND: its budget for all
// uploaders spent. A bind's reservation is small, so a real provider held
// busy for chunks of 1 MiB may still take it; this answers it for sure.
func busyBind() error {
	return &store.RefusedError{Status: storepb.Status_STATUS_REFUSED, Busy: true,
		Reason: `provider busy: its memory budget for all peers (scope "protocol:/satchel/store/1.0.0") is spent; try another provider`}
}

// A bind refused busy is asked again after a pause, not counted a
// failure: the put completes on every provider. One refused busy for
// longer than the busy wait gives the provider up; with no spare, the put
// fails matching ErrProvidersBusy and names the bind.
func TestPutBindWaitsForBusyProviderFake(t *testing.T) {
	net := newFakeNet(t, 2)
	ctx := testCtx(t)
	busy := net.providers[0]
	refusals := 2
	busy.bindHook = func() error { // called with busy.mu held
		if refusals > 0 {
			refusals--
			return busyBind()
		}
		return nil
	}
	data := randomBytes(t, 200<<10, 41)
	obj, err := net.client(t.TempDir()).Put(ctx, net.bag, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("put with a bind refused busy twice: %v", err)
	}
	busy.mu.Lock()
	binds := busy.binds
	busy.mu.Unlock()
	if len(obj.Providers) != 2 || binds != 3 {
		t.Fatalf("put on %d providers after %d binds of the busy one; want 2 providers, 3 binds", len(obj.Providers), binds)
	}

	busy.mu.Lock()
	busy.bindHook = busyBind
	busy.mu.Unlock()
	_, err = net.client(t.TempDir(), WithBusyWait(time.Second)).Put(ctx, net.bag, bytes.NewReader(randomBytes(t, 200<<10, 42)))
	if !errors.Is(err, ErrProvidersBusy) || !errors.Is(err, ErrNoProviderReachable) || !strings.Contains(err.Error(), "bind object") {
		t.Fatalf("put with a bind refused busy for good: %v; want ErrProvidersBusy naming the bind", err)
	}
}

// A consigned provider that answers busy for the whole busy wait is given
// up for a spare; once the object is bound elsewhere the uploader drops the
// provider's contract session (DROP), which ends its grant and returns its
// room now, not when the grant lapses.
func TestNetworkPutDropsSessionOfProviderGivenUpBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3), testnet.Configure(func(c *testnet.Config) { c.Contracts = true }))
	ctx := testCtx(t)
	for _, p := range net.Providers() {
		if err := p.LimitStoreBudget(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c, renter := contractClient(t, net, WithBusyWait(time.Second))
	waitTopic(t, c.host, topics.New(topics.Low, topics.Low, topics.High, topics.High), 3)

	// The first consigned provider is held busy as the negotiation ends,
	// before the upload pushes a chunk. Offers are collected until all three
	// providers' came, or as long as the proposal lives: not
	// DefaultContractWindow's 2 s, which a loaded machine's offers can miss.
	var busy *testnet.Provider
	needs := ContractNeeds{Window: contracts.DefaultTTL, Negotiated: func(n *contracts.Negotiation, err error) {
		if err != nil || len(n.Contracts) == 0 {
			return
		}
		for _, p := range net.Providers() {
			if p.Host().ID() == n.Contracts[0].Contract.ProviderPeer {
				busy = p
			}
		}
		holdStores(t, busy)
	}}
	data := randomBytes(t, 3*busyChunk, 33)
	obj, err := c.PutFile(ctx, net.Bag, writeTemp(t, data), WithRedundancy(2), WithChunkSize(busyChunk),
		WithReplication(ReplicateDirect), WithContracts(renter, needs))
	if err != nil {
		t.Fatalf("put with a consigned provider busy and a spare free: %v", err)
	}
	if busy == nil {
		t.Fatal("the negotiation consigned no provider")
	}
	if slices.Contains(obj.Providers, busy.Host().ID()) {
		t.Fatalf("put stored on the busy provider %s (holders %v)", busy.Host().ID(), obj.Providers)
	}
	resp, _ := busy.Contracts()
	if n := resp.OpenGrants(); n != 0 {
		t.Errorf("the provider given up busy keeps %d grants open after the put; want its session dropped", n)
	}
	checkStored(t, c, net, obj, data)
}
