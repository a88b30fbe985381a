//go:build unix

package main

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// getIntoFIFO checks that `satchel get -o FIFO` of the first len(want)
// bytes of object cid writes them straight into the FIFO and leaves it a
// FIFO.
func (pn *putNet) getIntoFIFO(cid, bag string, want []byte) {
	pn.t.Helper()
	fifo := filepath.Join(pn.t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		pn.t.Fatal(err)
	}
	rd, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		pn.t.Fatal(err)
	}
	defer rd.Close()
	if err := rd.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		pn.t.Fatal(err)
	}
	fromFIFO := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(want))
		n, _ := io.ReadFull(rd, b)
		fromFIFO <- b[:n]
	}()
	pn.ok("get", cid, "--bag", bag, "--length", strconv.Itoa(len(want)), "-o", fifo)
	if b := <-fromFIFO; !bytes.Equal(b, want) {
		pn.t.Fatalf("read %d bytes from the FIFO; want the object's first %d bytes", len(b), len(want))
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
		pn.t.Fatalf("after get, the FIFO is %v (%v)", fi.Mode(), err)
	}
}
