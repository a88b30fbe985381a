package chunker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
)

const small = 256 // chunk size that keeps multi-level DAGs small in tests

// sizes are the stream lengths that exercise every shape of the balanced
// layout for chunk size cs.
func sizes(cs int64) []int64 {
	const l = chunker.MaxLinks
	return []int64{
		0, 1, cs - 1, cs, cs + 1, 2*cs + 7,
		l * cs, l*cs + 1, (l+1)*cs + 3, 2 * l * cs, 2*l*cs + cs/2,
		l * l * cs, l*l*cs + 1,
	}
}

func TestSumMatchesIPFSImporter(t *testing.T) {
	type tc struct {
		size      int64
		chunkSize int
	}
	var cases []tc
	for _, n := range sizes(small) {
		cases = append(cases, tc{n, small})
	}
	for _, n := range []int64{0, 1, 3<<20 + 5} {
		cases = append(cases, tc{n, chunker.DefaultChunkSize})
	}
	cases = append(cases, tc{1000, 1}, tc{1 << 16, 1000}, tc{5000, chunker.MaxChunkSize})
	for _, c := range cases {
		t.Run(fmt.Sprintf("size=%d/chunk=%d", c.size, c.chunkSize), func(t *testing.T) {
			ref := ipfsAdd(t, stream(c.size), c.chunkSize)
			res, err := chunker.Sum(context.Background(), stream(c.size), chunker.WithChunkSize(c.chunkSize))
			if err != nil {
				t.Fatal(err)
			}
			if !res.Root.Equals(ref.root) {
				t.Fatalf("root %s, IPFS importer gives %s", res.Root, ref.root)
			}
			if res.Size != c.size || res.ChunkSize != c.chunkSize {
				t.Errorf("size %d chunk size %d, want %d %d", res.Size, res.ChunkSize, c.size, c.chunkSize)
			}
			if len(res.Chunks) != len(ref.leaves) {
				t.Fatalf("%d chunks, IPFS has %d leaves", len(res.Chunks), len(ref.leaves))
			}
			var off int64
			for i, ch := range res.Chunks {
				if !ch.CID.Equals(ref.leaves[i]) || ch.Offset != off {
					t.Fatalf("chunk %d: %s at %d, IPFS leaf %s at %d", i, ch.CID, ch.Offset, ref.leaves[i], off)
				}
				off += int64(ch.Size)
			}
			if off != c.size {
				t.Errorf("chunks cover %d bytes, want %d", off, c.size)
			}
			if len(res.Nodes) != len(ref.nodes) {
				t.Fatalf("%d interior nodes, IPFS has %d", len(res.Nodes), len(ref.nodes))
			}
			for _, n := range res.Nodes {
				if !bytes.Equal(ref.nodes[n.CID], n.Data) {
					t.Fatalf("node %s differs from IPFS's", n.CID)
				}
				if err := chunker.VerifyChunk(n.CID, n.Data); err != nil {
					t.Fatal(err)
				}
			}
			if len(res.Nodes) > 0 && !res.Nodes[len(res.Nodes)-1].CID.Equals(res.Root) {
				t.Errorf("last node is %s, not the root", res.Nodes[len(res.Nodes)-1].CID)
			}
			if res.NumChunks != len(ref.leaves) {
				t.Errorf("NumChunks %d, IPFS has %d leaves", res.NumChunks, len(ref.leaves))
			}
			checkStreamedDAG(t, c.size, c.chunkSize, ref)
		})
	}
}

// checkStreamedDAG chunks stream(size) keeping neither chunks nor nodes and
// checks that the blocks WithNodeFunc hands out are exactly the IPFS
// importer's interior nodes, each after all its children, the root last.
func checkStreamedDAG(t *testing.T, size int64, chunkSize int, ref reference) {
	t.Helper()
	seen := map[cid.Cid]bool{}
	var last cid.Cid
	res, err := chunker.Sum(context.Background(), stream(size), chunker.WithChunkSize(chunkSize),
		chunker.WithChunkList(false), chunker.WithNodes(false),
		chunker.WithNodeFunc(func(b chunker.Block) error {
			want, ok := ref.nodes[b.CID]
			if !ok || !bytes.Equal(want, b.Data) {
				return fmt.Errorf("streamed node %s is not one of IPFS's", b.CID)
			}
			if seen[b.CID] {
				return fmt.Errorf("node %s handed out twice", b.CID)
			}
			nd, err := dag.DecodeProtobuf(b.Data)
			if err != nil {
				return err
			}
			for _, l := range nd.Links() {
				if l.Cid.Type() == cid.DagProtobuf && !seen[l.Cid] {
					return fmt.Errorf("node %s handed out before its child %s", b.CID, l.Cid)
				}
			}
			seen[b.CID] = true
			last = b.CID
			return nil
		}))
	if err != nil {
		t.Fatalf("streamed: %v", err)
	}
	if !res.Root.Equals(ref.root) || res.Size != size || res.NumChunks != len(ref.leaves) {
		t.Fatalf("streamed: root %s, %d bytes, %d chunks; IPFS importer gives %s, %d, %d",
			res.Root, res.Size, res.NumChunks, ref.root, size, len(ref.leaves))
	}
	if res.Chunks != nil || res.Nodes != nil {
		t.Errorf("streamed: kept %d chunks and %d nodes, want none", len(res.Chunks), len(res.Nodes))
	}
	if len(seen) != len(ref.nodes) {
		t.Fatalf("streamed %d nodes, IPFS has %d", len(seen), len(ref.nodes))
	}
	if len(seen) > 0 && !last.Equals(ref.root) {
		t.Errorf("last streamed node is %s, not the root", last)
	}
}

// TestKnownCIDs pins IDs that IPFS gives independently of this code.
func TestKnownCIDs(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{"", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		{"hello world", "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"},
	} {
		res, err := chunker.Sum(context.Background(), strings.NewReader(c.data))
		if err != nil {
			t.Fatal(err)
		}
		if res.Root.String() != c.want {
			t.Errorf("%q: root %s, want %s", c.data, res.Root, c.want)
		}
		if len(res.Chunks) != 1 || !res.Chunks[0].CID.Equals(res.Root) || len(res.Nodes) != 0 {
			t.Errorf("%q: a one-chunk file is its chunk; got %+v", c.data, res)
		}
		if got := chunker.ChunkCID([]byte(c.data)); got.String() != c.want {
			t.Errorf("ChunkCID(%q) = %s, want %s", c.data, got, c.want)
		}
	}
}

// TestChunkerWriterSumAgree checks that the three ways to chunk a stream
// give the same chunks, whatever the number of workers and write sizes.
func TestChunkerWriterSumAgree(t *testing.T) {
	for _, size := range []int64{0, 1, small, 100*small + 17, chunker.MaxLinks*small + 1} {
		for _, workers := range []int{1, 2, 5} {
			t.Run(fmt.Sprintf("size=%d/workers=%d", size, workers), func(t *testing.T) {
				opts := []chunker.Option{chunker.WithChunkSize(small), chunker.WithWorkers(workers)}
				data := streamBytes(t, size)

				var seen []chunker.Chunk
				want, err := chunker.Sum(context.Background(), iotest.HalfReader(bytes.NewReader(data)),
					append(opts, chunker.WithChunkFunc(func(c chunker.Chunk) error {
						c.Data = bytes.Clone(c.Data)
						seen = append(seen, c)
						return nil
					}))...)
				if err != nil {
					t.Fatal(err)
				}
				checkChunks(t, "callback", seen, want, data)

				c, err := chunker.New(iotest.OneByteReader(bytes.NewReader(data)), opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				var got []chunker.Chunk
				for {
					ch, err := c.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					ch.Data = bytes.Clone(ch.Data)
					got = append(got, ch)
				}
				checkChunks(t, "Next", got, want, data)

				w, err := chunker.NewWriter(opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				// Writes of every size from 0 to beyond a chunk.
				for rest, n := data, 1; len(rest) > 0; n = (n*7 + 3) % (3 * small) {
					k := min(n, len(rest))
					if _, err := w.Write(rest[:k]); err != nil {
						t.Fatal(err)
					}
					rest = rest[k:]
				}
				res, err := w.Finish()
				if err != nil {
					t.Fatal(err)
				}
				if !res.Root.Equals(want.Root) || len(res.Chunks) != len(want.Chunks) {
					t.Fatalf("Writer root %s (%d chunks), Sum %s (%d)", res.Root, len(res.Chunks), want.Root, len(want.Chunks))
				}
				if _, err := w.Write([]byte{1}); !errors.Is(err, chunker.ErrClosed) {
					t.Errorf("Write after Finish: %v, want ErrClosed", err)
				}
			})
		}
	}
}

func checkChunks(t *testing.T, how string, got []chunker.Chunk, want *chunker.Result, data []byte) {
	t.Helper()
	if len(got) != len(want.Chunks) {
		t.Fatalf("%s: %d chunks, want %d", how, len(got), len(want.Chunks))
	}
	for i, c := range got {
		w := want.Chunks[i]
		if c.Index != i || c.Info() != w {
			t.Fatalf("%s: chunk %d is %d %+v, want %+v", how, i, c.Index, c.Info(), w)
		}
		if !bytes.Equal(c.Data, data[c.Offset:c.Offset+int64(len(c.Data))]) {
			t.Fatalf("%s: chunk %d has the wrong bytes", how, i)
		}
		if err := chunker.VerifyChunk(c.CID, c.Data); err != nil {
			t.Fatalf("%s: %v", how, err)
		}
	}
}

func TestBuilderFromChunkIDs(t *testing.T) {
	want, err := chunker.Sum(context.Background(), stream(3*chunker.MaxLinks*small+9), chunker.WithChunkSize(small))
	if err != nil {
		t.Fatal(err)
	}
	b := chunker.NewBuilder()
	for _, c := range want.Chunks {
		if err := b.Add(c.CID, c.Size); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if !got.Root.Equals(want.Root) || len(got.Nodes) != len(want.Nodes) {
		t.Fatalf("builder root %s, Sum %s", got.Root, want.Root)
	}
	if _, err := b.Finish(); !errors.Is(err, chunker.ErrClosed) {
		t.Errorf("second Finish: %v, want ErrClosed", err)
	}
	empty, err := chunker.NewBuilder().Finish()
	if err != nil || empty.Root.String() != "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku" {
		t.Errorf("empty builder: %v %v", empty, err)
	}
}

func TestVerifyChunk(t *testing.T) {
	data := []byte("some chunk")
	c := chunker.ChunkCID(data)
	if err := chunker.VerifyChunk(c, data); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[0] ^= 1
	for name, err := range map[string]error{
		"flipped bit": chunker.VerifyChunk(c, bad),
		"truncated":   chunker.VerifyChunk(c, data[1:]),
		"undefined":   chunker.VerifyChunk(cid.Undef, data),
	} {
		if !errors.Is(err, chunker.ErrCIDMismatch) {
			t.Errorf("%s: %v, want ErrCIDMismatch", name, err)
		}
	}
	// Other hash functions are checked through the CID's own prefix.
	pre := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x1e /* blake3 */, MhLength: 32}
	b3, err := pre.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := chunker.VerifyChunk(b3, data); err != nil {
		t.Errorf("blake3 CID: %v", err)
	}
	if err := chunker.VerifyChunk(b3, bad); !errors.Is(err, chunker.ErrCIDMismatch) {
		t.Errorf("blake3 CID, bad data: %v", err)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	for _, opts := range [][]chunker.Option{
		{chunker.WithChunkSize(0)},
		{chunker.WithChunkSize(chunker.MaxChunkSize + 1)},
		{chunker.WithWorkers(0)},
	} {
		if _, err := chunker.Sum(ctx, stream(10), opts...); !errors.Is(err, chunker.ErrInvalidOption) {
			t.Errorf("Sum: %v, want ErrInvalidOption", err)
		}
		if _, err := chunker.New(stream(10), opts...); !errors.Is(err, chunker.ErrInvalidOption) {
			t.Errorf("New: %v, want ErrInvalidOption", err)
		}
	}

	boom := errors.New("boom")
	calls := 0
	_, err := chunker.Sum(ctx, stream(100*small), chunker.WithChunkSize(small),
		chunker.WithChunkFunc(func(c chunker.Chunk) error {
			calls++
			if c.Index == 3 {
				return boom
			}
			return nil
		}))
	if !errors.Is(err, boom) || calls != 4 {
		t.Errorf("callback error: %v after %d calls, want boom after 4", err, calls)
	}

	r := io.MultiReader(stream(10*small), iotest.ErrReader(boom))
	if _, err := chunker.Sum(ctx, r, chunker.WithChunkSize(small)); !errors.Is(err, boom) {
		t.Errorf("reader error: %v, want boom", err)
	}
	c, err := chunker.New(io.MultiReader(stream(10*small), iotest.ErrReader(boom)), chunker.WithChunkSize(small))
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = c.Next()
	}
	if !errors.Is(err, boom) {
		t.Errorf("Next: %v, want boom", err)
	}
	if _, err := c.Next(); !errors.Is(err, boom) {
		t.Errorf("Next after error: %v, want boom again", err)
	}
	c.Close()

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := chunker.Sum(cctx, stream(10*small), chunker.WithChunkSize(small)); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}

	c, err = chunker.New(stream(10*small), chunker.WithChunkSize(small))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	if _, err := c.Next(); !errors.Is(err, chunker.ErrClosed) {
		t.Errorf("Next after Close: %v, want ErrClosed", err)
	}
}

func TestParseChunkSize(t *testing.T) {
	for in, want := range map[string]int{
		"262144": 262144, "size-262144": 262144, "256KiB": 262144, "1MiB": 1 << 20,
		"1mib": 1 << 20, "512 KiB": 512 << 10, "1MB": 1000000, "4kb": 4000, "100B": 100,
		"2096896": chunker.MaxChunkSize, "1": 1,
	} {
		got, err := chunker.ParseChunkSize(in)
		if err != nil || got != want {
			t.Errorf("ParseChunkSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "MiB", "1.5MiB", "-1", "1GiB", "3MiB", "2097153", "size-", "ten", "99999999999MiB"} {
		if got, err := chunker.ParseChunkSize(in); !errors.Is(err, chunker.ErrInvalidOption) {
			t.Errorf("ParseChunkSize(%q) = %d, %v; want ErrInvalidOption", in, got, err)
		}
	}
}

// TestKeepOptions checks what a result holds with the chunk list or the
// nodes dropped, and that a failing node callback stops chunking.
func TestKeepOptions(t *testing.T) {
	ctx := context.Background()
	size := int64(3*chunker.MaxLinks*small + 9)
	full := sum(t, size, small)

	noList, err := chunker.Sum(ctx, stream(size), chunker.WithChunkSize(small), chunker.WithChunkList(false))
	if err != nil {
		t.Fatal(err)
	}
	if noList.Chunks != nil || noList.NumChunks != len(full.Chunks) || len(noList.Nodes) != len(full.Nodes) {
		t.Fatalf("WithChunkList(false): %d chunks kept, NumChunks %d, %d nodes; want 0, %d, %d",
			len(noList.Chunks), noList.NumChunks, len(noList.Nodes), len(full.Chunks), len(full.Nodes))
	}
	// The nodes alone still prove chunks.
	for _, i := range []int{0, chunker.MaxLinks, full.NumChunks - 1} {
		p, err := noList.Proof(i)
		if err != nil {
			t.Fatalf("Proof(%d) without the chunk list: %v", i, err)
		}
		if err := chunker.VerifyProof(noList.Root, full.Chunks[i].CID, i, p); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	if _, err := noList.Proof(full.NumChunks); !errors.Is(err, chunker.ErrIndexOutOfRange) {
		t.Errorf("Proof past the end: %v, want ErrIndexOutOfRange", err)
	}

	noNodes, err := chunker.Sum(ctx, stream(size), chunker.WithChunkSize(small), chunker.WithNodes(false))
	if err != nil {
		t.Fatal(err)
	}
	if noNodes.Nodes != nil || len(noNodes.Chunks) != len(full.Chunks) || !noNodes.Root.Equals(full.Root) {
		t.Fatalf("WithNodes(false): %d nodes, %d chunks, root %s", len(noNodes.Nodes), len(noNodes.Chunks), noNodes.Root)
	}
	if _, err := noNodes.Proof(0); !errors.Is(err, chunker.ErrBadProof) {
		t.Errorf("Proof without nodes: %v, want ErrBadProof", err)
	}

	// Builder takes the same options; a refused node fails Add, then Finish.
	boom := errors.New("boom")
	nodes := 0
	b := chunker.NewBuilder(chunker.WithChunkList(false), chunker.WithNodeFunc(func(chunker.Block) error {
		nodes++
		return boom
	}))
	var addErr error
	for i, c := range full.Chunks {
		if addErr = b.Add(c.CID, c.Size); addErr != nil {
			if i != chunker.MaxLinks-1 {
				t.Errorf("Add failed at chunk %d, want %d (when the first node is sealed)", i, chunker.MaxLinks-1)
			}
			break
		}
	}
	if !errors.Is(addErr, boom) || nodes != 1 {
		t.Errorf("Add: %v after %d nodes, want boom after 1", addErr, nodes)
	}
	if err := b.Add(full.Chunks[0].CID, small); !errors.Is(err, boom) {
		t.Errorf("Add after a failure: %v, want boom again", err)
	}
	if _, err := b.Finish(); !errors.Is(err, boom) {
		t.Errorf("Finish after a failure: %v, want boom", err)
	}

	// Sum returns the callback's error, also for the root sealed in Finish.
	_, err = chunker.Sum(ctx, stream(size), chunker.WithChunkSize(small),
		chunker.WithNodeFunc(func(blk chunker.Block) error {
			if blk.CID.Equals(full.Root) {
				return boom
			}
			return nil
		}))
	if !errors.Is(err, boom) {
		t.Errorf("Sum with a failing node callback: %v, want boom", err)
	}
}
