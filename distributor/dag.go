package distributor

import (
	"fmt"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
)

// maxDAGDepth bounds how deep the node descends an object's DAG: MaxLinks^9
// leaves are more than any object holds, so a deeper DAG is malformed.
const maxDAGDepth = 9

// dagNode is a decoded UnixFS file node (the layout chunker.Builder makes:
// balanced, raw leaves; inline-data leaves of other tools are read too).
type dagNode struct {
	links []cid.Cid
	sizes []uint64 // content bytes under each link
	data  []byte   // inline content of a leaf node
	fsize uint64
	leaf  bool
}

// decodeNode decodes a dag-pb UnixFS file node.
func decodeNode(c cid.Cid, block []byte) (*dagNode, error) {
	pn, err := dag.DecodeProtobuf(block)
	if err != nil {
		return nil, fmt.Errorf("%w: block %s is not a dag-pb node: %v", ErrBadDAG, c, err)
	}
	fs, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil {
		return nil, fmt.Errorf("%w: block %s is not a UnixFS node: %v", ErrBadDAG, c, err)
	}
	switch fs.Type() {
	case ft.TFile, ft.TRaw:
	default:
		return nil, fmt.Errorf("%w: block %s is a UnixFS %s, not a file", ErrBadDAG, c, fs.Type())
	}
	n := &dagNode{data: fs.Data(), fsize: fs.FileSize()}
	links := pn.Links()
	if len(links) == 0 {
		n.leaf = true
		return n, nil
	}
	if fs.NumChildren() != len(links) || len(n.data) > 0 {
		return nil, fmt.Errorf("%w: block %s lists %d block sizes for %d links (or data beside links)", ErrBadDAG, c, fs.NumChildren(), len(links))
	}
	for i, l := range links {
		n.links = append(n.links, l.Cid)
		n.sizes = append(n.sizes, fs.BlockSize(i))
	}
	return n, nil
}

// leaf is one piece of an object's content: a raw block to fetch, or bytes
// held inline by a UnixFS leaf node.
type leaf struct {
	cid    cid.Cid
	off    int64
	size   int64
	inline []byte
	isData bool // inline content, nothing to fetch
}
