package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFlagsRefusedUpFront: flags no command can honour are refused
// with the cause, a non-zero exit and nothing made on disk, before any
// network starts or any node is asked.
func TestBadFlagsRefusedUpFront(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	cfgPath := filepath.Join(dir, "config.yml")
	writeFile(t, cfgPath, "home: "+home+"\nchain:\n  rpc: http://"+freeAddr(t)+"\n")
	notChain := freeAddr(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("Moved elsewhere")) }))
	defer web.Close()
	peerID := "12D3KooWGRUVh1nTjbgDa3zZzCt5Sf1ncmb6tKBNGWvB9LBQvL7N"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"devnet", "--home", home, "--rpc", "garbage"}, `--rpc "garbage": want HOST:PORT`},
		{[]string{"devnet", "--home", home, "--sample", filepath.Join(dir, "missing.mp4")}, "--sample: stat " + filepath.Join(dir, "missing.mp4") + ": no such file"},
		{[]string{"devnet", "--home", home, "--validators", "0"}, "--validators 0: a devnet needs at least one validator"},
		{[]string{"chain", "init", "--home", home, "--validators", "0"}, "--validators 0: want 1 or more"},
		{[]string{"chain", "init", "--home", home, "--validators", "-3"}, "--validators -3: want 1 or more"},
		{[]string{"chain", "init", "--home", home, "--chain-id", ""}, "--chain-id is empty"},
		{[]string{"chain", "status"}, "start it with `satchel chain start`, or set chain.rpc in " + cfgPath},
		{[]string{"chain", "status", "--rpc", "http://" + notChain}, "start it with `satchel chain start`, or fix --rpc"},
		{[]string{"chain", "status", "--rpc", "127.0.0.1:notaport"}, "fix --rpc"},
		{[]string{"chain", "status", "--rpc", "htp://" + notChain}, `--rpc "htp://` + notChain + `": scheme "htp"; want http://HOST:PORT`},
		{[]string{"chain", "api", "--rpc", "htp://" + notChain}, `--rpc "htp://` + notChain + `": scheme "htp"`},
		{[]string{"chain", "status", "--rpc", web.URL}, web.URL + " did not answer as a chain node's RPC"},
		{[]string{"chain", "api", "--trust-rpc"}, "--trust-rpc does not apply to chain api"},
		{[]string{"audit", peerID, "1", "--bag", "dynamic:channel:1", "--samples", "0"}, "--samples 0: want 1 to 8"},
		{[]string{"bag", "locate", "dynamic:channel:1", "--timeout", "0s"}, "--timeout 0s: want a duration above 0"},
		{[]string{"audit", peerID, "1", "--bag", "dynamic:channel:1", "--samples", "100"}, "--samples 100: want 1 to 8"},
		{[]string{"member", "create", "-k", filepath.Join(dir, "alice.key"), "-y"}, "or leave --key out to create a new account key at " + filepath.Join(home, "keys")},
		{[]string{"put", cfgPath, "--bag", "dynamic:channel:1", "--chunk-size", "10GiB"}, "--chunk-size 10GiB is too large"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"-c", cfgPath}, tt.args...), &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("satchel %s: exit %d, stderr %q; want a failure naming %q", strings.Join(tt.args, " "), code, errOut.String(), tt.want)
		}
		if _, err := os.Stat(home); err == nil {
			t.Fatalf("satchel %s made %s", strings.Join(tt.args, " "), home)
		}
	}
}
