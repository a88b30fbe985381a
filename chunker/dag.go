package chunker

import (
	"fmt"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
)

// nodeCIDBuilder makes the CIDs of interior nodes: CIDv1, dag-pb, sha2-256.
var nodeCIDBuilder = cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}

// ChunkInfo describes one chunk of a file without its bytes.
type ChunkInfo struct {
	// CID is the chunk's content ID (CIDv1, raw codec, sha2-256).
	CID cid.Cid
	// Offset is the position of the chunk's first byte in the file.
	Offset int64
	// Size is the chunk's length in bytes.
	Size int
}

// Block is an encoded DAG block with its content ID.
type Block struct {
	// CID is the block's content ID; Data hashes to it.
	CID cid.Cid
	// Data is the block's encoded bytes (dag-pb for interior nodes).
	Data []byte
}

// Result is a chunked file: its content ID and, unless the options said
// not to keep them, its chunks and the interior nodes of its DAG.
type Result struct {
	// Root is the file's content ID.
	Root cid.Cid
	// Size is the file's length in bytes.
	Size int64
	// ChunkSize is the chunk size the file was split with (0 when the
	// result came from a Builder, which only sees chunk IDs).
	ChunkSize int
	// NumChunks is the number of chunks (DAG leaves), at least 1, whether
	// or not Chunks is kept.
	NumChunks int
	// Chunks lists the DAG's leaves in file order. An empty file has one
	// empty chunk, whose CID is the root. It is nil with WithChunkList(false).
	Chunks []ChunkInfo
	// Nodes holds the interior dag-pb blocks, one level after the other
	// from the parents of the leaves up to the root (which is last), each
	// level left to right. A one-chunk file has none. Providers use them to
	// prove that a chunk belongs to the file (see Proof). It is nil with
	// WithNodes(false).
	Nodes []Block
}

// link is a pending child link of an interior node under construction.
type link struct {
	cid      cid.Cid
	tsize    uint64 // cumulative size of the child's DAG (dag-pb Tsize)
	fileSize uint64 // file bytes under the child (UnixFS blocksize)
}

// Builder computes a file's DAG from its chunk IDs, in the balanced layout
// of the IPFS importer, as the chunk IDs stream in.
//
// The balanced layout groups the leaves MaxLinks at a time, left to right,
// then those parents MaxLinks at a time, and so on up to a single root; only
// the nodes on the right edge are partly filled. (The IPFS importer grows
// the tree depth-first, adding a level above the root whenever it is full,
// but the shape is the same.) So a Builder holds one node under
// construction per level, at most MaxLinks pending links each, and seals a
// node, handing its block to WithNodeFunc, as soon as its last child is
// known: a level is at most about 6 KiB, and a file of 2^63 bytes has 9.
//
// By default it also keeps one ChunkInfo per chunk and every interior node
// for the Result, about 140 bytes per chunk in all; WithChunkList(false) and
// WithNodes(false) drop them so memory stays constant whatever the file's
// length.
//
// The zero value is an empty Builder that keeps both, as is NewBuilder's
// without options. A Builder is not safe for concurrent use.
type Builder struct {
	levels   [][]link  // levels[h] collects the children of the next node at height h+1
	nodes    [][]Block // nodes[h] are the finished nodes at height h+1, if kept
	chunks   []ChunkInfo
	n        int // chunks added
	size     int64
	noChunks bool
	noNodes  bool
	nodeFunc func(Block) error
	err      error // sticky: a failed node callback or encoding
	done     bool
}

// NewBuilder returns an empty Builder. Of the options, it uses
// WithChunkList, WithNodes and WithNodeFunc and ignores the others.
func NewBuilder(opts ...Option) *Builder {
	var c config
	for _, o := range opts {
		o(&c)
	}
	return newBuilder(c)
}

func newBuilder(c config) *Builder {
	return &Builder{noChunks: c.noChunkList, noNodes: c.noNodes, nodeFunc: c.nodeFunc}
}

// Add appends the next chunk of the file: its CID (raw codec) and length.
// It returns the error of the node callback (WithNodeFunc) if a node it
// sealed was refused; the Builder is then unusable.
func (b *Builder) Add(c cid.Cid, size int) error {
	if b.done {
		return ErrClosed
	}
	if b.err != nil {
		return b.err
	}
	if size < 0 || !c.Defined() {
		return fmt.Errorf("%w: chunk %d: CID %s, size %d", ErrInvalidOption, b.n, c, size)
	}
	if !b.noChunks {
		b.chunks = append(b.chunks, ChunkInfo{CID: c, Offset: b.size, Size: size})
	}
	b.n++
	b.size += int64(size)
	if err := b.push(0, link{cid: c, tsize: uint64(size), fileSize: uint64(size)}); err != nil {
		b.err = err
		return err
	}
	return nil
}

// push adds l to the node being filled at height h+1 and seals that node
// when it reaches MaxLinks children.
func (b *Builder) push(h int, l link) error {
	if h == len(b.levels) {
		b.levels = append(b.levels, make([]link, 0, MaxLinks))
		b.nodes = append(b.nodes, nil)
	}
	b.levels[h] = append(b.levels[h], l)
	if len(b.levels[h]) < MaxLinks {
		return nil
	}
	return b.seal(h)
}

// seal encodes the pending node at height h+1, hands it out and links it
// one level up.
func (b *Builder) seal(h int) error {
	blk, parent, err := encodeNode(b.levels[h])
	if err != nil {
		return err
	}
	clear(b.levels[h]) // drop the children's CIDs now, not when overwritten
	b.levels[h] = b.levels[h][:0]
	if !b.noNodes {
		b.nodes[h] = append(b.nodes[h], blk)
	}
	if b.nodeFunc != nil {
		if err := b.nodeFunc(blk); err != nil {
			return err
		}
	}
	return b.push(h+1, parent)
}

// Finish seals the partial nodes along the right edge of the DAG and
// returns the result. A Builder that saw no chunk describes the empty file.
// The Builder cannot be used afterwards.
func (b *Builder) Finish() (*Result, error) {
	if b.done {
		return nil, ErrClosed
	}
	if b.err != nil {
		return nil, b.err
	}
	if b.n == 0 {
		if err := b.Add(ChunkCID(nil), 0); err != nil {
			return nil, err
		}
	}
	b.done = true
	var root cid.Cid
	for h := 0; ; h++ {
		top := h == len(b.levels)-1
		if top && len(b.levels[h]) == 1 {
			root = b.levels[h][0].cid
			break
		}
		if len(b.levels[h]) > 0 {
			if err := b.seal(h); err != nil {
				b.err = err
				return nil, err
			}
		}
	}
	var nodes []Block
	if !b.noNodes {
		total := 0
		for _, lv := range b.nodes {
			total += len(lv)
		}
		if total > 0 {
			nodes = make([]Block, 0, total)
		}
		for _, lv := range b.nodes {
			nodes = append(nodes, lv...)
		}
	}
	res := &Result{Root: root, Size: b.size, NumChunks: b.n, Chunks: b.chunks, Nodes: nodes}
	b.levels, b.nodes, b.chunks = nil, nil, nil
	return res, nil
}

// encodeNode builds the dag-pb node of a UnixFS File with the given
// children, exactly as the IPFS importer does, and returns the block and
// the link to it.
func encodeNode(children []link) (Block, link, error) {
	fs := ft.NewFSNode(ft.TFile)
	nd := new(dag.ProtoNode)
	if err := nd.SetCidBuilder(nodeCIDBuilder); err != nil {
		return Block{}, link{}, err
	}
	for _, c := range children {
		fs.AddBlockSize(c.fileSize)
		if err := nd.AddRawLink("", &format.Link{Size: c.tsize, Cid: c.cid}); err != nil {
			return Block{}, link{}, err
		}
	}
	data, err := fs.GetBytes()
	if err != nil {
		return Block{}, link{}, err
	}
	nd.SetData(data)
	raw, err := nd.EncodeProtobuf(false)
	if err != nil {
		return Block{}, link{}, err
	}
	tsize, err := nd.Size()
	if err != nil {
		return Block{}, link{}, err
	}
	c := nd.Cid()
	return Block{CID: c, Data: raw}, link{cid: c, tsize: tsize, fileSize: fs.FileSize()}, nil
}

// levelCounts returns the number of interior nodes at each height, from the
// parents of the leaves to the root, for a balanced DAG over n leaves.
func levelCounts(n int) []int {
	var counts []int
	for n > 1 {
		n = (n + MaxLinks - 1) / MaxLinks
		counts = append(counts, n)
	}
	return counts
}
