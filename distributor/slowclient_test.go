package distributor_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/internal/logbuf"
	"github.com/satchel-net/satchel/testnet"
)

// slowGet GETs url over a raw TCP connection and returns the response,
// its headers read and its body not: the test reads the body as slowly as
// it likes, or not at all. (A receive buffer not read from stays at its
// first size; the node's send buffer grows to 4 MiB at most.)
func slowGet(t *testing.T, url string) *http.Response {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u.RequestURI(), u.Host); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(testnet.WaitTimeout))
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 1<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return resp
}

// getWithin GETs url and fails the test unless the whole answer, equal to
// want, comes within testnet.WaitTimeout: a hang detector, not a speed
// check.
func getWithin(t *testing.T, url string, want []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testnet.WaitTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v (the answer hangs)", url, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		t.Fatalf("GET %s: status %d, %d bytes of %d, equal %v, err %v", url, resp.StatusCode, len(got), len(want), bytes.Equal(got, want), err)
	}
}

// Clients that read slowly, or nothing at all, do not hold the
// --max-misses slots: with one slot, a client reading nothing of a
// streamed object (not cached: its leaf kept under a parked token) and one
// reading nothing of a cached one (its leaf dropped, read back from the
// cache) each give the slot back once a write to them blocks, and a third
// object, also not cached, is served meanwhile. Then both read on and get
// their objects whole: they take a slot again to fetch the rest.
func TestSlowClientsGiveMissSlotBack(t *testing.T) {
	const chunk = 1 << 20
	// The clients stall on purpose, for as long as the third answer takes.
	e := newEnv(t, 1, distributor.WithMaxMisses(1), distributor.WithMaxCachedObject(8<<20),
		distributor.WithMinSendRate(0, 0), distributor.WithWriteTimeout(2*testnet.WaitTimeout))
	// Over what the sockets hold.
	dataA, dataC, dataB := randomBytes(t, 9<<20), randomBytes(t, 8<<20), randomBytes(t, 256<<10)
	objA := e.put(t, dataA, chunk) // over WithMaxCachedObject: streamed
	objC := e.put(t, dataC, chunk)
	objB := e.put(t, dataB, 64<<10)

	respA := slowGet(t, e.d.AssetURL(objA.ID))
	if got := respA.Header.Get("X-Cache"); got != "miss" {
		t.Fatalf("streamed object: x-cache %q, want miss", got)
	}
	respC := slowGet(t, e.d.AssetURL(objC.ID))
	getWithin(t, e.d.AssetURL(objB.ID), dataB)
	parks := counter(t, e.d.Registry(), "satchel_distributor_miss_slot_parks_total")
	if parks < 2 {
		t.Fatalf("%.0f answers gave their miss slot back; want both slow clients' to", parks)
	}
	for _, c := range []struct {
		name string
		resp *http.Response
		want []byte
	}{{"streamed", respA, dataA}, {"cached", respC, dataC}} {
		got, err := io.ReadAll(c.resp.Body)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Fatalf("%s object read on after a stall: %d bytes of %d, equal %v, err %v", c.name, len(got), len(c.want), bytes.Equal(got, c.want), err)
		}
	}
}

// A client that trickles an answer needing the providers, slower than the
// minimum send rate, is cut off, with a log line and a count; one reading
// at network speed gets the same object whole.
func TestTricklingClientCutOff(t *testing.T) {
	var logs logbuf.Buffer
	e := newEnv(t, 1, distributor.WithMaxCachedObject(0), distributor.WithMinSendRate(256<<10, time.Second),
		distributor.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	data := randomBytes(t, 8<<20)
	obj := e.put(t, data, 1<<20)
	cuts := func() float64 { return counter(t, e.d.Registry(), "satchel_distributor_slow_clients_cut_total") }

	resp := slowGet(t, e.d.AssetURL(obj.ID))
	// Read 1 KiB every 20 ms (50 KiB/s) until the node cuts the client.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 1<<10)
	var got int64
	testnet.Wait(t, "the trickling client cut off", func() bool {
		<-tick.C
		n, err := io.ReadFull(resp.Body, buf)
		got += int64(n)
		if err != nil {
			t.Fatalf("trickling read after %d bytes: %v", got, err)
		}
		return cuts() == 1
	})
	// What the node had sent before the cut arrives; then the answer ends
	// short.
	rest, err := io.ReadAll(resp.Body)
	if got += int64(len(rest)); err == nil || got >= int64(len(data)) {
		t.Fatalf("trickling client cut off: read %d bytes of %d, then err %v; want the answer cut short", got, len(data), err)
	}
	if l := logs.String(); !strings.Contains(l, "client reads too slowly; cut off") || !strings.Contains(l, fmt.Sprintf("object=%d", obj.ID)) {
		t.Fatalf("no log line of the cut for object %d:\n%s", obj.ID, l)
	}
	getWithin(t, e.d.AssetURL(obj.ID), data)
	if n := cuts(); n != 1 {
		t.Fatalf("%.0f clients cut off after a fast one read the object; want only the trickling one", n)
	}
}
