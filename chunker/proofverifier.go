package chunker

import (
	"bytes"

	"github.com/ipfs/go-cid"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultProofNodes is how many interior nodes a ProofVerifier made with
// size 0 remembers: the upper nodes of ~36 files of 1 GiB in 1 MiB chunks
// (7 each), at most ~17 KiB each (a node of MaxLinks links and its CIDs).
const DefaultProofNodes = 256

// A ProofVerifier checks chunk proofs like VerifyProof, remembering the
// links of the interior nodes it verified. A node of the balanced layout is
// on the path of up to MaxLinks^h chunks, so a provider taking a file's
// chunks one by one, each with its proof, hashed and decoded the same few
// upper nodes for every chunk; with a ProofVerifier it does so once per
// node. A node is remembered by its CID only after its bytes hashed to it
// and decoded as a UnixFS file node, with those bytes: a proof block equal
// to them needs no hashing again, and any other is checked in full, so
// Verify accepts and refuses exactly what VerifyProof does. Safe for
// concurrent use.
type ProofVerifier struct {
	nodes *lru.Cache[cid.Cid, provenNode]
}

// provenNode is a node that hashed to its CID: its bytes and links.
type provenNode struct {
	raw   []byte
	links []cid.Cid
}

// NewProofVerifier returns a ProofVerifier remembering up to nodes interior
// nodes (DefaultProofNodes if nodes <= 0), least recently used forgotten
// first.
func NewProofVerifier(nodes int) *ProofVerifier {
	if nodes <= 0 {
		nodes = DefaultProofNodes
	}
	c, err := lru.New[cid.Cid, provenNode](nodes)
	if err != nil {
		panic(err) // only for a size <= 0, excluded above
	}
	return &ProofVerifier{nodes: c}
}

// Verify checks that chunk is the index-th chunk of the file whose content
// ID is root, as VerifyProof does.
func (v *ProofVerifier) Verify(root, chunk cid.Cid, index int, proof Proof) error {
	return verifyProof(root, chunk, index, proof, v.links)
}

// links returns the links of the node c whose bytes are blk: remembered if
// blk is what hashed to c before, else checked and remembered.
func (v *ProofVerifier) links(c cid.Cid, blk []byte) ([]cid.Cid, error) {
	if n, ok := v.nodes.Get(c); ok && bytes.Equal(n.raw, blk) {
		return n.links, nil
	}
	ls, err := nodeLinks(c, blk)
	if err != nil {
		return nil, err
	}
	v.nodes.Add(c, provenNode{raw: bytes.Clone(blk), links: ls})
	return ls, nil
}
