package provider

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/client"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/p2p"
	p2ptestnet "github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// diskFullServer is the part of a Server that noSpace uses, on a block
// store in dir, logging to a buffer.
func diskFullServer(t *testing.T, dir string) (*Server, *bytes.Buffer) {
	t.Helper()
	bs, err := blockstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	var logs bytes.Buffer
	s := &Server{bs: bs, log: slog.New(slog.NewTextHandler(&logs, nil))}
	s.full = &noSpace{s: s}
	m, err := newMetrics(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	s.m = m
	return s, &logs
}

// A write a full disk failed is counted and logged at Warn with the fix,
// once a minute however many fail; other errors are neither.
func TestNoSpaceNote(t *testing.T) {
	s, logs := diskFullServer(t, t.TempDir())
	full := fmt.Errorf("blockstore: put: %w", &fs.PathError{Op: "write", Path: "packs/00000002.pack", Err: syscall.ENOSPC})
	for range 3 {
		err := s.full.note("upload", full)
		if err.Error() != full.Error() || !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, store.ErrNoSpace) {
			t.Fatalf("note returned %v; want the error's text, matching ENOSPC and store.ErrNoSpace", err)
		}
	}
	other := errors.New("blockstore: put: input/output error")
	if err := s.full.note("sync", other); err != other || s.full.note("sync", nil) != nil {
		t.Fatal("note changed another error or nil")
	}
	if n := counterValue(s.m.noSpaceWrites.WithLabelValues("upload")); n != 3 {
		t.Errorf("disk full writes counted %v, want 3", n)
	}
	if n := counterValue(s.m.noSpaceWrites.WithLabelValues("sync")); n != 0 {
		t.Errorf("another error counted as a full disk (%v)", n)
	}
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "the disk is full") ||
		!strings.Contains(out, "free disk space") || !strings.Contains(out, "set-bucket-limits") || !strings.Contains(out, "op=upload") {
		t.Errorf("want one Warn with the fix, got:\n%s", out)
	}
	// A minute later it warns again.
	s.full.last = time.Now().Add(-noSpaceWarnEvery)
	s.full.note("upload", full)
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Errorf("%d warnings after a minute, want 2", n)
	}
	if d := s.diskStatus(); d == nil || d.Free == 0 || d.Used == 0 {
		t.Errorf("disk status of a temp dir: %+v", d)
	}
}

// smallDisk mounts a 2 MiB tmpfs on a temporary directory and returns it,
// skipping the test where that cannot be done (it takes root).
func smallDisk(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full disk needs a small tmpfs, which only root can mount")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// On a file system that really fills (a small tmpfs; root only), the store
// protocol's writes fail with ENOSPC and the node warns with the fix.
func TestNoSpaceUpload(t *testing.T) {
	s, logs := diskFullServer(t, smallDisk(t))
	b := diskFullBlocks{s.bs.ForProtocols(), s.full}
	sess := store.Session{ID: []byte("diskfull-session"), Bag: "dynamic:member:1", Expiry: time.Now().Add(time.Hour)}
	var err error
	for i := 0; i < 64 && err == nil; i++ {
		data := make([]byte, 64<<10)
		rand.Read(data)
		err = b.PutInSession(sess, chunker.ChunkCID(data), data)
	}
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, store.ErrNoSpace) {
		t.Fatalf("4 MiB into a 2 MiB file system: %v; want ENOSPC, matching store.ErrNoSpace", err)
	}
	if n := counterValue(s.m.noSpaceWrites.WithLabelValues("upload")); n < 1 {
		t.Errorf("disk full writes counted %v", n)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "set-bucket-limits") {
		t.Errorf("no Warn with the fix:\n%s", out)
	}
	if d := s.diskStatus(); d == nil || d.Free >= 64<<10 {
		t.Errorf("disk status of a full file system: %+v", d)
	}
}

// counterValue reads counter c.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// fullProvider serves the store protocol on h as the node does, its block
// store on a 2 MiB tmpfs written through diskFullBlocks, taking the
// sessions grants names for bag.
func fullProvider(t *testing.T, h *p2p.Host, bag chain.BagID, grants UploadGrants) *Server {
	t.Helper()
	s, _ := diskFullServer(t, smallDisk(t))
	f := newFakeChain()
	f.bags[bag] = chain.Bag{ID: bag, StorageBuckets: []chain.StorageBucketID{1}}
	s.h, s.auth = h, newChainAuth(f, 1)
	s.SetUploadGrants(grants)
	store.NewHandler(diskFullBlocks{s.bs.ForProtocols(), s.full}, s.auth, h.Libp2p().Peerstore().PrivKey(h.ID())).Register(h.Protocol())
	return s
}

// A real provider whose disk fills answers the chunk it cannot write
// FAILED with no_space set: the uploader's error matches store.ErrNoSpace
// and the client's advice names the provider's disk, whatever the
// system's words. A pipeline head relays the hop's full disk the same way.
func TestNoSpaceReplyOverTheWire(t *testing.T) {
	net := p2ptestnet.New(t, 3)
	rh := net.Host(0)
	const bag = chain.BagID("dynamic:channel:1")
	headSess, hopSess := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	grants := func(session []byte) *fixedGrants {
		var s [16]byte
		copy(s[:], session)
		return &fixedGrants{m: map[[16]byte]contracts.Grant{s: {Session: s, Bag: bag, MaxBytes: 1 << 30,
			Expires: time.Now().Add(time.Hour), Renter: rh.ID(), RenterKey: rh.Libp2p().Peerstore().PubKey(rh.ID())}}}
	}
	head := newHopProvider(t, net.Host(1), bag, grants(headSess))
	hop := fullProvider(t, net.Host(2), bag, grants(hopSess))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	chunk := func() ([]byte, store.ChunkPush) {
		data := make([]byte, 64<<10)
		rand.Read(data)
		return data, store.ChunkPush{Bag: string(bag), CID: chunker.ChunkCID(data), Data: data}
	}
	st, err := store.Open(ctx, rh.Libp2p(), hop.h.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := 0; i < 64 && err == nil; i++ {
		_, c := chunk()
		c.Session = hopSess
		_, err = st.Push(ctx, c)
	}
	var r *store.RefusedError
	if !errors.As(err, &r) || !r.NoSpace || r.Status != storepb.Status_STATUS_FAILED || !errors.Is(err, store.ErrNoSpace) {
		t.Fatalf("4 MiB pushed to a provider with a 2 MiB disk: %v (%+v); want FAILED with no_space", err, r)
	}
	if errors.Is(err, store.ErrProviderBusy) {
		t.Fatalf("a full disk taken for busy: %v", err)
	}
	// Another language's words: the flag alone names the disk.
	r.Reason = "provider could not store the chunk: Auf dem Gerät ist kein Speicherplatz mehr verfügbar"
	msg := (&client.NoProviderError{Bag: bag, Need: 1, Op: "upload", Tried: []client.PeerError{{Peer: hop.h.ID(), Err: r}}}).Error()
	if !strings.Contains(msg, "reported its disk full") || !strings.Contains(msg, "free space") {
		t.Fatalf("client error %q does not name the provider's full disk", msg)
	}

	// Pipelined through a head with room: the hop's failure comes back
	// relayed with no_space.
	hs, err := store.Open(ctx, rh.Libp2p(), head.h.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	_, c := chunk()
	c.Session = headSess
	c.Forward = []store.Hop{{Peer: hop.h.ID(), Addrs: hop.h.Addrs(), Session: hopSess}}
	res, err := hs.PushPipeline(ctx, c)
	if err != nil {
		t.Fatalf("pipeline push: %v", err)
	}
	if len(res.Receipts) != 1 || len(res.Failed) != 1 || !errors.Is(res.Failed[0].Err, store.ErrNoSpace) || errors.Is(res.Failed[0].Err, store.ErrProviderBusy) {
		t.Fatalf("pipeline into a full hop: %d receipts, failed %v; want the head's receipt and the hop failed with no_space", len(res.Receipts), res.Failed)
	}
}
