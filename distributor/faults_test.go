package distributor_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// A provider killed while a response streams does not break it: the next
// provider continues from the chunk the dead one did not deliver.
func TestProviderKilledMidResponse(t *testing.T) {
	e := newEnv(t, 2)
	data := randomBytes(t, 24<<20)
	obj := e.put(t, data, 256<<10, 0, 1)
	testnet.Wait(t, "both providers hold the object", func() bool {
		return e.net.Provider(0).Holds(obj.ID) && e.net.Provider(1).Holds(obj.ID)
	})
	resp, err := http.Get(e.d.AssetURL(obj.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make([]byte, 0, len(data))
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	got = append(got, head...)

	srv := e.d.Server()
	fetches := map[string]uint64{}
	for _, s := range srv.Status().Sources {
		fetches[s.Peer] = s.Fetches
	}
	victim, survivor := e.net.Provider(0), e.net.Provider(1)
	if fetches[survivor.Host().ID().String()] > fetches[victim.Host().ID().String()] {
		victim, survivor = survivor, victim
	}
	survivorID := survivor.Host().ID().String()
	before := fetches[survivorID]
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("response broken after a provider died: %v", err)
	}
	got = append(got, rest...)
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, differing from the object", len(got))
	}
	var after uint64
	for _, s := range srv.Status().Sources {
		if s.Peer == survivorID {
			after = s.Fetches
		}
	}
	if after <= before {
		t.Fatalf("the surviving provider served no chunk after the kill (%d → %d fetches): the kill did not happen mid-response", before, after)
	}
}

// A client that stops reading is cut off by the write timeout: its
// request ends and the node answers others meanwhile.
func TestSlowClientBounded(t *testing.T) {
	e := newEnv(t, 1, distributor.WithWriteTimeout(300*time.Millisecond))
	data := randomBytes(t, 16<<20)
	obj := e.put(t, data, 256<<10)
	u, _ := url.Parse(e.d.AssetURL(obj.ID))
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u.Path, u.Host)
	// Read the status line only, then nothing more.
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !bytes.Contains([]byte(line), []byte("200")) {
		t.Fatalf("status line %q: %v", line, err)
	}
	active := func() float64 { return gauge(t, e.d.Registry(), "satchel_distributor_active_requests") }
	// Meanwhile another client is served.
	if resp, body := get(t, e.d.AssetURL(obj.ID), "Range", "bytes=0-99"); resp.StatusCode != 206 || !bytes.Equal(body, data[:100]) {
		t.Fatalf("other client: %d", resp.StatusCode)
	}
	testnet.Wait(t, "the stalled request to end", func() bool { return active() == 0 })
}

// A CAR of an object holds its blocks, each verifiable against its CID,
// root first; raw blocks are served by CID.
func TestVerifiableResponses(t *testing.T) {
	e := newEnv(t, 1)
	data := randomBytes(t, 200<<10+3)
	obj := e.put(t, data, 1<<10) // two levels
	resp, body := get(t, e.d.AssetURL(obj.ID)+"?format=car")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.ipld.car; version=1" {
		t.Fatalf("car: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	root, _ := cid.Decode(obj.ContentID)
	hl, n := binary.Uvarint(body)
	if n <= 0 || hl > 1<<10 || n+int(hl) > len(body) || !bytes.Contains(body[n:n+int(hl)], root.Bytes()) || !bytes.Contains(body[n:n+int(hl)], []byte("version")) {
		t.Fatalf("car header does not name the root")
	}
	first, content, leaf := carContent(t, body)
	if !first.Equals(root) || !bytes.Equal(content, data) {
		t.Fatalf("car: first block %s (root %s), leaves hold %d bytes of %d", first, root, len(content), len(data))
	}
	for _, c := range []cid.Cid{root, leaf} {
		resp, b := get(t, e.d.AssetURL(obj.ID)+"/blocks/"+c.String())
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.ipld.raw" || chunker.VerifyChunk(c, b) != nil {
			t.Fatalf("raw block %s: %d", c, resp.StatusCode)
		}
	}
}
