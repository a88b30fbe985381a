package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
)

func randomBytes(t testing.TB, n int, seed uint64) []byte {
	t.Helper()
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// lastProgress keeps the last progress report and checks reports arrive
// one at a time.
type lastProgress struct {
	mu      sync.Mutex
	p       Progress
	calls   int
	running atomic.Int32
	t       testing.TB
}

func (l *lastProgress) fn(p Progress) {
	if l.running.Add(1) != 1 {
		l.t.Error("progress callbacks ran concurrently")
	}
	defer l.running.Add(-1)
	l.mu.Lock()
	l.p = p
	l.calls++
	l.mu.Unlock()
}

func (l *lastProgress) get() Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p
}

func TestPutGetFake(t *testing.T) {
	net := newFakeNet(t, 3)
	c := net.client(t.TempDir())
	ctx := testCtx(t)
	data := randomBytes(t, 2<<20+12345, 1)
	lp := &lastProgress{t: t}
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data), WithProgress(lp.fn))
	if err != nil {
		t.Fatal(err)
	}
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	if !obj.CID.Equals(res.Root) || obj.Size != int64(len(data)) || len(obj.Providers) != 3 {
		t.Fatalf("object %+v, want root %s size %d on 3 providers", obj, res.Root, len(data))
	}
	for _, p := range net.providers {
		for _, ch := range res.Chunks {
			if _, ok := p.blocks[ch.CID]; !ok {
				t.Fatalf("provider %s lacks chunk %s", p.id(), ch.CID)
			}
		}
	}
	n := len(res.Chunks)
	p := lp.get()
	if p.File != FileAccepted || p.Chunks != n || p.ChunkStates[ChunkUploaded] != n || p.Bytes != int64(len(data)) {
		t.Fatalf("final progress %+v", p)
	}
	if p.Links[LinkSigned] != 3*n || p.Links[LinkFailed] != 0 || p.Sent != 3*int64(len(data)) {
		t.Fatalf("final links %v sent %d, want %d signed", p.Links, p.Sent, 3*n)
	}
	for s := LinkCreated; s < LinkSigned; s++ {
		if p.Links[s] != 0 {
			t.Fatalf("links left in state %s: %v", s, p.Links)
		}
	}

	var out bytes.Buffer
	gp := &lastProgress{t: t}
	if _, err := c.Get(ctx, ObjectRef(net.bag, obj.ID), &out, WithProgress(gp.fn)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("get returned other bytes")
	}
	if g := gp.get(); g.Bytes != int64(len(data)) || g.TotalBytes != int64(len(data)) || g.Op != OpGet {
		t.Fatalf("get progress %+v", g)
	}
	// By CID without a bag, and by object ID without a bag.
	out.Reset()
	if _, err := c.Get(ctx, CIDRef(obj.CID, ""), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("get by CID: %v", err)
	}
	out.Reset()
	if _, err := c.Get(ctx, ObjectRef("", obj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("get by object without bag: %v", err)
	}
	// Ranges: inside a chunk, across chunks, over the end, empty.
	r, err := c.Open(ctx, ObjectRef(net.bag, obj.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, rg := range [][2]int64{{0, 1}, {100, 1000}, {64<<10 - 10, 20}, {65 << 10, 700 << 10}, {int64(len(data)) - 5, 100}, {int64(len(data)), 10}} {
		out.Reset()
		n, err := r.WriteRange(ctx, &out, rg[0], rg[1])
		if err != nil {
			t.Fatalf("range %v: %v", rg, err)
		}
		end := min(rg[0]+rg[1], int64(len(data)))
		if n != end-rg[0] || !bytes.Equal(out.Bytes(), data[rg[0]:end]) {
			t.Fatalf("range %v: got %d bytes, want %d", rg, n, end-rg[0])
		}
	}
	buf := make([]byte, 5000)
	if n, err := r.ReadAt(buf, 300000); err != nil || n != 5000 || !bytes.Equal(buf, data[300000:305000]) {
		t.Fatalf("ReadAt: %d %v", n, err)
	}
	if n, err := r.ReadAt(buf, int64(len(data))-10); err != io.EOF || n != 10 {
		t.Fatalf("ReadAt at end: %d %v", n, err)
	}
}

// TestPutResumeFake interrupts PutFile while its chunks stream out (before
// the root is known, so before registration) and runs it again: the second
// run registers the object once and sends no chunk a provider already
// holds; what it skipped counts as resumed.
func TestPutResumeFake(t *testing.T) {
	net := newFakeNet(t, 3)
	dir := t.TempDir()
	data := randomBytes(t, 3<<20, 2)
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	total := (len(data) + 64<<10 - 1) / (64 << 10)

	// First run: stop once about a third of the links are signed.
	c1 := net.client(dir, WithWindow(4))
	ctx, cancel := context.WithCancel(testCtx(t))
	var once sync.Once
	_, err := c1.PutFile(ctx, net.bag, path, WithProgress(func(p Progress) {
		if p.Links[LinkSigned] >= total {
			once.Do(cancel)
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted put: %v", err)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, p := range net.providers {
		stored += len(p.blocks)
		p.mu.Lock()
		p.pushes, p.stores = 0, 0
		p.mu.Unlock()
	}
	if stored == 0 || stored >= 3*total {
		t.Fatalf("first run stored %d of %d chunk copies; the test needs a partial upload", stored, 3*total)
	}
	if n := net.chain.submits.Load(); n != 1 {
		t.Fatalf("the interrupted put submitted %d transactions; without a contract it registers (once) before it pushes", n)
	}

	// Second run: every chunk copy the providers lack is sent once; those
	// they hold are answered "already stored" and cost no bytes.
	c2 := net.client(dir)
	lp := &lastProgress{t: t}
	obj, err := c2.PutFile(testCtx(t), net.bag, path, WithProgress(lp.fn))
	if err != nil {
		t.Fatal(err)
	}
	if n := net.chain.submits.Load(); n != 1 {
		t.Fatalf("%d transactions submitted, want the one registration", n)
	}
	sent := 0
	for _, p := range net.providers {
		sent += p.storeCount()
	}
	if sent != 3*total-stored {
		t.Fatalf("second run sent %d chunk copies; %d of %d were stored before", sent, stored, 3*total)
	}
	final := lp.get()
	// A copy the journal holds a receipt for needs no storage link; every
	// other copy gets one, sent or answered "already stored".
	if final.Resumed == 0 || final.Resumed > stored/3+1 || final.Chunks != total || final.Links[LinkSigned] < sent || final.Links[LinkSigned] > 3*total {
		t.Fatalf("final progress %+v; %d chunk copies were stored before", final, stored)
	}
	if final.Sent != int64(sent)*64<<10 {
		t.Fatalf("progress counts %d bytes sent; %d chunk copies of 64 KiB went out", final.Sent, sent)
	}
	if obj.Resumed != final.Resumed || len(obj.Providers) != 3 {
		t.Fatalf("object %+v", obj)
	}
	// The state of a finished upload is gone.
	if _, ok, _ := c2.journal.record(uploadKey{Bag: net.bag, Root: obj.CID, ChunkSize: 64 << 10}); ok {
		t.Fatal("finished upload left its state behind")
	}
}

// TestPutResumeAfterRegisterFake interrupts PutFile once the object is
// registered: running it again finds that object through the upload
// journal instead of registering the content a second time.
func TestPutResumeAfterRegisterFake(t *testing.T) {
	net := newFakeNet(t, 3)
	dir := t.TempDir()
	data := randomBytes(t, 1<<20, 3)
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c1 := net.client(dir)
	ctx, cancel := context.WithCancel(testCtx(t))
	var once sync.Once
	_, err := c1.PutFile(ctx, net.bag, path, WithProgress(func(p Progress) {
		if p.ObjectKnown {
			once.Do(cancel)
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted put: %v", err)
	}
	_ = c1.Close()
	if n := net.chain.submits.Load(); n != 1 {
		t.Fatalf("first run submitted %d transactions, want its registration", n)
	}
	c2 := net.client(dir)
	obj, err := c2.PutFile(testCtx(t), net.bag, path)
	if err != nil {
		t.Fatal(err)
	}
	if n := net.chain.submits.Load(); n != 1 {
		t.Fatalf("%d transactions after resuming; the object was registered again", n)
	}
	// Without a contract nothing is pushed before the registration, so the
	// first run left no chunk behind; the object it registered is reused.
	if obj.ID != 0 {
		t.Fatalf("resumed object %+v: want object 0", obj)
	}
}

func TestPutProviderDiesFake(t *testing.T) {
	for _, tc := range []struct {
		name      string
		providers int
		want      int // providers holding the object at the end
	}{
		{"no spare: completes with the live ones", 3, 2},
		{"spare replaces it", 4, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := newFakeNet(t, tc.providers)
			victim := net.providers[1]
			var n atomic.Int32
			victim.hook = func(store.ChunkPush) error {
				if n.Add(1) == 10 {
					victim.kill()
					return errors.New("stream reset")
				}
				return nil
			}
			c := net.client(t.TempDir())
			data := randomBytes(t, 2<<20, 3)
			lp := &lastProgress{t: t}
			// The caller accepts 2 of its 3: the upload completes degraded.
			obj, err := c.Put(testCtx(t), net.bag, bytes.NewReader(data), WithRedundancy(3), WithMinRedundancy(2), WithProgress(lp.fn))
			if err != nil {
				t.Fatal(err)
			}
			if len(obj.Providers) != tc.want || obj.Degraded() != (tc.want < obj.Redundancy) {
				t.Fatalf("object on %d providers (degraded %v, redundancy %d), want %d", len(obj.Providers), obj.Degraded(), obj.Redundancy, tc.want)
			}
			for _, p := range obj.Providers {
				if p == victim.id() {
					t.Fatal("the dead provider is listed")
				}
			}
			if p := lp.get(); p.Links[LinkFailed] == 0 || p.ChunkStates[ChunkUploaded] != p.TotalChunks {
				t.Fatalf("progress %+v", p)
			}
		})
	}
}

func TestPutRetriesRefusals(t *testing.T) {
	net := newFakeNet(t, 2)
	// The providers' view of the chain lags: each refuses a chunk's first
	// request.
	for _, p := range net.providers {
		seen := map[int]bool{}
		var mu sync.Mutex
		p.hook = func(ch store.ChunkPush) error {
			mu.Lock()
			defer mu.Unlock()
			if !seen[ch.Index] {
				seen[ch.Index] = true
				return &store.RefusedError{Status: storepb.Status_STATUS_REFUSED, Reason: "object not registered"}
			}
			return nil
		}
	}
	c := net.client("")
	if _, err := c.Put(testCtx(t), net.bag, bytes.NewReader(randomBytes(t, 300<<10, 4))); err != nil {
		t.Fatal(err)
	}
}

func TestUploadStreamFake(t *testing.T) {
	net := newFakeNet(t, 3)
	var sessions sync.Map
	for _, p := range net.providers {
		p.hook = func(ch store.ChunkPush) error {
			// No contract: the stream is spooled, the object registered,
			// then every chunk pushed with its proof, in no session.
			if len(ch.Session) != 0 || len(ch.Proof.Blocks) == 0 {
				return errors.New("a chunk of an upload without a contract came in a session or without a proof")
			}
			sessions.Store(string(ch.Session), true)
			return nil
		}
	}
	c := net.client("")
	data := randomBytes(t, 1<<20+777, 5)
	lp := &lastProgress{t: t}
	u, err := c.Upload(testCtx(t), net.bag, WithProgress(lp.fn))
	if err != nil {
		t.Fatal(err)
	}
	// A reader that is not an io.ReaderAt, written in odd pieces.
	if _, err := io.CopyBuffer(u, io.LimitReader(bytes.NewReader(data), int64(len(data))), make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	obj, err := u.Commit()
	if err != nil {
		t.Fatal(err)
	}
	res, _ := chunker.Sum(context.Background(), bytes.NewReader(data), chunker.WithChunkSize(64<<10))
	if !obj.CID.Equals(res.Root) || len(obj.Providers) != 3 {
		t.Fatalf("object %+v, want %s", obj, res.Root)
	}
	n := 0
	sessions.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d session IDs used, want the empty one", n)
	}
	if _, err := u.Commit(); !errors.Is(err, ErrCommitted) {
		t.Fatalf("second commit: %v", err)
	}
	if p := lp.get(); p.File != FileAccepted || p.Chunks != len(res.Chunks) {
		t.Fatalf("progress %+v", p)
	}
	// Put with a plain reader streams too.
	obj2, err := c.Put(testCtx(t), net.bag, io.MultiReader(bytes.NewReader(data)))
	if err != nil || !obj2.CID.Equals(res.Root) || obj2.ID == obj.ID {
		t.Fatalf("streamed put: %+v %v", obj2, err)
	}
	// An aborted upload releases the client.
	u, err = c.Upload(testCtx(t), net.bag)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(data[:100]); err != nil {
		t.Fatal(err)
	}
	u.Abort()
	if _, err := u.Write(data); err == nil {
		t.Fatal("write after abort succeeded")
	}
}

func TestGetSkipsBadProvidersFake(t *testing.T) {
	net := newFakeNet(t, 3)
	c := net.client("")
	ctx := testCtx(t)
	data := randomBytes(t, 1<<20, 6)
	obj, err := c.Put(ctx, net.bag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	net.providers[0].lie = true
	net.providers[1].kill()
	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.bag, obj.ID), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("wrong bytes")
	}
	// With every provider bad, the error names them.
	net.providers[2].lie = true
	_, err = c.Get(ctx, ObjectRef(net.bag, obj.ID), io.Discard)
	var npe *NoProviderError
	if !errors.As(err, &npe) || !errors.Is(err, ErrNoProviderReachable) || len(npe.Tried) < 3 {
		t.Fatalf("all bad: %v", err)
	}
	t.Log(err)
}

func TestPutErrorsFake(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	ctx := testCtx(t)
	data := bytes.NewReader(randomBytes(t, 1000, 7))

	if _, err := c.Put(ctx, chain.ChannelBag(99), data); !errors.Is(err, chain.ErrBagNotFound) {
		t.Fatalf("unknown bag: %v", err)
	}
	if _, err := c.Put(ctx, net.bag, bytes.NewReader(nil)); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty: %v", err)
	}
	net.chain.params.Limits.MaxDataObjectSize = 10
	if _, err := c.Put(ctx, net.bag, data); !errors.Is(err, chain.ErrObjectTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	net.chain.params.Limits.MaxDataObjectSize = 1 << 40
	net.chain.params.UploadingBlocked = true
	if _, err := c.Put(ctx, net.bag, data); !errors.Is(err, chain.ErrUploadingBlocked) {
		t.Fatalf("blocked: %v", err)
	}
	net.chain.params.UploadingBlocked = false
	for _, p := range net.providers {
		p.kill()
	}
	_, err := c.Put(ctx, net.bag, data)
	var npe *NoProviderError
	if !errors.Is(err, ErrNoProviderReachable) || !errors.As(err, &npe) || len(npe.Tried) != 2 {
		t.Fatalf("dead providers: %v", err)
	}
	for _, p := range net.providers {
		if !bytes.Contains([]byte(err.Error()), []byte(shortPeer(p.id()))) {
			t.Fatalf("error does not name %s: %v", p.id(), err)
		}
	}
	noKey, err := New(Config{Chain: net.chain, Host: c.host})
	if err != nil {
		t.Fatal(err)
	}
	defer noKey.Close()
	if _, err := noKey.Put(ctx, net.bag, data); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no key: %v", err)
	}
}

func TestTrackerStates(t *testing.T) {
	var got []Progress
	tr := newTracker(OpPut, func(p Progress) { got = append(got, p) }, progressInterval)
	tr.startChunks([]int32{10, 10, 5}, 25, 2)
	tr.chunkStarted(0)
	tr.link(-1, LinkCreated)
	tr.link(LinkCreated, LinkSendingData)
	tr.link(LinkSendingData, LinkSigned)
	tr.receipt(0, false)
	p := tr.snapshot()
	if p.ChunkStates != [3]int{2, 1, 0} || p.Chunks != 0 || p.Links[LinkSigned] != 1 || p.Links[LinkCreated] != 0 {
		t.Fatalf("after one receipt: %+v", p)
	}
	tr.receipt(0, false)
	tr.receipt(2, true)
	tr.receipt(2, true)
	p = tr.snapshot()
	if p.ChunkStates != [3]int{1, 0, 2} || p.Chunks != 2 || p.Bytes != 15 || p.Resumed != 1 {
		t.Fatalf("after receipts: %+v", p)
	}
	tr.receipt(1, false)
	tr.setWant(1) // a provider was lost: one receipt is enough now
	p = tr.snapshot()
	if p.ChunkStates != [3]int{0, 0, 3} || p.Bytes != 25 {
		t.Fatalf("after setWant: %+v", p)
	}
	if len(got) == 0 || got[len(got)-1].ChunkStates != p.ChunkStates {
		t.Fatal("final state not reported")
	}
	for _, s := range []interface{ String() string }{FileAccepted, ChunkUploading, LinkAskingForSignature, OpGet} {
		if s.String() == "unknown" || s.String() == "" {
			t.Fatalf("%#v has no name", s)
		}
	}
}

// TestPutLinkStatesFake follows one storage link through the progress
// reports of a put: the Point Network StorageLink states in order, and a
// chunk the provider already holds going from created to data received.
func TestPutLinkStatesFake(t *testing.T) {
	net := newFakeNet(t, 1)
	data := randomBytes(t, 10<<10, 9) // one chunk, one provider: one link
	for _, tc := range []struct {
		name string
		want []LinkState
	}{
		{"fresh", []LinkState{LinkCreated, LinkAgreed, LinkSendingSegmentMap, LinkSendingData,
			LinkDataReceived, LinkAskingForSignature, LinkSigned}},
		{"already stored", []LinkState{LinkCreated, LinkDataReceived, LinkAskingForSignature, LinkSigned}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := net.client(t.TempDir()) // a fresh journal: the second put pushes again
			c.progressEvery = 0          // every change reported
			var trail linkTrail
			if _, err := c.Put(testCtx(t), net.bag, bytes.NewReader(data), WithProgress(trail.fn(t))); err != nil {
				t.Fatal(err)
			}
			if got := trail.get(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("link went %v, want %v", got, tc.want)
			}
		})
	}
}

// linkTrail records the states the only storage link of an upload goes
// through, from its progress reports.
type linkTrail struct {
	mu   sync.Mutex
	seen []LinkState
}

func (l *linkTrail) fn(t testing.TB) func(Progress) {
	return func(p Progress) {
		l.mu.Lock()
		defer l.mu.Unlock()
		links, at := 0, LinkState(-1)
		for s, n := range p.Links {
			links += n
			if n > 0 {
				at = LinkState(s)
			}
		}
		switch {
		case links > 1:
			t.Errorf("%d links in %v, want one", links, p.Links)
		case links == 1 && (len(l.seen) == 0 || l.seen[len(l.seen)-1] != at):
			l.seen = append(l.seen, at)
		}
	}
}

func (l *linkTrail) get() []LinkState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LinkState(nil), l.seen...)
}

// TestLinkSteps maps the store exchange's steps, as
// store.Stream.Push reports them, to storage link states.
func TestLinkSteps(t *testing.T) {
	const (
		req    = store.PushRequested
		agreed = store.PushAgreed
		stored = store.PushAlreadyStored
		segs   = store.PushSegmentsSent
		sent   = store.PushDataSent
		sign   = store.PushSignSent
		segsOK = store.PushSegmentsAccepted
		recvd  = store.PushDataReceived
		signed = store.PushSigned
	)
	for _, tc := range []struct {
		name  string
		steps []store.PushStep
		want  []LinkState
	}{
		{"fresh", []store.PushStep{req, agreed, segs, sent, sign, segsOK, recvd, signed},
			[]LinkState{LinkAgreed, LinkSendingSegmentMap, LinkSendingData, LinkDataReceived, LinkAskingForSignature}},
		{"already stored", []store.PushStep{req, stored, sign, signed},
			[]LinkState{LinkDataReceived, LinkAskingForSignature}},
		{"stored meanwhile", []store.PushStep{req, agreed, segs, sent, sign, stored, signed},
			[]LinkState{LinkAgreed, LinkSendingSegmentMap, LinkSendingData, LinkDataReceived, LinkAskingForSignature}},
		{"refused", []store.PushStep{req}, nil},
		{"failed after data", []store.PushStep{req, agreed, segs, sent, sign, segsOK},
			[]LinkState{LinkAgreed, LinkSendingSegmentMap, LinkSendingData}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []LinkState
			tr := newTracker(OpPut, func(p Progress) {
				for s, n := range p.Links {
					if n == 1 && LinkState(s) != LinkCreated {
						got = append(got, LinkState(s))
					}
				}
			}, 0)
			tr.link(-1, LinkCreated)
			l := &linkSteps{tr: tr, state: LinkCreated}
			for _, s := range tc.steps {
				l.step(s)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("link went %v, want %v", got, tc.want)
			}
			if p := tr.snapshot(); p.Links[l.state] != 1 {
				t.Fatalf("tracker counts %v, want one link %s", p.Links, l.state)
			}
		})
	}
}

func TestJournal(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	root := chunker.ChunkCID([]byte("x"))
	k := uploadKey{Bag: chain.ChannelBag(1), Root: root, ChunkSize: 1 << 20}
	other := uploadKey{Bag: chain.ChannelBag(2), Root: root, ChunkSize: 1 << 20}
	if _, ok, err := j.record(k); ok || err != nil {
		t.Fatalf("empty journal: %v %v", ok, err)
	}
	if err := j.putRecord(k, uploadRecord{Object: 7, Registered: true, Size: 3}); err != nil {
		t.Fatal(err)
	}
	p1, p2 := peer.ID("\x00\x01a"), peer.ID("\x00\x01b")
	for i, p := range []peer.ID{p1, p2, p1} {
		if err := j.addReceipt(k, i, p, &storepb.Receipt{ObjectId: 7, Cid: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.addReceipt(other, 0, p1, &storepb.Receipt{}); err != nil {
		t.Fatal(err)
	}
	if err := j.markBound(k, p2); err != nil {
		t.Fatal(err)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	j, err = openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	rec, ok, err := j.record(k)
	if !ok || err != nil || rec.Object != 7 || !rec.Registered {
		t.Fatalf("record %+v %v %v", rec, ok, err)
	}
	got := map[peer.ID][]int{}
	if err := j.receipts(k, func(i int, p peer.ID, r *storepb.Receipt) error {
		got[p] = append(got[p], i)
		if r.GetObjectId() != 7 {
			t.Fatalf("receipt %v", r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got[p1]) != 2 || len(got[p2]) != 1 {
		t.Fatalf("receipts %v", got)
	}
	if b, _ := j.bound(k); !b[p2] || b[p1] {
		t.Fatalf("bound %v", b)
	}
	if err := j.forget(k); err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = j.receipts(k, func(int, peer.ID, *storepb.Receipt) error { n++; return nil })
	if _, ok, _ := j.record(k); ok || n != 0 {
		t.Fatal("forget left state")
	}
	n = 0
	_ = j.receipts(other, func(int, peer.ID, *storepb.Receipt) error { n++; return nil })
	if n != 1 {
		t.Fatal("forget removed another upload's receipts")
	}
}

func TestParseRef(t *testing.T) {
	c := chunker.ChunkCID([]byte("hello"))
	for _, tc := range []struct {
		in   string
		want Ref
		bad  bool
	}{
		{in: "12", want: ObjectRef(chain.ChannelBag(1), 12)},
		{in: c.String(), want: CIDRef(c, chain.ChannelBag(1))},
		{in: "not-a-cid", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseRef(tc.in, chain.ChannelBag(1))
		if tc.bad {
			if err == nil {
				t.Fatalf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || got.HasObject != tc.want.HasObject || got.Object != tc.want.Object || !got.CID.Equals(tc.want.CID) && tc.want.CID.Defined() {
			t.Fatalf("%q: %+v %v", tc.in, got, err)
		}
	}
}

// TestPutFileChangedFake changes the file after its stream pass, while a
// provider that replaces a lost one is given the chunks read again: the
// upload fails with ErrFileChanged, not with a provider blamed for bytes
// that do not match.
func TestPutFileChangedFake(t *testing.T) {
	net := newFakeNet(t, 2)
	data := randomBytes(t, 1<<20, 8)
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// The provider pushed to first dies; the other, its replacement,
	// changes the file when its first chunk arrives.
	var mu sync.Mutex
	var first *fakeProvider
	var change sync.Once
	for _, p := range net.providers {
		p.hook = func(store.ChunkPush) error {
			mu.Lock()
			if first == nil {
				first = p
			}
			dies := first == p
			mu.Unlock()
			if dies {
				p.kill()
				return errors.New("stream reset")
			}
			change.Do(func() {
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Error(err)
					return
				}
				defer f.Close()
				if _, err := f.WriteAt(bytes.Repeat([]byte{1}, 4096), 900<<10); err != nil {
					t.Error(err)
				}
			})
			return nil
		}
	}
	c := net.client("", WithWindow(2))
	_, err := c.PutFile(testCtx(t), net.bag, path, WithRedundancy(1))
	if !errors.Is(err, ErrFileChanged) {
		t.Fatalf("err %v, want ErrFileChanged", err)
	}
	var np *NoProviderError
	if errors.As(err, &np) {
		t.Fatalf("the provider was blamed for the file's change: %v", err)
	}
}

// countingReaderAt serves size generated bytes and counts what was read.
type countingReaderAt struct {
	size int64
	read atomic.Int64
}

func (r *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.size-off))
	for i := range n {
		p[i] = byte((off + int64(i)) * 7 >> 3)
	}
	r.read.Add(int64(n))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *countingReaderAt) Read([]byte) (int, error) { return 0, errors.New("read by offset only") }

func (r *countingReaderAt) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		return off, nil
	case io.SeekEnd:
		return r.size + off, nil
	}
	return 0, nil
}

// TestPutCancelWithoutTargetsFake: once every provider of a file's stream
// is lost the content is still hashed (to register and re-push later), but
// cancelling the upload stops the reading at once.
func TestPutCancelWithoutTargetsFake(t *testing.T) {
	net := newFakeNet(t, 1)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	p := net.providers[0]
	p.hook = func(store.ChunkPush) error {
		p.kill()
		return errors.New("stream reset")
	}
	src := &countingReaderAt{size: 1 << 30}
	c := net.client("", WithWindow(2))
	// Cancel once the provider is given up and a good part of the content
	// was read past it.
	go func() {
		for src.read.Load() < src.size/4 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := c.Put(ctx, net.bag, src)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if n := src.read.Load(); n >= src.size {
		t.Fatalf("read all %d bytes after the cancel", n)
	}
}

// TestDropOnGiveUpFake: an upload given up for good has every provider drop
// its session (DROP) — a blacklisted file, a streamed upload aborted — while
// an interrupted file keeps its chunks at the providers for the next run.
func TestDropOnGiveUpFake(t *testing.T) {
	heldBlocks := func(net *fakeNet) int {
		n := 0
		for _, p := range net.providers {
			p.mu.Lock()
			n += len(p.blocks)
			p.mu.Unlock()
		}
		return n
	}
	drops := func(net *fakeNet) int {
		n := 0
		for _, p := range net.providers {
			p.mu.Lock()
			n += len(p.drops)
			p.mu.Unlock()
		}
		return n
	}
	data := randomBytes(t, 1<<20, 12)
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := chunker.Sum(context.Background(), bytes.NewReader(data), chunker.WithChunkSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}

	// Blacklisted: known only once the stream is through; dropped.
	net := newFakeNet(t, 3)
	net.chain.mu.Lock()
	net.chain.params.Blacklist = []string{res.Root.String()}
	net.chain.mu.Unlock()
	if _, err := net.client("").PutFile(testCtx(t), net.bag, path); !errors.Is(err, chain.ErrBlacklisted) {
		t.Fatalf("blacklisted put: %v", err)
	}
	// Without a contract nothing was pushed before the root was known.
	if n, held := drops(net), heldBlocks(net); n != 0 || held != 0 {
		t.Fatalf("blacklisted put: %d sessions dropped, %d blocks held; want none pushed", n, held)
	}

	// Interrupted: kept.
	net = newFakeNet(t, 3)
	ctx, cancel := context.WithCancel(testCtx(t))
	var once sync.Once
	_, err = net.client(t.TempDir()).PutFile(ctx, net.bag, path, WithProgress(func(p Progress) {
		if p.Links[LinkSigned] > 0 {
			once.Do(cancel)
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted put: %v", err)
	}
	if n := drops(net); n != 0 {
		t.Fatalf("an interrupted file upload dropped %d sessions; the next run needs them", n)
	}

	// A stream aborted: nothing to drop.
	heldBefore := heldBlocks(net)
	u, err := net.client("").Upload(testCtx(t), net.bag)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(data[:200<<10]); err != nil {
		t.Fatal(err)
	}
	u.Abort()
	// A stream without a contract is spooled: nothing reached a provider.
	if n, held := drops(net), heldBlocks(net); n != 0 || held != heldBefore {
		t.Fatalf("aborted stream: %d sessions dropped, %d blocks held; want none pushed", n, held)
	}
}

// TestUploadNamesOperatorAgainFake: an upload short of providers while the
// chain, read a block behind, names no operator for a bucket reads that
// bucket again, fresh, and stores on the operator it names now; the
// bucket of the provider it reached is read once, that of the provider it
// found unreachable once more, after the next block only (it may have
// moved to a new port).
func TestUploadNamesOperatorAgainFake(t *testing.T) {
	net := newFakeNet(t, 3)
	c := net.client("")
	c.chain = blockChain{net.chain}
	ctx := testCtx(t)
	net.chain.mu.Lock()
	net.chain.unpublished[2] = 1
	net.chain.mu.Unlock()
	_ = net.providers[1].host.Close() // unreachable: connecting fails

	obj, err := c.Put(ctx, net.bag, bytes.NewReader(randomBytes(t, 200<<10, 3)), WithMinRedundancy(2))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(obj.Providers, net.providers[2].id()) || len(obj.Providers) != 2 {
		t.Fatalf("stored on %v; want providers 0 and 2 (2 named by the fresh read)", obj.Providers)
	}
	net.chain.mu.Lock()
	reads := maps.Clone(net.chain.bucketReads)
	net.chain.mu.Unlock()
	if reads[0] != 1 || reads[1] != 2 || reads[2] != 2 {
		t.Fatalf("bucket reads %v; want bucket 0 read once, bucket 1 twice (again after a block), bucket 2 twice (again fresh)", reads)
	}
}
