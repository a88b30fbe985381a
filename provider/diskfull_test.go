package provider

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// diskFullServer is the part of a Server that noSpace uses, on a block
// store in dir, logging to a buffer.
func diskFullServer(t *testing.T, dir string) (*Server, *bytes.Buffer) {
	t.Helper()
	bs, err := blockstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	var logs bytes.Buffer
	s := &Server{bs: bs, log: slog.New(slog.NewTextHandler(&logs, nil))}
	s.full = &noSpace{s: s}
	m, err := newMetrics(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	s.m = m
	return s, &logs
}

// A write a full disk failed is counted and logged at Warn with the fix,
// once a minute however many fail; other errors are neither.
func TestNoSpaceNote(t *testing.T) {
	s, logs := diskFullServer(t, t.TempDir())
	full := fmt.Errorf("blockstore: put: %w", &fs.PathError{Op: "write", Path: "packs/00000002.pack", Err: syscall.ENOSPC})
	for range 3 {
		if err := s.full.note("upload", full); err != full {
			t.Fatalf("note returned %v, want the error unchanged", err)
		}
	}
	other := errors.New("blockstore: put: input/output error")
	if err := s.full.note("sync", other); err != other || s.full.note("sync", nil) != nil {
		t.Fatal("note changed another error or nil")
	}
	if n := counterValue(s.m.noSpaceWrites.WithLabelValues("upload")); n != 3 {
		t.Errorf("disk full writes counted %v, want 3", n)
	}
	if n := counterValue(s.m.noSpaceWrites.WithLabelValues("sync")); n != 0 {
		t.Errorf("another error counted as a full disk (%v)", n)
	}
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "the disk is full") ||
		!strings.Contains(out, "free disk space") || !strings.Contains(out, "set-bucket-limits") || !strings.Contains(out, "op=upload") {
		t.Errorf("want one Warn with the fix, got:\n%s", out)
	}
	// A minute later it warns again.
	s.full.last = time.Now().Add(-noSpaceWarnEvery)
	s.full.note("upload", full)
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Errorf("%d warnings after a minute, want 2", n)
	}
	if d := s.diskStatus(); d == nil || d.Free == 0 || d.Used == 0 {
		t.Errorf("disk status of a temp dir: %+v", d)
	}
}

// On a file system that really fills (a small tmpfs; root only), the store
// protocol's writes fail with ENOSPC and the node warns with the fix.
func TestNoSpaceUpload(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a full disk needs a small tmpfs, which only root can mount")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	s, logs := diskFullServer(t, dir)
	b := diskFullBlocks{s.bs.ForProtocols(), s.full}
	sess := store.Session{ID: []byte("diskfull-session"), Bag: "dynamic:member:1", Expiry: time.Now().Add(time.Hour)}
	var err error
	for i := 0; i < 64 && err == nil; i++ {
		data := make([]byte, 64<<10)
		rand.Read(data)
		err = b.PutInSession(sess, chunker.ChunkCID(data), data)
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("4 MiB into a 2 MiB file system: %v; want ENOSPC", err)
	}
	if n := counterValue(s.m.noSpaceWrites.WithLabelValues("upload")); n < 1 {
		t.Errorf("disk full writes counted %v", n)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "set-bucket-limits") {
		t.Errorf("no Warn with the fix:\n%s", out)
	}
	if d := s.diskStatus(); d == nil || d.Free >= 64<<10 {
		t.Errorf("disk status of a full file system: %+v", d)
	}
}

// counterValue reads counter c.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
