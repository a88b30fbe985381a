package distributor

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits of refusing a connection.
const (
	// maxRefusing bounds the refused connections answered at once by a
	// goroutine of their own, which waits for the client's request before
	// answering and reads the client's close after it. Past it a refusal
	// is answered at once, in Accept, and closed: a client that has not
	// sent its request yet may then see an answer it did not ask for, or
	// a reset, rather than the refusal.
	maxRefusing = 64
	// refuseRequestWait bounds the wait for a refused client's request:
	// an answer arriving before it confuses clients (Go's, for one).
	refuseRequestWait = time.Second
	// refuseWriteTimeout bounds the write of a refusal: a fresh socket's
	// send buffer takes it at once.
	refuseWriteTimeout = 100 * time.Millisecond
	// refuseLinger bounds the wait for a refused client to close after
	// the answer and the node's FIN, reading (at most refuseDrain bytes)
	// what it sent meanwhile: closing with the client's bytes unread
	// sends a reset that can discard the answer before the client reads
	// it (net/http lingers likewise).
	refuseLinger = 500 * time.Millisecond
	refuseDrain  = 64 << 10
	// refusalLogEvery is how often a refusal of one client is logged.
	refusalLogEvery = time.Minute
	// maxRefusalLogs bounds the clients whose last logged refusal is
	// remembered; past it (a flood from that many addresses in a
	// minute) new clients' refusals are counted, not logged.
	maxRefusalLogs = 1024
	// silentGrace is how long a connection may stay open without sending
	// a request before, at max, it is closed for room like an idle one:
	// a real client sends its request as soon as it connects, while
	// connections that send nothing would otherwise keep their slots for
	// the server's whole header timeout, re-dialled as often.
	silentGrace = 2 * time.Second
)

// refusal is why a connection is refused.
type refusal int

const (
	refusedPerClient refusal = iota // its client (or /48, /32) holds its bound
	refusedTotal                    // the node holds max, none idle
)

// refusalAnswers are the whole HTTP answers of refusals, built once.
var refusalAnswers = [...][]byte{
	refusedPerClient: refusalAnswer("429 Too Many Requests", "too many connections from your address, or from its network; reuse or close some and retry\n"),
	refusedTotal:     refusalAnswer("503 Service Unavailable", "the node is at its connection limit; retry later\n"),
}

func refusalAnswer(status, body string) []byte {
	return fmt.Appendf(nil, "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"+
		"Retry-After: 5\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n\r\n%s", status, len(body), body)
}

// connMetrics are the collectors a connLimiter updates.
type connMetrics struct {
	open                           prometheus.Gauge
	refusedPerClient, refusedTotal prometheus.Counter
	idleClosed                     prometheus.Counter
}

// connLimiter is a net.Listener that bounds the connections it keeps
// open: at most perClient (0: no bound) from one client — an IPv4
// address, or an IPv6 /64, which one host usually owns — clientTierShare
// times that from one IPv6 /48, and as many times the /48's from one /32
// (connclient.go), and max in all. In a full /48 or /32, room is made for
// a newcomer by closing a silent or idle connection of the sub-block
// holding the most, when that holds at least two more than the
// newcomer's (blockRoomLocked).
// A connection past a bound is answered a minimal 429 (its client's) or
// 503 (the node's) and closed, by one of at most maxRefusing goroutines
// or at once, never holding up Accept. At max, room is made for the
// newcomer first by closing the oldest connection silent for silentGrace
// (no request begun since it was accepted), then the longest idle
// keep-alive connection. connState, the http.Server's ConnState hook,
// tells it which connections began a request and which are idle.
type connLimiter struct {
	net.Listener
	max, perClient int
	caps           [clientTiers]int // of each tier's blocks; 0: none
	m              connMetrics
	log            *slog.Logger

	mu       sync.Mutex
	open     int
	clients  [clientTiers]map[netip.Prefix]int // connections open per block of each tier
	idle     list.List                         // of *limitedConn idle, longest idle first
	silent   list.List                         // of *limitedConn that began no request yet, oldest first
	now      func() time.Time
	logged   map[netip.Prefix]*refusalLog
	swept    time.Time  // when logged was last swept of old entries
	loggedAt refusalLog // of refusals at max

	refusing    map[net.Conn]struct{} // answered by a goroutine; nil once l is closed
	requestWait time.Duration         // refuseRequestWait (tests wait longer)
	closing     sync.Once
	wg          sync.WaitGroup
}

// refusalLog is when a client's refusal was last logged, and how many
// refusals were not logged since.
type refusalLog struct {
	at     time.Time
	missed int
}

// newConnLimiter bounds the connections ln accepts to total in all (at
// least 1) and perClient per client (0: no bound).
func newConnLimiter(ln net.Listener, total, perClient int, m connMetrics, log *slog.Logger) *connLimiter {
	l := &connLimiter{Listener: ln, max: max(total, 1), perClient: perClient, m: m, log: log,
		logged: map[netip.Prefix]*refusalLog{}, refusing: map[net.Conn]struct{}{},
		requestWait: refuseRequestWait, now: time.Now}
	limit := perClient
	for t := range l.caps {
		l.caps[t] = limit
		l.clients[t] = map[netip.Prefix]int{}
		limit = min(limit, math.MaxInt/clientTierShare) * clientTierShare
	}
	return l
}

// Accept returns the next connection within the bounds, refusing those
// past them.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := clientOf(c.RemoteAddr())
		lc, why, full := l.admit(c, client)
		if lc != nil {
			return lc, nil
		}
		l.refuse(c, client, why, full)
	}
}

// Close closes the listener and the refused connections still being
// answered, waiting for their goroutines.
func (l *connLimiter) Close() error {
	err := l.Listener.Close()
	l.closing.Do(func() {
		l.mu.Lock()
		for c := range l.refusing {
			_ = c.Close() // its goroutine returns at once
		}
		l.refusing = nil
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

// admit counts c, from client, in when the bounds allow it, closing a
// silent or idle connection for room in a full /48 or /32
// (blockRoomLocked) or at max (roomLocked); else it says why not, and for
// refusedPerClient which tier's block is full.
func (l *connLimiter) admit(c net.Conn, client clientBlocks) (*limitedConn, refusal, int) {
	l.mu.Lock()
	now := l.now()
	evicted, t, ok := l.blockRoomLocked(client, now)
	if !ok {
		l.mu.Unlock()
		return nil, refusedPerClient, t
	}
	if evicted != nil {
		l.releaseLocked(evicted) // in the newcomer's blocks: room there and in all
	} else if l.open >= l.max {
		if evicted = l.roomLocked(now); evicted == nil {
			l.mu.Unlock()
			return nil, refusedTotal, 0
		}
		l.releaseLocked(evicted)
	}
	lc := &limitedConn{Conn: c, l: l, client: client, accepted: now}
	lc.silent = l.silent.PushBack(lc)
	l.open++
	for t, b := range client {
		if b.IsValid() {
			l.clients[t][b]++
		}
	}
	l.m.open.Inc()
	l.mu.Unlock()
	if evicted != nil {
		// Its slot is the newcomer's already; its server goroutine, in a
		// read waiting for a request, ends with the read's error.
		_ = evicted.Conn.Close()
		l.m.idleClosed.Inc()
	}
	return lc, 0, 0
}

// blockRoomLocked finds room for client in its blocks. It reports false,
// with the tier, when client's own block holds its bound, or a wider block
// of client's is full and none of it can be closed for client; else true,
// with the connection to close for room when a wider block is full. A
// wider block's bound is not one holder's to keep: when it is full, the
// silent or idle connection whose sub-block (the block of the tier below)
// holds the most connections is closed for a newcomer whose own sub-block
// holds at least two fewer. So one /64 (or /48) parking idle keep-alive
// connections cannot lock the rest of its /48 (or /32) out, while a
// newcomer whose sub-block already holds as many as the heaviest one is
// refused, and fresh /64s or /48s still buy no room beyond the bound.
func (l *connLimiter) blockRoomLocked(client clientBlocks, now time.Time) (*limitedConn, int, bool) {
	for t, b := range client {
		if l.caps[t] == 0 || !b.IsValid() || l.clients[t][b] < l.caps[t] {
			continue
		}
		if t == tierClient {
			return nil, t, false
		}
		// The narrowest full block: a connection closed in it is in each
		// wider block of client's too.
		if c := l.heaviestIdleLocked(t, b, l.clients[t-1][client[t-1]]+1, now); c != nil {
			return c, 0, true
		}
		return nil, t, false
	}
	return nil, 0, true
}

// heaviestIdleLocked returns the connection of block b (of tier t) that
// is silent for silentGrace or idle, of the sub-block (tier t-1) holding
// the most connections, more than above; nil if none. Among those of one
// sub-block it takes the oldest silent, then the longest idle one.
func (l *connLimiter) heaviestIdleLocked(t int, b netip.Prefix, above int, now time.Time) *limitedConn {
	var best *limitedConn
	most := above
	consider := func(lc *limitedConn) {
		if lc.client[t] != b {
			return
		}
		if n := l.clients[t-1][lc.client[t-1]]; n > most {
			best, most = lc, n
		}
	}
	for e := l.silent.Front(); e != nil; e = e.Next() {
		lc := e.Value.(*limitedConn)
		if now.Sub(lc.accepted) < silentGrace {
			break // the rest are younger
		}
		consider(lc)
	}
	for e := l.idle.Front(); e != nil; e = e.Next() {
		consider(e.Value.(*limitedConn))
	}
	return best
}

// roomLocked returns the connection to close for a newcomer at max: the
// oldest one silent for silentGrace, else the longest idle; nil if none.
func (l *connLimiter) roomLocked(now time.Time) *limitedConn {
	if e := l.silent.Front(); e != nil {
		if lc := e.Value.(*limitedConn); now.Sub(lc.accepted) >= silentGrace {
			return lc
		}
	}
	if e := l.idle.Front(); e != nil {
		return e.Value.(*limitedConn)
	}
	return nil
}

// releaseLocked frees c's slot, once.
func (l *connLimiter) releaseLocked(c *limitedConn) {
	if c.released {
		return
	}
	c.released = true
	l.spokeLocked(c)
	if c.idle != nil {
		l.idle.Remove(c.idle)
		c.idle = nil
	}
	l.open--
	for t, b := range c.client {
		if !b.IsValid() {
			continue
		}
		if l.clients[t][b]--; l.clients[t][b] <= 0 {
			delete(l.clients[t], b)
		}
	}
	l.m.open.Dec()
}

// spokeLocked takes c off the silent connections, once it began a
// request (or is gone).
func (l *connLimiter) spokeLocked(c *limitedConn) {
	if c.silent != nil {
		l.silent.Remove(c.silent)
		c.silent = nil
	}
}

// connState follows the http.Server's connections: one that has not begun
// a request for silentGrace, or an idle one (between requests of a
// keep-alive connection), may be closed for room.
func (l *connLimiter) connState(c net.Conn, st http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if st != http.StateNew {
		l.spokeLocked(lc)
	}
	switch {
	case lc.released:
	case st == http.StateClosed:
		l.releaseLocked(lc)
	case st == http.StateIdle:
		if lc.idle == nil {
			lc.idle = l.idle.PushBack(lc)
		}
	case lc.idle != nil: // active again, or hijacked
		l.idle.Remove(lc.idle)
		lc.idle = nil
	}
}

// refuse counts and logs c's refusal, and answers it in a goroutine of
// its own when one of maxRefusing is free, else at once. It never blocks
// for long. For refusedPerClient, full is the tier whose block is full.
func (l *connLimiter) refuse(c net.Conn, client clientBlocks, why refusal, full int) {
	if why == refusedPerClient {
		l.m.refusedPerClient.Inc()
	} else {
		l.m.refusedTotal.Inc()
	}
	l.logRefusal(client[full], l.caps[full], why)
	l.mu.Lock()
	slow := l.refusing != nil && len(l.refusing) < maxRefusing
	if slow {
		l.refusing[c] = struct{}{}
		l.wg.Add(1)
	}
	l.mu.Unlock()
	if !slow {
		_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
		_, _ = c.Write(refusalAnswers[why])
		_ = c.Close()
		return
	}
	go func() {
		defer l.wg.Done()
		answerRefusal(c, why, l.requestWait)
		l.mu.Lock()
		delete(l.refusing, c)
		l.mu.Unlock()
	}()
}

// answerRefusal waits (wait at most) for the start of the client's
// request, answers why it is refused, sends FIN and waits (refuseLinger
// at most) for the client to close, then closes c.
func answerRefusal(c net.Conn, why refusal, wait time.Duration) {
	defer c.Close()
	var buf [512]byte
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, _ = c.Read(buf[:])
	_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	if _, err := c.Write(refusalAnswers[why]); err != nil {
		return
	}
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(refuseLinger))
	for n := 0; n < refuseDrain; {
		k, err := c.Read(buf[:])
		if err != nil {
			return
		}
		n += k
	}
}

// logRefusal logs a refusal of client (a block of any tier, whose bound is
// limit) at most once per refusalLogEvery per block (refusals at max:
// once per refusalLogEvery in all), saying how many were not logged since.
func (l *connLimiter) logRefusal(client netip.Prefix, limit int, why refusal) {
	now := time.Now()
	l.mu.Lock()
	rl := &l.loggedAt
	if why == refusedPerClient {
		rl = l.logged[client]
		if rl == nil {
			if len(l.logged) >= maxRefusalLogs && now.Sub(l.swept) >= time.Second {
				l.swept = now
				for k, v := range l.logged {
					if now.Sub(v.at) >= refusalLogEvery {
						delete(l.logged, k)
					}
				}
			}
			if len(l.logged) >= maxRefusalLogs {
				l.mu.Unlock()
				return
			}
			rl = &refusalLog{}
			l.logged[client] = rl
		}
	}
	if !rl.at.IsZero() && now.Sub(rl.at) < refusalLogEvery {
		rl.missed++
		l.mu.Unlock()
		return
	}
	missed := rl.missed
	rl.at, rl.missed = now, 0
	l.mu.Unlock()
	if why == refusedPerClient {
		l.log.Info("connection refused: client at its connection limit", "client", client, "limit", limit,
			"refused_unlogged", missed)
	} else {
		l.log.Info("connection refused: node at its connection limit, none idle", "client", client, "limit", l.max,
			"refused_unlogged", missed)
	}
}

// limitedConn is a connection a connLimiter counts until it is closed.
type limitedConn struct {
	net.Conn
	l      *connLimiter
	client clientBlocks

	accepted time.Time // by the limiter's clock

	// Guarded by l.mu.
	idle     *list.Element // in l.idle while idle
	silent   *list.Element // in l.silent until it begins a request
	released bool
}

// Close frees the connection's slot and closes it.
func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// ReadFrom passes a copy to the connection: a *net.TCPConn sends a file
// with sendfile (net/http copies an answer through its connection's
// ReadFrom when it has one).
func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite shuts the connection's writing side, so that net/http can
// send its FIN before closing one whose input it did not read.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
