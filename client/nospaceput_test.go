package client

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/testnet"
)

// fillDisk restarts provider p with its block store on a small tmpfs that
// has noRoomLeft bytes free, so every chunk it is sent fails with a full
// disk. It skips the test where a tmpfs cannot be mounted (it takes root).
func fillDisk(t *testing.T, p *testnet.Provider) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full disk needs a small tmpfs, which only root can mount")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	blocks := filepath.Join(p.Dir, "blocks")
	kept := blocks + ".kept"
	if err := os.Rename(blocks, kept); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(blocks, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", blocks).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, out)
	}
	// Lazily: the provider may still hold files in it when the test ends.
	t.Cleanup(func() { _ = exec.Command("umount", "-l", blocks).Run() })
	if out, err := exec.Command("cp", "-a", kept+"/.", blocks).CombinedOutput(); err != nil {
		t.Fatalf("copying the block store onto the tmpfs: %v: %s", err, out)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(blocks, &fs); err != nil {
		t.Fatal(err)
	}
	const noRoomLeft = 128 << 10 // room for the store's own small writes, not for a chunk
	free := int64(fs.Bavail) * fs.Bsize
	if free <= noRoomLeft {
		t.Fatalf("the tmpfs has %d bytes free, want more than %d", free, noRoomLeft)
	}
	if err := os.WriteFile(filepath.Join(blocks, "filler"), make([]byte, free-noRoomLeft), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Restart(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// storeFailed is how many chunk exchanges provider p answered FAILED since
// it started.
func storeFailed(p *testnet.Provider) float64 {
	n, _ := metricsutil.Counter(p.Registry(), "satchel_provider_store_chunks_total", "result", "failed")
	return n
}

// A provider whose disk is full (its FAILED replies say no_space) is
// given up for the put at its first such answer, and a spare takes its
// place, as for a dead one: it is not sent the chunk again (it was, up to
// five times a chunk). A pipeline head's relayed no_space is only the
// head's word (TestPipelineHeadCannotEvictHonestHops): the hop is pushed
// the chunk directly once, and given up on its own answer. One chunk in
// flight at a time (WithWindow(1)) makes the count exact: pushed directly,
// the full provider fails one exchange; as a pipeline hop, two (the
// forwarded chunk, then the one direct push); and it is sent nothing
// after.
func TestNetworkPutGivesUpFullProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	for _, mode := range []Replication{ReplicateDirect, ReplicatePipelined} {
		t.Run(mode.String(), func(t *testing.T) {
			net := testnet.New(t, testnet.Providers(4))
			// The third bucket's: a target of the put, not the spare, and a
			// hop, not the head, of the first chunk's pipeline.
			full := net.Provider(2)
			fillDisk(t, full)
			c := netClient(t, net, t.TempDir(), WithWindow(1))
			data := randomBytes(t, 6*itChunk+1000, 71)
			obj, err := c.Put(testCtx(t), net.Bag, bytes.NewReader(data), WithRedundancy(3), WithReplication(mode))
			if err != nil {
				t.Fatalf("put with one provider's disk full and a spare: %v", err)
			}
			failed := storeFailed(full)
			if failed == 0 {
				t.Fatal("the full provider was never sent a chunk; the test needs it among the put's first targets")
			}
			wantFailed := 1.0
			if mode == ReplicatePipelined {
				wantFailed = 2 // the relayed failure is checked by one direct push
			}
			if failed != wantFailed {
				t.Errorf("the full provider failed %v chunk exchanges; want %v: given up at its first own full-disk answer", failed, wantFailed)
			}
			want := []string{net.Provider(0).AddrInfo().ID.String(), net.Provider(1).AddrInfo().ID.String(), net.Provider(3).AddrInfo().ID.String()}
			var got []string
			for _, p := range obj.Providers {
				got = append(got, p.String())
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("object stored on %v; want the three providers with room %v", got, want)
			}
			checkStored(t, c, net, obj, data)
		})
	}
}
