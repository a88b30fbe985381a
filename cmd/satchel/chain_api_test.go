package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/httpserve"
	"github.com/satchel-net/satchel/internal/logbuf"
)

// `satchel chain api` without --genesis proves its answers from the
// config's trust root (here the chain home's genesis) and serves them; as
// a long-running command it keeps the latest header it verified saved.
func TestChainAPIUsesConfigTrust(t *testing.T) {
	tc := startTestChain(t)
	prev := trustSaveInterval
	trustSaveInterval = 20 * time.Millisecond
	t.Cleanup(func() { trustSaveInterval = prev })
	listen := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	var code int
	var out, errOut logbuf.Buffer
	go func() {
		defer close(exited)
		code = run(ctx, []string{"-c", tc.cfgPath, "chain", "api", "--listen", listen}, &out, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if code != 0 {
			t.Errorf("chain api exited %d: %s", code, errOut.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/api/v1/info")
		if err == nil {
			var info chain.NodeInfo
			derr := json.NewDecoder(resp.Body).Decode(&info)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || derr != nil || info.ChainID != tc.node.ChainID() {
				t.Fatalf("GET /api/v1/info: %d, %+v, %v", resp.StatusCode, info, derr)
			}
			// The server has the shared limits: a huge header is refused.
			req, _ := http.NewRequest(http.MethodGet, "http://"+listen+"/api/v1/info", nil)
			req.Header.Set("X-Big", strings.Repeat("a", 4*httpserve.MaxHeaderBytes))
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("GET with a %d-byte header: %v, %v; want 431", 4*httpserve.MaxHeaderBytes, resp, err)
			} else {
				resp.Body.Close()
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the query API never answered: %v; stderr: %s", err, errOut.String())
		}
		select {
		case <-exited:
			t.Fatalf("chain api exited before it answered: %s", errOut.String())
		case <-time.After(50 * time.Millisecond): // poll until it listens
		}
	}
	// While it runs, the header it verified for that answer is saved.
	for {
		if saved, err := readTrustedHeader(trustedHeaderFile(tc.cfg)); err == nil && saved.ChainID == tc.node.ChainID() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the query API saved no verified header while running")
		}
		select {
		case <-exited:
			t.Fatalf("chain api exited: %s", errOut.String())
		case <-time.After(20 * time.Millisecond): // poll the file
		}
	}
}
