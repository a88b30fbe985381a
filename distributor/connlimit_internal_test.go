package distributor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// limitedServer is an http.Server on a connLimiter over a loopback
// listener: GET /ok answers "ok", GET /wait waits until release is
// closed.
type limitedServer struct {
	l       *connLimiter
	m       connMetrics
	addr    string
	release chan struct{}
	waiting chan struct{} // one value per /wait request entered
}

func newLimitedServer(t *testing.T, total, perClient int, log *slog.Logger) *limitedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newLimitedServerOn(t, ln, total, perClient, log)
}

// newSixServer is a limited server of 100 connections, one a client, on
// a sixListener: its loopback clients count as IPv6 ones.
func newSixServer(t *testing.T) *limitedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newLimitedServerOn(t, sixListener{ln}, 100, 1, nil)
}

// newLimitedServerOn is newLimitedServer on the listener ln.
func newLimitedServerOn(t *testing.T, ln net.Listener, total, perClient int, log *slog.Logger) *limitedServer {
	t.Helper()
	ls := &limitedServer{addr: ln.Addr().String(), release: make(chan struct{}), waiting: make(chan struct{}, 16),
		m: connMetrics{open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "open"}),
			refusedPerClient: prometheus.NewCounter(prometheus.CounterOpts{Name: "per_client"}),
			refusedTotal:     prometheus.NewCounter(prometheus.CounterOpts{Name: "total"}),
			idleClosed:       prometheus.NewCounter(prometheus.CounterOpts{Name: "idle_closed"})}}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ls.l = newConnLimiter(ln, total, perClient, ls.m, log)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		ls.waiting <- struct{}{}
		<-ls.release
		io.WriteString(w, "waited")
	})
	srv := &http.Server{Handler: mux, ConnState: ls.l.connState, ReadHeaderTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ls.l)
	}()
	t.Cleanup(func() {
		select {
		case <-ls.release:
		default:
			close(ls.release)
		}
		_ = srv.Close()
		<-done
	})
	return ls
}

// entered waits for a /wait request to enter its handler.
func (ls *limitedServer) entered(t *testing.T) {
	t.Helper()
	select {
	case <-ls.waiting:
	case <-time.After(waitTimeout):
		t.Fatal("a /wait request never reached its handler")
	}
}

// waitTimeout bounds waitFor and a read of an answer.
const waitTimeout = 10 * time.Second

// waitFor polls cond (state that announces no change) until it holds,
// failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		<-tick.C
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	_ = m.Write(&d)
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.GetGauge().GetValue()
}

// open returns how many connections the limiter counts.
func (ls *limitedServer) open() int {
	ls.l.mu.Lock()
	defer ls.l.mu.Unlock()
	return ls.l.open
}

// idle returns how many connections the limiter knows idle.
func (ls *limitedServer) idle() int {
	ls.l.mu.Lock()
	defer ls.l.mu.Unlock()
	return ls.l.idle.Len()
}

// rawConn is an HTTP/1.1 client connection from a chosen loopback
// address (on Linux all of 127.0.0.0/8 is local: each is another client).
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialFrom(t *testing.T, from, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// send writes a GET of path.
func (c *rawConn) send(t *testing.T, path string) {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: distributor\r\n\r\n"); err != nil {
		t.Fatalf("send GET %s: %v", path, err)
	}
}

// read reads an answer with its body.
func (c *rawConn) read(t *testing.T) (*http.Response, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, b
}

func (c *rawConn) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	c.send(t, path)
	return c.read(t)
}

// closedByServer reports whether the server closed c: a read ends with
// EOF or a reset (not a timeout).
func (c *rawConn) closedByServer(t *testing.T) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, err := c.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// wantRefused checks that r is the refusal answer of status code, with
// Retry-After and Connection: close, and that the server closed c after
// it.
func wantRefused(t *testing.T, c *rawConn, code int) {
	t.Helper()
	resp, body := c.read(t)
	if resp.StatusCode != code || resp.Header.Get("Retry-After") == "" || !resp.Close || len(body) == 0 {
		t.Fatalf("refusal: %d %v close=%v %q; want %d with Retry-After, Connection: close and a body", resp.StatusCode, resp.Header, resp.Close, body, code)
	}
	if !c.closedByServer(t) {
		t.Fatal("refused connection left open")
	}
}

// A client at its bound is refused 429 at once, while another client is
// served; a closed connection gives its client's slot back.
func TestConnLimiterPerClient(t *testing.T) {
	ls := newLimitedServer(t, 100, 2, nil)
	a1, a2 := dialFrom(t, "127.0.0.2", ls.addr), dialFrom(t, "127.0.0.2", ls.addr)
	for _, c := range []*rawConn{a1, a2} {
		if resp, _ := c.get(t, "/ok"); resp.StatusCode != http.StatusOK {
			t.Fatalf("first connections: %d", resp.StatusCode)
		}
	}
	a3 := dialFrom(t, "127.0.0.2", ls.addr)
	a3.send(t, "/ok")
	wantRefused(t, a3, http.StatusTooManyRequests)
	if resp, body := dialFrom(t, "127.0.0.3", ls.addr).get(t, "/ok"); resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("another client: %d %q", resp.StatusCode, body)
	}
	if n := value(ls.m.refusedPerClient); n != 1 {
		t.Fatalf("refused per client: %v, want 1", n)
	}
	a1.Close()
	waitFor(t, "a1's slot freed", func() bool { return ls.open() == 2 })
	if resp, _ := dialFrom(t, "127.0.0.2", ls.addr).get(t, "/ok"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after one closed: %d, want 200", resp.StatusCode)
	}
}

// At the total bound the longest idle connection is closed for a
// newcomer; with none idle the newcomer is refused 503, and admitted
// again once a connection closes. Every slot is freed at the end.
func TestConnLimiterTotal(t *testing.T) {
	ls := newLimitedServer(t, 2, 0, nil)
	idle := dialFrom(t, "127.0.0.2", ls.addr)
	if resp, _ := idle.get(t, "/ok"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	busy := dialFrom(t, "127.0.0.3", ls.addr)
	busy.send(t, "/wait")
	ls.entered(t)
	waitFor(t, "the first connection idle", func() bool { return ls.idle() == 1 })

	newcomer := dialFrom(t, "127.0.0.4", ls.addr)
	newcomer.send(t, "/wait")
	ls.entered(t)
	if !idle.closedByServer(t) {
		t.Fatal("the idle connection was not closed for the newcomer")
	}
	if n := value(ls.m.idleClosed); n != 1 {
		t.Fatalf("idle closed: %v, want 1", n)
	}

	refused := dialFrom(t, "127.0.0.5", ls.addr)
	refused.send(t, "/ok")
	wantRefused(t, refused, http.StatusServiceUnavailable)
	if n := value(ls.m.refusedTotal); n != 1 {
		t.Fatalf("refused at the total: %v, want 1", n)
	}

	close(ls.release)
	for _, c := range []*rawConn{busy, newcomer} {
		if resp, body := c.read(t); resp.StatusCode != http.StatusOK || string(body) != "waited" {
			t.Fatalf("held answer: %d %q", resp.StatusCode, body)
		}
	}
	busy.Close()
	waitFor(t, "the closed connection's slot freed", func() bool { return ls.open() == 1 })
	late := dialFrom(t, "127.0.0.5", ls.addr)
	if resp, _ := late.get(t, "/ok"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a close: %d, want 200", resp.StatusCode)
	}
	if n := value(ls.m.idleClosed); n != 1 {
		t.Fatalf("idle closed: %v, want still 1 (a slot was free)", n)
	}
	newcomer.Close()
	late.Close()
	waitFor(t, "every slot freed", func() bool { return ls.open() == 0 && value(ls.m.open) == 0 })
	ls.l.mu.Lock()
	defer ls.l.mu.Unlock()
	left := 0
	for _, m := range ls.l.clients {
		left += len(m)
	}
	if left != 0 || ls.l.idle.Len() != 0 {
		t.Fatalf("left behind: clients %v, idle %d", ls.l.clients, ls.l.idle.Len())
	}
}

// At max, a connection that began no request for silentGrace is closed
// for a newcomer before an idle keep-alive one (a few addresses' silent
// connections would otherwise push out every real user's idle one, and
// then hold every slot); one silent for less is not.
func TestConnLimiterSilentClosedFirst(t *testing.T) {
	ls := newLimitedServer(t, 2, 0, nil)
	var mu sync.Mutex
	now := time.Now()
	ls.l.mu.Lock()
	ls.l.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ls.l.mu.Unlock()
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	user := dialFrom(t, "127.0.0.2", ls.addr)
	if resp, _ := user.get(t, "/ok"); resp.StatusCode != http.StatusOK {
		t.Fatalf("user: %d", resp.StatusCode)
	}
	waitFor(t, "the user's connection idle", func() bool { return ls.idle() == 1 })
	silent := dialFrom(t, "127.0.0.3", ls.addr) // connects, sends nothing
	waitFor(t, "the silent connection admitted", func() bool { return ls.open() == 2 })

	advance(silentGrace)
	newcomer := dialFrom(t, "127.0.0.4", ls.addr)
	if resp, _ := newcomer.get(t, "/ok"); resp.StatusCode != http.StatusOK {
		t.Fatalf("newcomer: %d, want 200", resp.StatusCode)
	}
	if !silent.closedByServer(t) {
		t.Fatal("the silent connection was not closed for the newcomer")
	}
	if resp, _ := user.get(t, "/ok"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the user's idle connection after the newcomer came: %d, want 200 (kept)", resp.StatusCode)
	}

	// A connection silent for less than silentGrace keeps its slot: the
	// next newcomer takes an idle one's instead.
	waitFor(t, "both connections idle", func() bool { return ls.idle() == 2 })
	fresh := dialFrom(t, "127.0.0.5", ls.addr)
	waitFor(t, "an idle connection closed for the fresh one", func() bool { return value(ls.m.idleClosed) == 2 })
	next := dialFrom(t, "127.0.0.6", ls.addr)
	next.send(t, "/ok")
	if resp, _ := next.read(t); resp.StatusCode != http.StatusOK {
		t.Fatalf("the next newcomer: %d, want 200 (an idle connection's slot)", resp.StatusCode)
	}
	fresh.send(t, "/ok")
	if resp, _ := fresh.read(t); resp.StatusCode != http.StatusOK {
		t.Fatalf("the connection silent for less than the grace: %d, want 200 (kept)", resp.StatusCode)
	}
}

// Refused clients whose requests already wait unread read the whole
// refusal and see the connection closed, while Accept goes on to return
// the next admitted connection; Accept after Close fails.
func TestConnLimiterRefusalReachesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := connMetrics{open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "o"}),
		refusedPerClient: prometheus.NewCounter(prometheus.CounterOpts{Name: "p"}),
		refusedTotal:     prometheus.NewCounter(prometheus.CounterOpts{Name: "t"}),
		idleClosed:       prometheus.NewCounter(prometheus.CounterOpts{Name: "i"})}
	l := newConnLimiter(ln, 10, 1, m, slog.New(slog.DiscardHandler))
	defer l.Close()
	dialFrom(t, "127.0.0.2", ln.Addr().String())
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var refused []*rawConn
	for range 3 {
		r := dialFrom(t, "127.0.0.2", ln.Addr().String())
		r.send(t, "/api/v1/assets/1")
		refused = append(refused, r)
	}
	dialFrom(t, "127.0.0.3", ln.Addr().String())
	c2, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := c2.RemoteAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.3" {
		t.Fatalf("accepted %s, want the other client", got)
	}
	for _, r := range refused {
		wantRefused(t, r, http.StatusTooManyRequests)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

// Refused connections are answered by at most maxRefusing goroutines,
// each waiting for its client's request; past them a refusal is answered
// at once. Close ends the waiting ones at once.
func TestConnLimiterRefusalsBounded(t *testing.T) {
	ls := newLimitedServer(t, 1000, 1, nil)
	ls.l.requestWait = time.Hour // the silent clients' refusals wait
	hold := dialFrom(t, "127.0.0.2", ls.addr)
	if resp, _ := hold.get(t, "/ok"); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	const extra = 16
	var silent []*rawConn
	for range maxRefusing + extra {
		silent = append(silent, dialFrom(t, "127.0.0.2", ls.addr))
	}
	waitFor(t, "every connection refused", func() bool { return value(ls.m.refusedPerClient) == maxRefusing+extra })
	ls.l.mu.Lock()
	n := len(ls.l.refusing)
	ls.l.mu.Unlock()
	if n != maxRefusing {
		t.Fatalf("%d refusals answered by goroutines, want %d", n, maxRefusing)
	}
	// Accepted in the order dialled: the first maxRefusing wait.
	for _, c := range silent[maxRefusing:] {
		wantRefused(t, c, http.StatusTooManyRequests)
	}
	if err := ls.l.Close(); err != nil {
		t.Fatal(err)
	}
	ls.l.mu.Lock()
	left := ls.l.refusing
	ls.l.mu.Unlock()
	if left != nil {
		t.Fatal("refusals still answered after Close")
	}
	for _, c := range silent[:maxRefusing] {
		if !c.closedByServer(t) {
			t.Fatal("a waiting refusal outlived Close")
		}
	}
}

func TestClientOf(t *testing.T) {
	key := func(s string) netip.Prefix {
		return clientOf(net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)))[tierClient]
	}
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"[2001:db8:1:2:aaaa::1]:80", "[2001:db8:1:2:bbbb::9]:443", true}, // one /64
		{"[2001:db8:1:2::1]:80", "[2001:db8:1:3::1]:80", false},
		{"[fe80::1%eth0]:80", "[fe80::1%eth1]:80", true},  // zones dropped
		{"[fe80::1%eth0]:80", "[fe80::2%eth0]:80", false}, // each link-local client its own
		{"[64:ff9b::c000:201]:80", "192.0.2.1:9", true},   // NAT64 is IPv4
		{"[64:ff9b::c000:201]:80", "[64:ff9b::c633:6401]:80", false},
		{"192.0.2.1:80", "192.0.2.1:81", true},
		{"192.0.2.1:80", "192.0.2.2:80", false},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1:9", true}, // IPv4-mapped is IPv4
	} {
		if got := key(tc.a) == key(tc.b); got != tc.same {
			t.Errorf("clientOf(%s)=%v, clientOf(%s)=%v: same %v, want %v", tc.a, key(tc.a), tc.b, key(tc.b), got, tc.same)
		}
	}
	if got := key("192.0.2.1:80").String(); got != "192.0.2.1/32" {
		t.Errorf("IPv4 client %s", got)
	}
	if got := key("[2001:db8::1]:80").String(); got != "2001:db8::/64" {
		t.Errorf("IPv6 client %s", got)
	}
	for addr, want := range map[string]clientBlocks{
		"[2a02:1234:5678:9:aaaa::1]:80": {netip.MustParsePrefix("2a02:1234:5678:9::/64"),
			netip.MustParsePrefix("2a02:1234:5678::/48"), netip.MustParsePrefix("2a02:1234::/32")},
		"[fe80::1%eth0]:80":      {netip.MustParsePrefix("fe80::1/128")}, // no site's
		"[64:ff9b::c000:201]:80": {netip.MustParsePrefix("192.0.2.1/32")},
		"192.0.2.1:80":           {netip.MustParsePrefix("192.0.2.1/32")},
		"[::ffff:192.0.2.1]:80":  {netip.MustParsePrefix("192.0.2.1/32")},
	} {
		if got := clientOf(net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr))); got != want {
			t.Errorf("blocks of %s = %v, want %v", addr, got, want)
		}
	}
}

// sixListener gives each connection it accepts from 127.a.b.c the remote
// address [2001:db8+a:b:c::1], as if it came from there: the connections
// are real TCP ones, and the limiter sees IPv6 clients of chosen /64s,
// /48s and /32s.
type sixListener struct{ net.Listener }

func (l sixListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	v4 := from.Addr().As4()
	ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8 + v4[1], 0, v4[2], 0, v4[3], 15: 1})
	return sixConn{Conn: c, remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, from.Port()))}, nil
}

// sixConn is a connection with another remote address.
type sixConn struct {
	net.Conn
	remote net.Addr
}

func (c sixConn) RemoteAddr() net.Addr { return c.remote }

func (c sixConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// The /64s of one IPv6 /48 share a bound of clientTierShare clients'
// connections, and the /48s of one /32 one of clientTierShare /48s': a
// host given a /48 (65,536 /64s) that takes a fresh /64 for each
// connection is refused 429 once its /48's bound is reached and its /64s
// hold as many each; a fresh /48 of a full /32 is let in only in place of
// an idle connection of a heavier /48, so the /32 still holds its bound;
// a client of another /32 is served.
func TestConnLimiterPerSiteAndNetwork(t *testing.T) {
	ls := newSixServer(t)
	for site := 1; site <= clientTierShare; site++ { // 2001:db8:site::/48, each of its /64s at its bound
		for client := 1; client <= clientTierShare; client++ {
			served(t, ls, fmt.Sprintf("127.0.%d.%d", site, client))
		}
		refused(t, ls, fmt.Sprintf("127.0.%d.%d", site, clientTierShare+1), "a fresh /64 of a /48 whose /64s hold as many")
	}
	waitFor(t, "every connection idle", func() bool { return ls.idle() == clientTierShare*clientTierShare })
	served(t, ls, fmt.Sprintf("127.0.%d.1", clientTierShare+1)) // a fresh /48 of the full /32
	if n := value(ls.m.idleClosed); n != 1 {
		t.Fatalf("idle connections closed for a fresh /48: %v, want 1", n)
	}
	if n := ls.open(); n != clientTierShare*clientTierShare {
		t.Fatalf("the /32 holds %d connections, want its bound %d", n, clientTierShare*clientTierShare)
	}
	served(t, ls, "127.1.1.1") // 2001:db9:1:1::1, another /32
	if n := value(ls.m.refusedPerClient); n != clientTierShare {
		t.Fatalf("refused per client: %v, want %d", n, clientTierShare)
	}
}

// served fails t unless a connection from the address from is served.
func served(t *testing.T, ls *limitedServer, from string) *rawConn {
	t.Helper()
	c := dialFrom(t, from, ls.addr)
	if resp, _ := c.get(t, "/ok"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a connection from %s: %d, want 200", from, resp.StatusCode)
	}
	return c
}

// refused fails t unless a connection from the address from is refused 429.
func refused(t *testing.T, ls *limitedServer, from, why string) {
	t.Helper()
	c := dialFrom(t, from, ls.addr)
	c.send(t, "/ok")
	wantRefused(t, c, http.StatusTooManyRequests)
	if t.Failed() {
		t.Fatalf("%s not refused: %s", from, why)
	}
}

// Refusals are logged at most once a minute per client, with the count of
// those not logged; another client is logged on its own.
func TestConnLimiterRefusalLog(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, nil))
	ls := newLimitedServer(t, 100, 1, log)
	hold := dialFrom(t, "127.0.0.2", ls.addr)
	if resp, _ := hold.get(t, "/ok"); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	for range 5 {
		r := dialFrom(t, "127.0.0.2", ls.addr)
		r.send(t, "/ok")
		wantRefused(t, r, http.StatusTooManyRequests)
	}
	lines := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Split(strings.TrimSpace(buf.String()), "\n")
	}
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], "client at its connection limit") || !strings.Contains(l[0], "127.0.0.2/32") {
		t.Fatalf("log after 5 refusals of one client: %q, want one line", l)
	}
	// Its next minute's line counts the refusals not logged.
	ls.l.mu.Lock()
	ls.l.logged[clientOf(hold.LocalAddr())[tierClient]].at = time.Now().Add(-refusalLogEvery)
	ls.l.mu.Unlock()
	r := dialFrom(t, "127.0.0.2", ls.addr)
	r.send(t, "/ok")
	wantRefused(t, r, http.StatusTooManyRequests)
	if l := lines(); len(l) != 2 || !strings.Contains(l[1], "refused_unlogged=4") {
		t.Fatalf("log a minute later: %q, want a second line counting 4 unlogged", l)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
