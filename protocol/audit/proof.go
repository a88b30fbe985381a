package audit

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// Proofs: the provider walks its object's DAG from the root to a chunk and
// sends the interior blocks on the way; the challenger checks them with
// chunker.VerifyProof against the content ID on chain.

// depthOf is the height of the balanced DAG over n leaves: 0 for one leaf
// (the root is the chunk), else the least d with MaxLinks^d >= n.
func depthOf(n int) int {
	d, cap := 0, 1
	for cap < n {
		cap *= chunker.MaxLinks
		d++
	}
	return d
}

// buildPath reads the interior blocks from root down to the parent of chunk
// index of an object with n chunks, root first, and returns them with the
// chunk's CID.
func buildPath(root cid.Cid, n, index int, get func(cid.Cid) ([]byte, error)) ([][]byte, cid.Cid, error) {
	if index < 0 || index >= n {
		return nil, cid.Undef, fmt.Errorf("%w: chunk %d of an object of %d chunks", ErrNotFound, index, n)
	}
	depth := depthOf(n)
	span := 1
	for range depth - 1 {
		span *= chunker.MaxLinks
	}
	path := make([][]byte, 0, depth)
	cur, rem := root, index
	for range depth {
		blk, err := get(cur)
		if err != nil {
			return nil, cid.Undef, err
		}
		nd, err := dag.DecodeProtobuf(blk)
		if err != nil {
			return nil, cid.Undef, fmt.Errorf("%w: interior block %s: %v", ErrCorruptBlock, cur, err)
		}
		pos := rem / span
		links := nd.Links()
		if pos >= len(links) {
			return nil, cid.Undef, fmt.Errorf("%w: block %s has %d links, chunk %d needs link %d", ErrCorruptBlock, cur, len(links), index, pos)
		}
		path = append(path, blk)
		rem %= span
		span = max(span/chunker.MaxLinks, 1)
		cur = links[pos].Cid
	}
	return path, cur, nil
}

// leafOf returns the CID a proof path leads to for chunk index: the link at
// the index's position in the last block, or root for an empty path. It
// does not verify the path; VerifyProof does.
func leafOf(root cid.Cid, index int, path [][]byte) (cid.Cid, error) {
	if len(path) == 0 {
		return root, nil
	}
	nd, err := dag.DecodeProtobuf(path[len(path)-1])
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: last proof block: %v", ErrBadAnswer, err)
	}
	pos := index % chunker.MaxLinks
	if pos >= len(nd.Links()) {
		return cid.Undef, fmt.Errorf("%w: last proof block has no link %d", ErrBadAnswer, pos)
	}
	return nd.Links()[pos].Cid, nil
}

// LocalChunks gives a challenger its own copy of a chunk, for range
// samples: a range of a chunk cannot be checked against the chunk's CID on
// its own, so it is compared with the challenger's copy (verified against
// the CID the proof leads to).
type LocalChunks func(c cid.Cid) ([]byte, error)

// VerifySample checks one answered sample against the object's content ID
// root: the proof path must lead, level by level, from root to the chunk at
// s.Index (chunker.VerifyProof); a whole-chunk sample's data must be that
// chunk; a range sample's data must equal the range of local's copy of it.
// It returns an error wrapping ErrBadAnswer if not.
func VerifySample(root cid.Cid, s *pb.Sample, p *pb.SampleProof, local LocalChunks) error {
	if p.Index != s.Index {
		return fmt.Errorf("%w: answered chunk %d for sample of chunk %d", ErrBadAnswer, p.Index, s.Index)
	}
	if len(p.Path) > MaxPathBlocks {
		return fmt.Errorf("%w: %d-block proof path", ErrBadAnswer, len(p.Path))
	}
	index := int(s.Index)
	proof := chunker.Proof{Blocks: p.Path}
	if s.Length == 0 {
		leaf := chunker.ChunkCID(p.Data)
		if err := chunker.VerifyProof(root, leaf, index, proof); err != nil {
			return fmt.Errorf("%w: chunk %d: %w", ErrBadAnswer, index, err)
		}
		return nil
	}
	leaf, err := leafOf(root, index, p.Path)
	if err != nil {
		return err
	}
	if err := chunker.VerifyProof(root, leaf, index, proof); err != nil {
		return fmt.Errorf("%w: chunk %d: %w", ErrBadAnswer, index, err)
	}
	if local == nil {
		return fmt.Errorf("%w: a range sample needs the challenger's own copy of the chunk", ErrInvalid)
	}
	mine, err := local(leaf)
	if err != nil {
		return fmt.Errorf("audit: own copy of chunk %s: %w", leaf, err)
	}
	if err := chunker.VerifyChunk(leaf, mine); err != nil {
		return fmt.Errorf("audit: own copy of chunk %s: %w", leaf, err)
	}
	end := s.Offset + s.Length
	if end > uint64(len(mine)) {
		return fmt.Errorf("%w: range %d+%d is past the %d-byte chunk %d", ErrInvalid, s.Offset, s.Length, len(mine), index)
	}
	if !bytes.Equal(p.Data, mine[s.Offset:end]) {
		return fmt.Errorf("%w: chunk %d bytes %d+%d differ from the chunk %s", ErrBadAnswer, index, s.Offset, s.Length, leaf)
	}
	return nil
}

// ChunkCount returns the number of chunks of the object whose content ID is
// root, reading the DAG's leftmost path with get (each block verified
// against its CID): the file's size is the sum of the root's UnixFS block
// sizes, the chunk size is the first leaf's, and every chunk but the last
// has that size in Satchel's (and the IPFS importer's) fixed-size layout.
// A challenger that does not hold the object uses it to pick indexes.
func ChunkCount(root cid.Cid, get func(cid.Cid) ([]byte, error)) (int, error) {
	if root.Type() == cid.Raw {
		return 1, nil
	}
	var total, chunk uint64
	cur := root
	for depth := 0; ; depth++ {
		if depth > MaxPathBlocks {
			return 0, fmt.Errorf("%w: DAG of %s is deeper than any file", ErrBadAnswer, root)
		}
		blk, err := get(cur)
		if err != nil {
			return 0, err
		}
		if err := chunker.VerifyChunk(cur, blk); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrBadAnswer, err)
		}
		nd, err := dag.DecodeProtobuf(blk)
		if err != nil {
			return 0, fmt.Errorf("%w: block %s: %v", ErrBadAnswer, cur, err)
		}
		fs, err := ft.FSNodeFromBytes(nd.Data())
		if err != nil || len(fs.BlockSizes()) == 0 || len(fs.BlockSizes()) != len(nd.Links()) {
			return 0, fmt.Errorf("%w: block %s is not a UnixFS file node", ErrBadAnswer, cur)
		}
		if depth == 0 {
			for _, b := range fs.BlockSizes() {
				if b > MaxObjectBytes-total {
					return 0, fmt.Errorf("%w: root %s claims more than %d bytes", ErrBadAnswer, root, uint64(MaxObjectBytes))
				}
				total += b
			}
		}
		first := nd.Links()[0].Cid
		if first.Type() == cid.Raw {
			chunk = fs.BlockSizes()[0]
			break
		}
		cur = first
	}
	if chunk > MaxChunkSize {
		return 0, fmt.Errorf("%w: DAG of %s claims a %d-byte chunk, over the %d-byte limit", ErrBadAnswer, root, chunk, MaxChunkSize)
	}
	if chunk == 0 {
		return 1, nil
	}
	// total <= MaxObjectBytes, so neither the sum nor the count overflows.
	return int((total + chunk - 1) / chunk), nil
}

// PickIndexes returns k distinct random chunk indexes in [0, n), sorted
// (all n when k >= n), allocating for k indexes only, so a huge n claimed
// by a DAG costs nothing (Floyd's sampling).
func PickIndexes(n, k int) []int {
	if n <= 0 || k <= 0 {
		return nil
	}
	k = min(k, n)
	seen := make(map[int]bool, k)
	out := make([]int, 0, k)
	for j := n - k; j < n; j++ {
		i := rand.IntN(j + 1)
		if seen[i] {
			i = j
		}
		seen[i] = true
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}
