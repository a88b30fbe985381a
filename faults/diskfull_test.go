package faults

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/testnet"
)

// mountTmpfs mounts a tmpfs of size bytes at dir, or skips the test when
// this process cannot (not root, no mount). The caller unmounts.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("disk full needs a small tmpfs, which only root can mount; run `make faults` (or .ci/run) as root to cover it")
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+itoa(int(size)), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("disk full: cannot mount a tmpfs at %s (%v: %s); skipped", dir, err, out)
	}
}

func remountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+itoa(int(size)), dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s: %v: %s", dir, err, out)
	}
}

// TestDiskFull puts one provider's block store on a small file system and
// uploads until it fills: the uploads it cannot store are refused with an
// error that says the disk is full, nothing it acknowledged is lost, and once
// space returns (the file system grows) it takes uploads again.
func TestDiskFull(t *testing.T) {
	net := testnet.New(t, testnet.Providers(2))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := rand.New(rand.NewPCG(6, uint64(time.Now().UnixNano())))
	p := net.Provider(0)
	blocks := filepath.Join(p.Dir, "blocks")
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	saved := blocks + ".saved"
	if err := os.Rename(blocks, saved); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(blocks, 0o755); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, blocks, 12<<20)
	t.Cleanup(func() {
		_ = p.Kill()
		if out, err := exec.Command("umount", blocks).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", blocks, err, out)
		}
	})
	if out, err := exec.Command("cp", "-a", saved+"/.", blocks).CombinedOutput(); err != nil {
		t.Fatalf("copy the store onto the tmpfs: %v: %s", err, out)
	}
	if err := p.Restart(ctx); err != nil {
		t.Fatal(err)
	}

	h, err := net.ClientHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fc := fetch.NewClient(h.Libp2p())
	defer fc.Close()
	f := figures{Scenario: "disk full, then space returns"}
	var acked []object
	var fullErr error
	for range 40 {
		f.Attempted++
		o, err := upload(ctx, net, randData(r, 1<<20), 0)
		if err != nil {
			fullErr = err
			break
		}
		acked = append(acked, o)
	}
	if fullErr == nil {
		t.Fatal("40 MiB went onto a 12 MiB file system")
	}
	if !strings.Contains(fullErr.Error(), "no space left") {
		t.Errorf("the upload refused for a full disk says %q, which does not name the cause", fullErr)
	}
	t.Logf("refused when full: %v", fullErr)

	// Space returns.
	start := time.Now()
	remountTmpfs(t, blocks, 256<<20)
	took, ok := waitFor(time.Minute, func() bool {
		f.Attempted++
		o, err := upload(ctx, net, randData(r, 1<<20), 0)
		if err == nil {
			acked = append(acked, o)
		}
		return err == nil
	})
	if !ok {
		t.Errorf("provider took no upload %v after space returned", took)
	}
	f.Recover = time.Since(start)
	f.Acknowledged = len(acked)
	for _, o := range acked {
		if !p.Holds(o.obj.ID) {
			f.Lost++
			continue
		}
		switch readBack(ctx, h.Libp2p(), fc, p.AddrInfo(), o) {
		case readCorrupted:
			f.Corrupted++
		case readFailed:
			f.Lost++
		}
	}
	f.Note = "12 MiB tmpfs, grown to 256 MiB"
	report(t, f)
}
