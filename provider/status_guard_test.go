package provider

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
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
		if code := post("keep", h.hdr); code != http.StatusForbidden || kept() {
			t.Fatalf("keep, %s: %d, kept %v; want 403 and nothing kept", h.name, code, kept())
		}
	}
	if code := post("keep", map[string]string{ActionHeader: "keep"}); code != http.StatusOK || !kept() {
		t.Fatalf("the operator's keep: %d, kept %v; want 200, kept", code, kept())
	}
	for _, h := range hostile {
		if code := post("release", h.hdr); code != http.StatusForbidden || !kept() {
			t.Fatalf("release, %s: %d, kept %v; want 403 and still kept", h.name, code, kept())
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
