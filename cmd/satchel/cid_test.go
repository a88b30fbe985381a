package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bchunk "github.com/ipfs/boxo/chunker"
	mdtest "github.com/ipfs/boxo/ipld/merkledag/test"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// runCid runs `satchel cid args...` and returns stdout, stderr and the exit code.
func runCid(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"cid"}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

// cidTestFile writes n deterministic pseudo-random bytes to a temp file.
func cidTestFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{'c', 'i', 'd'})
	_, _ = rng.Read(data)
	path := filepath.Join(t.TempDir(), "file.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// cidIPFSRoot is the root IPFS's importer (ipfs add --cid-version=1
// --raw-leaves --chunker=size-N) gives data.
func cidIPFSRoot(t *testing.T, data []byte, chunkSize int64) string {
	t.Helper()
	params := helpers.DagBuilderParams{
		Dagserv:    mdtest.Mock(),
		Maxlinks:   helpers.DefaultLinksPerBlock,
		RawLeaves:  true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256},
	}
	db, err := params.New(bchunk.NewSizeSplitter(bytes.NewReader(data), chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	return nd.Cid().String()
}

func TestCidMatchesIPFSImporter(t *testing.T) {
	path, data := cidTestFile(t, 3<<20+5)
	for _, c := range []struct {
		flags []string
		chunk int64
	}{
		{nil, 1 << 20},
		{[]string{"--chunk-size", "1MiB"}, 1 << 20},
		{[]string{"--chunk-size", "256KiB"}, 256 << 10},
		{[]string{"--chunk-size", "262144"}, 256 << 10},
		{[]string{"--chunk-size=size-262144"}, 256 << 10},
		{[]string{"--chunk-size", "1000"}, 1000},
	} {
		out, errOut, code := runCid(t, append(c.flags, path)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", c.flags, code, errOut)
		}
		if want := cidIPFSRoot(t, data, c.chunk) + "\n"; out != want {
			t.Errorf("%v: printed %q, IPFS importer gives %q", c.flags, out, want)
		}
	}
}

func TestCidJSON(t *testing.T) {
	path, data := cidTestFile(t, 5*1000+17)
	out, errOut, code := runCid(t, "--json", "--chunk-size", "1000", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Root      string `json:"root"`
		Size      int64  `json:"size"`
		ChunkSize int    `json:"chunkSize"`
		Chunks    []struct {
			Index  int    `json:"index"`
			CID    string `json:"cid"`
			Offset int64  `json:"offset"`
			Size   int    `json:"size"`
		} `json:"chunks"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if got.Root != cidIPFSRoot(t, data, 1000) || got.Size != int64(len(data)) || got.ChunkSize != 1000 || len(got.Chunks) != 6 {
		t.Fatalf("got %+v", got)
	}
	for i, c := range got.Chunks {
		end := min(c.Offset+1000, int64(len(data)))
		want := cidIPFSRoot(t, data[c.Offset:end], 1000) // a one-chunk file is its chunk
		if c.Index != i || c.Offset != int64(i)*1000 || c.Size != int(end-c.Offset) || c.CID != want {
			t.Errorf("chunk %d: %+v, want cid %s", i, c, want)
		}
	}
}

func TestCidEmptyFile(t *testing.T) {
	path, _ := cidTestFile(t, 0)
	out, errOut, code := runCid(t, path)
	if code != 0 || out != "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\n" {
		t.Errorf("exit %d, out %q, err %q", code, out, errOut)
	}
}

func TestCidErrors(t *testing.T) {
	path, _ := cidTestFile(t, 10)
	missing := filepath.Join(t.TempDir(), "nope.bin")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{missing}, "does not exist"},
		{[]string{}, "accepts 1 arg"},
		{[]string{"--chunk-size", "lots", path}, "--chunk-size"},
		{[]string{"--chunk-size", "0", path}, "outside"},
		{[]string{"--chunk-size", "4MiB", path}, "--chunk-size 4MiB is too large: a chunk holds at most 2096896 bytes"},
		{[]string{"--chunk-size", "10GiB", path}, "--chunk-size 10GiB is too large"},
		{[]string{t.TempDir()}, "is a directory"},
	} {
		out, errOut, code := runCid(t, c.args...)
		if code == 0 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, out %q, err %q; want a failure mentioning %q", c.args, code, out, errOut, c.want)
		}
	}
}

// TestCidStdin: FILE "-" reads standard input, as put does.
func TestCidStdin(t *testing.T) {
	path, data := cidTestFile(t, 3000)
	want, _, code := runCid(t, "--chunk-size", "1000", path)
	if code != 0 {
		t.Fatal("cid of the file failed")
	}
	var out, errOut bytes.Buffer
	app := &App{Out: &out, Err: &errOut}
	root := newRootCmd(app)
	root.SetArgs([]string{"cid", "--chunk-size", "1000", "-"})
	root.SetIn(bytes.NewReader(data))
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.ExecuteContext(context.Background()); err != nil || out.String() != want {
		t.Fatalf("cid -: %v, %q; want %q", err, out.String(), want)
	}
}
