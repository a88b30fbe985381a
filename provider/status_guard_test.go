package provider

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/httpserve"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// statusNode runs the status server of a node over a fake chain and
// returns the node and the server's base URL.
func statusNode(t *testing.T) (*Server, string) {
	t.Helper()
	net := testnet.New(t, 1)
	bs, _ := heldFixture(t)
	key, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(net.Host(0), bs, newFakeChain(), Identity{Worker: 1, Bucket: 1, Transactor: key},
		WithStatusAddr("127.0.0.1:0"), WithAudits(0, 0), WithScrub(0, 0), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.startStatus(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.httpSrv.Shutdown(context.Background())
		s.wg.Wait()
	})
	return s, "http://" + s.httpAddr.String()
}

// The tombstone actions are the operator's: a request a web page could
// make the operator's browser send (cross-site, from another origin, or
// without ActionHeader, as a form's POST) is refused 403 and changes
// nothing; the operator's request (curl with the header) acts.
func TestTombstoneActionsRefuseCrossSite(t *testing.T) {
	s, base := statusNode(t)
	if _, err := s.tombs.add(Tombstone{Object: 42, Bag: chain.ChannelBag(1), Evidence: EvidenceDeleted}); err != nil {
		t.Fatal(err)
	}
	post := func(action string, hdr map[string]string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s%s/42/%s", base, TombstonesPath, action), strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	kept := func() bool {
		ts, ok := s.tombs.get(42)
		if !ok {
			t.Fatal("the tombstone is gone")
		}
		return ts.Kept
	}
	// refused reports whether code is a refusal: 403 from the action guard,
	// or 421 from the loopback server's host check, which a rebound name
	// meets first.
	refused := func(code int) bool { return code == http.StatusForbidden || code == http.StatusMisdirectedRequest }
	hostile := []struct {
		name string
		hdr  map[string]string
	}{
		{"cross-site", map[string]string{ActionHeader: "1", "Sec-Fetch-Site": "cross-site"}},
		{"same-site, another port", map[string]string{ActionHeader: "1", "Sec-Fetch-Site": "same-site"}},
		{"another origin", map[string]string{ActionHeader: "1", "Origin": "http://evil.example"}},
		{"a form's POST", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		{"a rebound name", map[string]string{ActionHeader: "1", "Host": "evil.example:7070", "Origin": "http://evil.example:7070", "Sec-Fetch-Site": "same-origin"}},
	}
	for _, h := range hostile {
		if code := post("keep", h.hdr); !refused(code) || kept() {
			t.Fatalf("keep, %s: %d, kept %v; want 403/421 and nothing kept", h.name, code, kept())
		}
	}
	if code := post("keep", map[string]string{ActionHeader: "keep"}); code != http.StatusOK || !kept() {
		t.Fatalf("the operator's keep: %d, kept %v; want 200, kept", code, kept())
	}
	for _, h := range hostile {
		if code := post("release", h.hdr); !refused(code) || !kept() {
			t.Fatalf("release, %s: %d, kept %v; want 403/421 and still kept", h.name, code, kept())
		}
	}
	// A same-origin page of the server itself may act.
	origin := map[string]string{ActionHeader: "release", "Origin": base, "Sec-Fetch-Site": "same-origin"}
	if code := post("release", origin); code != http.StatusOK || kept() {
		t.Fatalf("a same-origin release: %d, kept %v; want 200, released", code, kept())
	}
}

// The status server has the shared limits: a huge header is refused.
func TestStatusServerHeaderLimit(t *testing.T) {
	_, base := statusNode(t)
	req, err := http.NewRequest(http.MethodGet, base+StatusPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("a", 4*httpserve.MaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a %d-byte header = %d; want 431", 4*httpserve.MaxHeaderBytes, resp.StatusCode)
	}
}

// A status server on loopback answers no request addressed by a host name
// (a page that points its own name at 127.0.0.1 cannot read the status,
// audits or metrics), and answers localhost and IP addresses; one bound to
// a routable address answers any name, for scrapers that use DNS.
func TestLoopbackStatusRefusesHostNames(t *testing.T) {
	_, base := statusNode(t)
	get := func(host string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+StatusPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	port := base[strings.LastIndex(base, ":")+1:]
	for _, host := range []string{"attacker.example:" + port, "attacker.example", "127.0.0.1.nip.example:" + port} {
		code, body := get(host)
		if code != http.StatusMisdirectedRequest || strings.Contains(body, "bags") {
			t.Errorf("Host %q: %d %q, want 421 without the status", host, code, body)
		}
	}
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port} {
		if code, body := get(host); code != http.StatusOK || !strings.Contains(body, "bags") {
			t.Errorf("Host %q: %d %q, want the status", host, code, body)
		}
	}

	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := loopbackHostsOnly(ok, &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9}) // routable: no check
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://status.example/", nil))
	if rec.Code != http.StatusNoContent {
		t.Errorf("routable bind refused a host name: %d", rec.Code)
	}
}
