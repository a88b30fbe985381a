package chunker

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// maxDepth bounds the height of a DAG a proof may claim: MaxLinks^9 leaves
// already exceed any int64 file size.
const maxDepth = 9

// Proof shows that a chunk belongs to a file at a given index: the encoded
// interior blocks on the path from the root down to the chunk's parent,
// root first. A one-chunk file (whose root is the chunk) has an empty proof.
type Proof struct {
	// Blocks are the dag-pb blocks on the chunk's path, root first.
	Blocks [][]byte
}

// Proof returns the merkle proof of chunk index. It needs r.Nodes, not
// r.Chunks. It fails with ErrIndexOutOfRange for an index outside the file,
// and with ErrBadProof if r.Nodes does not hold the file's DAG (as when the
// result was made WithNodes(false)).
func (r *Result) Proof(index int) (Proof, error) {
	n := r.NumChunks
	if n == 0 { // a Result put together by hand
		n = len(r.Chunks)
	}
	if index < 0 || index >= n {
		return Proof{}, fmt.Errorf("%w: chunk %d of a file with %d chunks", ErrIndexOutOfRange, index, n)
	}
	counts := levelCounts(n)
	total := 0
	for _, c := range counts {
		total += c
	}
	if total > 0 && len(r.Nodes) == 0 {
		return Proof{}, fmt.Errorf("%w: the result holds no interior nodes; chunk with WithNodes(true) to prove chunks", ErrBadProof)
	}
	if total != len(r.Nodes) {
		return Proof{}, fmt.Errorf("%w: %d chunks need %d interior nodes, the result has %d", ErrBadProof, n, total, len(r.Nodes))
	}
	// starts[h] is the position in r.Nodes of the first node at height h+1;
	// spans[h] is how many leaves each of them covers.
	starts := make([]int, len(counts))
	spans := make([]int, len(counts))
	for h, start, span := 0, 0, MaxLinks; h < len(counts); h++ {
		starts[h], spans[h] = start, span
		start += counts[h]
		span *= MaxLinks
	}
	p := Proof{Blocks: make([][]byte, len(counts))}
	for h := len(counts) - 1; h >= 0; h-- {
		p.Blocks[len(counts)-1-h] = r.Nodes[starts[h]+index/spans[h]].Data
	}
	return p, nil
}

// VerifyProof checks that chunk is the index-th chunk (from 0) of the file
// whose content ID is root, using only proof: every block must hash to the
// CID its parent links to (the first to root), be a UnixFS File node, and
// the path must follow the link at the index's position on every level of
// the balanced layout down to chunk. It returns an error wrapping
// ErrBadProof if not (and also ErrCIDMismatch for a block that does not
// match its CID). A ProofVerifier does the same, decoding each interior
// node once for all the chunks under it.
func VerifyProof(root, chunk cid.Cid, index int, proof Proof) error {
	return verifyProof(root, chunk, index, proof, nodeLinks)
}

// verifyProof is VerifyProof with the links of each node on the path (the
// node with CID c, whose bytes the proof gives as blk) from links.
func verifyProof(root, chunk cid.Cid, index int, proof Proof, links func(c cid.Cid, blk []byte) ([]cid.Cid, error)) error {
	depth := len(proof.Blocks)
	if index < 0 {
		return fmt.Errorf("%w: negative chunk index %d", ErrBadProof, index)
	}
	if depth > maxDepth {
		return fmt.Errorf("%w: %d levels is deeper than any file", ErrBadProof, depth)
	}
	// span is the number of leaves under each child of the current block.
	span := 1
	for range depth - 1 {
		span *= MaxLinks
	}
	cur, rem := root, index
	for i, blk := range proof.Blocks {
		if cur.Type() != cid.DagProtobuf {
			return fmt.Errorf("%w: level %d: %s is not a dag-pb node", ErrBadProof, i, cur)
		}
		ls, err := links(cur, blk)
		if err != nil {
			return fmt.Errorf("%w: level %d: %w", ErrBadProof, i, err)
		}
		pos := rem / span
		if pos >= len(ls) {
			return fmt.Errorf("%w: level %d: chunk %d is past the node's %d children", ErrBadProof, i, index, len(ls))
		}
		rem %= span
		span /= MaxLinks
		cur = ls[pos]
	}
	if rem != 0 {
		return fmt.Errorf("%w: chunk %d is not in a one-chunk file", ErrBadProof, index)
	}
	if !cur.Equals(chunk) {
		return fmt.Errorf("%w: chunk %d of %s is %s, not %s", ErrBadProof, index, root, cur, chunk)
	}
	return nil
}

// nodeLinks checks that blk hashes to c and is a UnixFS File node, and
// returns the CIDs it links to, in order.
func nodeLinks(c cid.Cid, blk []byte) ([]cid.Cid, error) {
	if err := VerifyChunk(c, blk); err != nil {
		return nil, err
	}
	nd, err := dag.DecodeProtobuf(blk)
	if err != nil {
		return nil, err
	}
	fs, err := ft.FSNodeFromBytes(nd.Data())
	if err != nil {
		return nil, fmt.Errorf("not UnixFS: %v", err)
	}
	links := nd.Links()
	if fs.Type() != ft.TFile || len(fs.BlockSizes()) != len(links) {
		return nil, errors.New("not a UnixFS file node")
	}
	out := make([]cid.Cid, len(links))
	for i, l := range links {
		out[i] = l.Cid
	}
	return out, nil
}

// VerifyChunk checks that data hashes to c. It returns an error wrapping
// ErrCIDMismatch if not.
func VerifyChunk(c cid.Cid, data []byte) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined CID", ErrCIDMismatch)
	}
	pre := c.Prefix()
	if pre.MhType == multihash.SHA2_256 && (pre.MhLength == sha256.Size || pre.MhLength == -1) {
		dec, err := multihash.Decode(c.Hash())
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCIDMismatch, c, err)
		}
		sum := sha256.Sum256(data)
		if !bytes.Equal(dec.Digest, sum[:]) {
			return fmt.Errorf("%w: %d bytes do not hash to %s", ErrCIDMismatch, len(data), c)
		}
		return nil
	}
	got, err := pre.Sum(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCIDMismatch, c, err)
	}
	if !got.Equals(c) {
		return fmt.Errorf("%w: %d bytes hash to %s, not %s", ErrCIDMismatch, len(data), got, c)
	}
	return nil
}
