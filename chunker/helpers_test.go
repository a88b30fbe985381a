package chunker_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	bchunk "github.com/ipfs/boxo/chunker"
	dag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
)

// patternLen is deliberately not a multiple of any chunk size used, so
// chunks of a generated stream differ from each other.
const patternLen = 1<<20 + 4093

var (
	patternOnce sync.Once
	pattern     []byte
)

// stream returns n deterministic pseudo-random bytes, generated on the fly
// (a 1 MiB pattern is cycled), so tests and benchmarks chunk large streams
// without holding them.
func stream(n int64) io.Reader {
	patternOnce.Do(func() {
		pattern = make([]byte, patternLen)
		rng := rand.NewChaCha8([32]byte{'s', 'a', 't', 'c', 'h', 'e', 'l'})
		_, _ = rng.Read(pattern)
	})
	return &genReader{left: n}
}

type genReader struct {
	pos  int
	left int64
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n := 0
	for n < len(p) {
		k := copy(p[n:], pattern[g.pos:])
		n += k
		g.pos = (g.pos + k) % patternLen
	}
	g.left -= int64(n)
	return n, nil
}

// streamBytes returns the bytes of stream(n).
func streamBytes(t testing.TB, n int64) []byte {
	t.Helper()
	b, err := io.ReadAll(stream(n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memDAG is an in-memory format.DAGService for the reference importer.
type memDAG struct {
	mu    sync.Mutex
	nodes map[cid.Cid]format.Node
}

func newMemDAG() *memDAG { return &memDAG{nodes: map[cid.Cid]format.Node{}} }

func (d *memDAG) Get(_ context.Context, c cid.Cid) (format.Node, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.nodes[c]
	if !ok {
		return nil, format.ErrNotFound{Cid: c}
	}
	return n, nil
}

func (d *memDAG) GetMany(ctx context.Context, cs []cid.Cid) <-chan *format.NodeOption {
	ch := make(chan *format.NodeOption, len(cs))
	for _, c := range cs {
		n, err := d.Get(ctx, c)
		ch <- &format.NodeOption{Node: n, Err: err}
	}
	close(ch)
	return ch
}

func (d *memDAG) Add(_ context.Context, n format.Node) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nodes[n.Cid()] = n
	return nil
}

func (d *memDAG) AddMany(ctx context.Context, ns []format.Node) error {
	for _, n := range ns {
		_ = d.Add(ctx, n)
	}
	return nil
}

func (d *memDAG) Remove(_ context.Context, c cid.Cid) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.nodes, c)
	return nil
}

func (d *memDAG) RemoveMany(ctx context.Context, cs []cid.Cid) error {
	for _, c := range cs {
		_ = d.Remove(ctx, c)
	}
	return nil
}

// reference is what the IPFS importer (boxo's balanced layout, the code
// behind `ipfs add --cid-version=1 --raw-leaves --chunker=size-N`) makes
// of a stream.
type reference struct {
	root   cid.Cid
	leaves []cid.Cid          // in file order
	nodes  map[cid.Cid][]byte // interior dag-pb blocks
}

func ipfsAdd(t testing.TB, r io.Reader, chunkSize int) reference {
	t.Helper()
	ds := newMemDAG()
	params := helpers.DagBuilderParams{
		Dagserv:    ds,
		Maxlinks:   helpers.DefaultLinksPerBlock,
		RawLeaves:  true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256},
	}
	db, err := params.New(bchunk.NewSizeSplitter(r, int64(chunkSize)))
	if err != nil {
		t.Fatal(err)
	}
	root, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	ref := reference{root: root.Cid(), nodes: map[cid.Cid][]byte{}}
	var walk func(c cid.Cid)
	walk = func(c cid.Cid) {
		n, err := ds.Get(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if c.Type() == cid.Raw {
			ref.leaves = append(ref.leaves, c)
			return
		}
		pn, ok := n.(*dag.ProtoNode)
		if !ok {
			t.Fatalf("reference node %s is %T", c, n)
		}
		ref.nodes[c] = bytes.Clone(pn.RawData())
		for _, l := range pn.Links() {
			walk(l.Cid)
		}
	}
	walk(ref.root)
	return ref
}
