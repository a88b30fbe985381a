package distributor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// logLine is one line a logRecorder took: its level, message and
// attributes as key=value text.
type logLine struct {
	level slog.Level
	msg   string
	attrs string
}

// logRecorder is a slog handler keeping every line.
type logRecorder struct {
	mu    *sync.Mutex
	lines *[]logLine
	pre   []slog.Attr
}

func newLogRecorder() logRecorder { return logRecorder{mu: &sync.Mutex{}, lines: &[]logLine{}} }

func (h logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	for _, a := range h.pre {
		fmt.Fprintf(&b, "%s ", a)
	}
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, "%s ", a); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.lines = append(*h.lines, logLine{r.Level, r.Message, b.String()})
	return nil
}

func (h logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	h.pre = append(h.pre[:len(h.pre):len(h.pre)], as...)
	return h
}

func (h logRecorder) WithGroup(string) slog.Handler { return h }

// since returns the lines from the n-th on at level lvl or above.
func (h logRecorder) since(n int, lvl slog.Level) []logLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logLine
	for _, l := range (*h.lines)[n:] {
		if l.level >= lvl {
			out = append(out, l)
		}
	}
	return out
}

func (h logRecorder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(*h.lines)
}

// statusOf reads srv's status over HTTP.
func statusOf(t *testing.T, srv *distributor.Server) distributor.Status {
	t.Helper()
	resp, body := get(t, srv.URL()+"/api/v1/status")
	var st distributor.Status
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/status: %d %s (%v)", resp.StatusCode, body, err)
	}
	return st
}

// While its chain node is unreachable the node answers a request needing
// a chain read 503 chain_unavailable with Retry-After and a message that
// names neither the endpoint nor the error; it tries the chain again
// after a backoff doubling per failure, logs one warning naming chain.rpc
// for all the failures (then one a minute), shows the outage in its
// status and metrics, and logs the recovery once the node is back.
func TestChainUnreachable(t *testing.T) {
	e := newEnv(t, 2)
	data := randomBytes(t, 20<<10)
	obj := e.put(t, data, 8<<10)
	const first, most = 20 * time.Millisecond, 320 * time.Millisecond
	fc := &faultyChain{ChainReader: e.net.Client}
	logs := newLogRecorder()
	reg := prometheus.NewRegistry()
	srv := e.ownDistributorOn(t, fc, fetchClient, distributor.WithLogger(slog.New(logs)), distributor.WithMetrics(reg),
		distributor.WithFollowBackoff(first, most))
	url := srv.URL() + "/api/v1/assets/" + obj.ID.String()
	if st := statusOf(t, srv); !st.ChainUp || st.ChainLastContact.IsZero() || !st.ChainDownSince.IsZero() {
		t.Fatalf("status after the start: chainUp %v, last contact %v, down since %v", st.ChainUp, st.ChainLastContact, st.ChainDownSince)
	}
	if g := gauge(t, reg, "satchel_distributor_chain_up"); g != 1 {
		t.Fatalf("satchel_distributor_chain_up %v after the start, want 1", g)
	}
	mark := logs.count()

	fc.down.Store(true)
	const tries = 7
	testnet.Wait(t, fmt.Sprintf("%d tries of the unreachable chain", tries), func() bool { return len(fc.infoReadsWhileDown()) >= tries })
	resp, body := get(t, url)
	var ae struct{ Type, Message string }
	if err := json.Unmarshal(body, &ae); err != nil || resp.StatusCode != http.StatusServiceUnavailable || ae.Type != "chain_unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("GET while the chain is unreachable: %d %s (Retry-After %q); want 503 chain_unavailable with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	for _, leak := range []string{"127.0.0.1", "36658", "dial", "post", "distributor:"} {
		if strings.Contains(strings.ToLower(ae.Message), leak) {
			t.Fatalf("the answer's message %q carries %q of the chain read's error", ae.Message, leak)
		}
	}
	at := fc.infoReadsWhileDown()
	for i := 1; i < tries; i++ {
		want := min(first<<(i-1), most)
		if gap := at[i].Sub(at[i-1]); gap < want {
			t.Fatalf("try %d of the unreachable chain came %s after the one before; want at least %s (tries at %v)", i+1, gap, want, at)
		}
	}
	st := statusOf(t, srv)
	if st.ChainUp || st.ChainDownSince.IsZero() || st.ChainLastContact.IsZero() || st.ChainLastContact.After(st.ChainDownSince) {
		t.Fatalf("status while the chain is unreachable: chainUp %v, last contact %v, down since %v", st.ChainUp, st.ChainLastContact, st.ChainDownSince)
	}
	if g := gauge(t, reg, "satchel_distributor_chain_up"); g != 0 {
		t.Fatalf("satchel_distributor_chain_up %v while the chain is unreachable, want 0", g)
	}
	if n := counter(t, reg, "satchel_distributor_chain_read_failures_total"); n < tries {
		t.Fatalf("satchel_distributor_chain_read_failures_total %v after %d failed tries", n, tries)
	}
	warns := logs.since(mark, slog.LevelWarn)
	if len(warns) != 1 || !strings.Contains(warns[0].msg, "chain.rpc") || !strings.Contains(warns[0].attrs, "36658") {
		t.Fatalf("while the chain is unreachable the node logged %d warnings, want one naming chain.rpc and the read's error: %+v", len(warns), warns)
	}

	fc.down.Store(false)
	testnet.Wait(t, "the node to read the chain again", func() bool { return statusOf(t, srv).ChainUp })
	if resp, body := get(t, url); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET once the chain is back: %d, %d bytes", resp.StatusCode, len(body))
	}
	if g := gauge(t, reg, "satchel_distributor_chain_up"); g != 1 {
		t.Fatalf("satchel_distributor_chain_up %v once the chain is back, want 1", g)
	}
	var back []logLine
	for _, l := range logs.since(mark, slog.LevelInfo) {
		if strings.Contains(l.msg, "reachable again") {
			back = append(back, l)
		}
	}
	if len(back) != 1 || back[0].level != slog.LevelInfo || !strings.Contains(back[0].attrs, "failures=") {
		t.Fatalf("the recovery was logged %d times (%+v); want once at info with the failures", len(back), back)
	}
}
