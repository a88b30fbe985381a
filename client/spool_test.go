package client

import (
	"sync"
	"testing"
)

// TestUploadReportsSpooledBytes writes a stream through Upload.Write and
// checks progress reports the bytes spooled before Commit, and all of them
// once Commit starts.
func TestUploadReportsSpooledBytes(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	var mu sync.Mutex
	var reports []Progress
	progress := func(p Progress) {
		mu.Lock()
		reports = append(reports, p)
		mu.Unlock()
	}
	data := randomBytes(t, 4<<20, 21)
	u, err := c.Upload(testCtx(t), net.bag, WithProgress(progress))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 64 << 10 {
		if _, err := u.Write(data[off : off+64<<10]); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	var before []Progress
	for _, p := range reports {
		if p.Bytes > 0 {
			before = append(before, p)
		}
	}
	mu.Unlock()
	if len(before) == 0 {
		t.Fatal("no progress reported while 4 MiB were written")
	}
	if p := before[len(before)-1]; p.File != FileCreated || p.TotalBytes != 0 || p.Bytes > int64(len(data)) {
		t.Fatalf("progress while spooling %+v", p)
	}
	if _, err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	spooled := false
	for _, p := range reports {
		spooled = spooled || (p.File == FileCreated && p.TotalBytes == 0 && p.Bytes == int64(len(data)))
	}
	if last := reports[len(reports)-1]; !spooled || last.File != FileAccepted || last.Bytes != int64(len(data)) {
		t.Fatalf("spooled reported: %v; last report %+v", spooled, last)
	}
}
