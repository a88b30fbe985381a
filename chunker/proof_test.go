package chunker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/chunker"
)

func sum(t *testing.T, size int64, chunkSize int) *chunker.Result {
	t.Helper()
	res, err := chunker.Sum(context.Background(), stream(size), chunker.WithChunkSize(chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestProofEveryChunk(t *testing.T) {
	const l = chunker.MaxLinks
	for _, c := range []struct {
		size      int64
		chunkSize int
		depth     int
	}{
		{0, small, 0},
		{small - 1, small, 0},
		{2 * small, small, 1},
		{l * small, small, 1},
		{(l+1)*small + 3, small, 2},
		{3*l*small + 5, small, 2},
		{l*l + 1, 1, 3}, // 30277 one-byte chunks: three levels
	} {
		t.Run(fmt.Sprintf("size=%d/chunk=%d", c.size, c.chunkSize), func(t *testing.T) {
			res := sum(t, c.size, c.chunkSize)
			// A ProofVerifier remembering two nodes forgets on the way
			// down a three-level file.
			pv := chunker.NewProofVerifier(2)
			for i, ch := range res.Chunks {
				if !proofSample(i, len(res.Chunks)) {
					continue
				}
				p, err := res.Proof(i)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Blocks) != c.depth {
					t.Fatalf("chunk %d: proof of %d blocks, want %d", i, len(p.Blocks), c.depth)
				}
				if err := chunker.VerifyProof(res.Root, ch.CID, i, p); err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
				if err := pv.Verify(res.Root, ch.CID, i, p); err != nil {
					t.Fatalf("chunk %d, ProofVerifier: %v", i, err)
				}
			}
			n := len(res.Chunks)
			if _, err := res.Proof(n); !errors.Is(err, chunker.ErrIndexOutOfRange) {
				t.Errorf("Proof(%d): %v, want ErrIndexOutOfRange", n, err)
			}
			if _, err := res.Proof(-1); !errors.Is(err, chunker.ErrIndexOutOfRange) {
				t.Errorf("Proof(-1): %v, want ErrIndexOutOfRange", err)
			}
		})
	}
}

// proofSample says which chunks to prove: all of them in files of up to two
// levels; in larger ones (decoding a full dag-pb node costs ~50µs) the first
// and last branches, both sides of every branch boundary and every 97th.
func proofSample(i, n int) bool {
	const l = chunker.MaxLinks
	return n <= l*l || i < l || i >= n-l || i%l == 0 || i%l == l-1 || i%97 == 0
}

// TestProofRejects: VerifyProof and a ProofVerifier (which has seen the
// proof's nodes, verifying the right proof first) refuse the same wrong
// proofs with the same errors.
func TestProofRejects(t *testing.T) {
	for name, verify := range map[string]func(root, chunk cid.Cid, i int, p chunker.Proof) error{
		"VerifyProof":   chunker.VerifyProof,
		"ProofVerifier": chunker.NewProofVerifier(0).Verify,
	} {
		t.Run(name, func(t *testing.T) { testProofRejects(t, verify) })
	}
}

func testProofRejects(t *testing.T, verify func(root, chunk cid.Cid, i int, p chunker.Proof) error) {
	const l = chunker.MaxLinks
	res := sum(t, 2*l*small+small/2, small) // 349 chunks, depth 2, a partial last branch
	other := sum(t, 2*l*small+small/2+1, small)
	last := len(res.Chunks) - 1
	for _, i := range []int{0, 1, l - 1, l, l + 1, 2*l - 1, last} {
		p, err := res.Proof(i)
		if err != nil {
			t.Fatal(err)
		}
		chunk := res.Chunks[i].CID
		if err := verify(res.Root, chunk, i, p); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		tampered := func(level, at int) chunker.Proof {
			q := chunker.Proof{Blocks: make([][]byte, len(p.Blocks))}
			for k, b := range p.Blocks {
				q.Blocks[k] = bytes.Clone(b)
			}
			q.Blocks[level][at%len(q.Blocks[level])] ^= 0x01
			return q
		}
		type tc struct {
			name     string
			err      error
			mismatch bool
		}
		otherChunk := res.Chunks[(i+1)%len(res.Chunks)].CID
		for _, c := range []tc{
			{"tampered root block", verify(res.Root, chunk, i, tampered(0, 7)), true},
			{"tampered leaf parent", verify(res.Root, chunk, i, tampered(1, 40)), true},
			{"tampered last byte", verify(res.Root, chunk, i, tampered(1, len(p.Blocks[1])-1)), true},
			{"index+1", verify(res.Root, chunk, i+1, p), false},
			{"index-1", verify(res.Root, chunk, i-1, p), false},
			{"index+MaxLinks", verify(res.Root, chunk, i+l, p), false},
			{"past the end", verify(res.Root, chunk, 3*l, p), false},
			{"wrong chunk", verify(res.Root, otherChunk, i, p), false},
			{"wrong root", verify(other.Root, chunk, i, p), true},
			{"truncated proof", verify(res.Root, chunk, i, chunker.Proof{Blocks: p.Blocks[:1]}), false},
			{"no proof", verify(res.Root, chunk, i, chunker.Proof{}), false},
			{"swapped levels", verify(res.Root, chunk, i, chunker.Proof{Blocks: [][]byte{p.Blocks[1], p.Blocks[0]}}), true},
			{"extra level", verify(res.Root, chunk, i, chunker.Proof{Blocks: append(append([][]byte{}, p.Blocks...), p.Blocks[1])}), false},
		} {
			if !errors.Is(c.err, chunker.ErrBadProof) {
				t.Errorf("chunk %d, %s: %v, want ErrBadProof", i, c.name, c.err)
			}
			if c.mismatch && !errors.Is(c.err, chunker.ErrCIDMismatch) {
				t.Errorf("chunk %d, %s: %v, want ErrCIDMismatch too", i, c.name, c.err)
			}
		}
	}
}

// TestProofRejectsMalformedDAG checks blocks that hash correctly but are not
// the DAG of a file.
func TestProofRejectsMalformedDAG(t *testing.T) {
	data := []byte("chunk")
	chunk := chunker.ChunkCID(data)

	// A dag-pb node linking to the chunk whose data is not UnixFS File.
	nd := dag.NodeWithData([]byte("not unixfs"))
	if err := nd.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}); err != nil {
		t.Fatal(err)
	}
	if err := nd.AddRawLink("", &format.Link{Cid: chunk, Size: uint64(len(data))}); err != nil {
		t.Fatal(err)
	}
	err := chunker.VerifyProof(nd.Cid(), chunk, 0, chunker.Proof{Blocks: [][]byte{nd.RawData()}})
	if !errors.Is(err, chunker.ErrBadProof) {
		t.Errorf("non-UnixFS node: %v, want ErrBadProof", err)
	}

	// A raw root cannot have children.
	err = chunker.VerifyProof(chunk, chunk, 0, chunker.Proof{Blocks: [][]byte{data}})
	if !errors.Is(err, chunker.ErrBadProof) {
		t.Errorf("raw root with a proof: %v, want ErrBadProof", err)
	}

	// Deeper than any file.
	res := sum(t, 2*small, small)
	p, err := res.Proof(0)
	if err != nil {
		t.Fatal(err)
	}
	deep := chunker.Proof{Blocks: make([][]byte, 10)}
	for i := range deep.Blocks {
		deep.Blocks[i] = p.Blocks[0]
	}
	if err := chunker.VerifyProof(res.Root, res.Chunks[0].CID, 0, deep); !errors.Is(err, chunker.ErrBadProof) {
		t.Errorf("10 levels: %v, want ErrBadProof", err)
	}
}
