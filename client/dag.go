package client

import (
	"context"
	"fmt"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
)

// maxDAGDepth bounds how deep a download descends: MaxLinks^9 leaves are
// more than any file holds, so a deeper DAG is malformed (or hostile).
const maxDAGDepth = 9

// leaf is one piece of an object's content, in order: a raw chunk to fetch
// (cid), or bytes held inline by a UnixFS node (data, from DAGs made by
// other tools).
type leaf struct {
	cid    cid.Cid
	data   []byte // inline content; nil for a raw chunk
	inline bool
	off    int64 // position of the leaf's first byte in the object
	size   int64
}

// dagNode is a decoded UnixFS file node.
type dagNode struct {
	links  []cid.Cid
	sizes  []uint64 // content bytes under each link (UnixFS blocksizes)
	data   []byte   // inline content
	fsize  uint64   // the node's file size
	isLeaf bool
}

// decodeNode decodes a dag-pb UnixFS file node.
func decodeNode(c cid.Cid, block []byte) (*dagNode, error) {
	pn, err := dag.DecodeProtobuf(block)
	if err != nil {
		return nil, fmt.Errorf("block %s is not a dag-pb node: %w", c, err)
	}
	fs, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil {
		return nil, fmt.Errorf("block %s is not a UnixFS node: %w", c, err)
	}
	switch fs.Type() {
	case ft.TFile, ft.TRaw:
	default:
		return nil, fmt.Errorf("block %s is a UnixFS %s, not a file", c, fs.Type())
	}
	n := &dagNode{data: fs.Data(), fsize: fs.FileSize()}
	links := pn.Links()
	if len(links) == 0 {
		n.isLeaf = true
		return n, nil
	}
	if fs.NumChildren() != len(links) {
		return nil, fmt.Errorf("block %s lists %d block sizes for %d links", c, fs.NumChildren(), len(links))
	}
	for i, l := range links {
		n.links = append(n.links, l.Cid)
		n.sizes = append(n.sizes, fs.BlockSize(i))
	}
	if len(n.data) > 0 {
		// Content inline before the links: rare, but part of UnixFS.
		return nil, fmt.Errorf("block %s holds data beside links, which Satchel does not read", c)
	}
	return n, nil
}

// walker lists the leaves of an object that overlap a byte range, fetching
// the interior nodes it needs (and only those) on the way.
type walker struct {
	get func(ctx context.Context, c cid.Cid) ([]byte, error)
}

// walk calls yield with every leaf under the node c (whose block is given
// when already fetched, nil otherwise), which starts at offset off and
// holds size bytes, that overlaps [start, end).
func (w *walker) walk(ctx context.Context, c cid.Cid, block []byte, off, size, start, end int64, depth int, yield func(leaf) error) error {
	if depth > maxDAGDepth {
		return fmt.Errorf("DAG under %s is deeper than %d levels", c, maxDAGDepth)
	}
	if c.Type() == cid.Raw {
		if block != nil {
			size = int64(len(block))
		}
		return yield(leaf{cid: c, off: off, size: size})
	}
	if c.Type() != cid.DagProtobuf {
		return fmt.Errorf("block %s has codec %#x; Satchel reads raw and dag-pb blocks", c, c.Type())
	}
	if block == nil {
		var err error
		if block, err = w.get(ctx, c); err != nil {
			return err
		}
	}
	n, err := decodeNode(c, block)
	if err != nil {
		return err
	}
	if n.isLeaf {
		return yield(leaf{data: n.data, inline: true, off: off, size: int64(len(n.data))})
	}
	pos := off
	for i, child := range n.links {
		csize := int64(n.sizes[i])
		if pos+csize > start && pos < end || csize == 0 && pos >= start && pos < end {
			if err := w.walk(ctx, child, nil, pos, csize, start, end, depth+1, yield); err != nil {
				return err
			}
		}
		pos += csize
		if pos >= end {
			break
		}
	}
	return nil
}

// rootSize returns the content size of an object from its root block.
func rootSize(root cid.Cid, block []byte) (int64, error) {
	if root.Type() == cid.Raw {
		return int64(len(block)), nil
	}
	n, err := decodeNode(root, block)
	if err != nil {
		return 0, err
	}
	if n.isLeaf {
		return int64(len(n.data)), nil
	}
	return int64(n.fsize), nil
}
