package distributor_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// clientFrom returns an HTTP client of one keep-alive connection at a time
// from the loopback address ip (on Linux all of 127.0.0.0/8 is local:
// each address is another client).
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext, MaxConnsPerHost: 1, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: testnet.WaitTimeout}
}

// fetchAsset GETs an asset, returning the answer with its body read.
func fetchAsset(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, b
}

// waitConns waits until the node counts n HTTP connections open.
func (e *env) waitConns(t *testing.T, n float64) {
	t.Helper()
	testnet.Wait(t, "the open HTTP connections to settle", func() bool {
		return gauge(t, e.d.Registry(), "satchel_distributor_http_connections") == n
	})
}

// A client holding its --max-conns-per-client connections is answered 429
// on its next one, while another client is served the asset; its
// connections' slots are freed when they close.
func TestConnLimitPerClient(t *testing.T) {
	e := newEnv(t, 1, distributor.WithMaxConnsPerClient(2))
	data := randomBytes(t, 200<<10)
	obj := e.put(t, data, 64<<10)
	http.DefaultClient.CloseIdleConnections()
	e.waitConns(t, 0)

	var held []net.Conn
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	for range 2 {
		c, err := d.Dial("tcp", e.d.URL()[len("http://"):])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	e.waitConns(t, 2)
	resp, body := fetchAsset(t, clientFrom(t, "127.0.0.2"), e.d.AssetURL(obj.ID))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !resp.Close {
		t.Fatalf("third connection of a client: %s %v %q; want 429 with Retry-After, Connection: close", resp.Status, resp.Header, body)
	}
	other := clientFrom(t, "127.0.0.3")
	if resp, body := fetchAsset(t, other, e.d.AssetURL(obj.ID)); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("another client: %s, %d bytes; want the object", resp.Status, len(body))
	}
	if n := counter(t, e.d.Registry(), "satchel_distributor_http_connections_refused_total"); n != 1 {
		t.Fatalf("refused connections: %v, want 1", n)
	}
	for _, c := range held {
		c.Close()
	}
	other.CloseIdleConnections()
	e.waitConns(t, 0)
}

// At --max-conns an idle keep-alive connection is closed to admit a new
// client; with every connection answering, a new one is refused 503, and
// admitted again once one closes. Every slot is freed at the end.
func TestConnLimitTotal(t *testing.T) {
	e := newEnv(t, 1, distributor.WithMaxConns(2), distributor.WithMaxConnsPerClient(0))
	data1, data2 := randomBytes(t, 100<<10), randomBytes(t, 100<<10)
	obj1, obj2 := e.put(t, data1, 64<<10), e.put(t, data2, 64<<10)
	http.DefaultClient.CloseIdleConnections()
	e.waitConns(t, 0)
	reg, srv := e.d.Registry(), e.d.Server()

	a := clientFrom(t, "127.0.0.2")
	for _, want := range []string{"miss", "hit"} {
		if resp, body := fetchAsset(t, a, e.d.AssetURL(obj1.ID)); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data1) || resp.Header.Get("X-Cache") != want {
			t.Fatalf("a: %s x-cache %q; want the object, %s", resp.Status, resp.Header.Get("X-Cache"), want)
		}
		// The last chunk reaches the cache just after the answer that
		// carried it (asked on a's one connection).
		testnet.Wait(t, "object cached whole", func() bool {
			resp, err := a.Head(e.d.AssetURL(obj1.ID))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.Header.Get("X-Cache") == "hit"
		})
	}
	testnet.Wait(t, "a's connection idle", func() bool { return srv.IdleHTTPConns() == 1 })

	// b's answer, a miss, waits for a slot: its connection is active.
	release := srv.HoldMissSlots()
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	type answer struct {
		code int
		body []byte
	}
	answers := make(chan answer, 2)
	waitFor := func(c *http.Client) {
		go func() {
			resp, err := c.Get(e.d.AssetURL(obj2.ID))
			if err != nil {
				answers <- answer{code: -1, body: []byte(err.Error())}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			answers <- answer{resp.StatusCode, b}
		}()
	}
	waiting := func(n float64) {
		testnet.Wait(t, "answers waiting for a miss slot", func() bool {
			return gauge(t, reg, "satchel_distributor_miss_waiting_requests") == n
		})
	}
	b := clientFrom(t, "127.0.0.3")
	waitFor(b)
	waiting(1)

	c := clientFrom(t, "127.0.0.4")
	if resp, body := fetchAsset(t, c, e.d.AssetURL(obj1.ID)); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data1) {
		t.Fatalf("newcomer at the bound, one idle: %s; want the object", resp.Status)
	}
	if n := counter(t, reg, "satchel_distributor_http_idle_connections_closed_total"); n != 1 {
		t.Fatalf("idle connections closed: %v, want 1", n)
	}

	waitFor(c) // c's connection active too
	waiting(2)
	d := clientFrom(t, "127.0.0.5")
	resp, body := fetchAsset(t, d, e.d.AssetURL(obj1.ID))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("newcomer at the bound, none idle: %s %q; want 503 with Retry-After", resp.Status, body)
	}
	if n := counter(t, reg, "satchel_distributor_http_connections_refused_total"); n != 1 {
		t.Fatalf("refused connections: %v, want 1", n)
	}

	release()
	released = true
	for range 2 {
		if ans := <-answers; ans.code != http.StatusOK || !bytes.Equal(ans.body, data2) {
			t.Fatalf("held answer: %d %.200q; want the object", ans.code, ans.body)
		}
	}
	b.CloseIdleConnections()
	e.waitConns(t, 1)
	if resp, body := fetchAsset(t, d, e.d.AssetURL(obj1.ID)); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data1) {
		t.Fatalf("newcomer after a close: %s; want the object", resp.Status)
	}
	if n := counter(t, reg, "satchel_distributor_http_idle_connections_closed_total"); n != 1 {
		t.Fatalf("idle connections closed: %v, want still 1 (a slot was free)", n)
	}
	for _, cl := range []*http.Client{a, c, d} {
		cl.CloseIdleConnections()
	}
	e.waitConns(t, 0)
}
