package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// heldAddr returns a loopback address another listener holds until the test
// ends: an address in use.
func heldAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// inUse names the setting whose address is taken: the only one, or the one
// the error names; other errors pass through.
func TestInUse(t *testing.T) {
	addr := heldAddr(t)
	_, err := net.Listen("tcp", addr)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("listen on a held address: %v", err)
	}
	wrapped := fmt.Errorf("provider: status server: %w", err)
	got := inUse(wrapped, listenSetting{flag: "--status", addr: addr})
	want := "--status " + addr + ": address already in use, another program (another satchel node?) listens there; stop it, or pass another --status HOST:PORT"
	if got.Error() != want || !errors.Is(got, syscall.EADDRINUSE) {
		t.Errorf("one setting: %v; want %q, wrapping EADDRINUSE", got, want)
	}
	// Two settings: the one whose address the error names, with its key.
	flat := errors.New("chain node: failed to listen on " + addr + ": listen tcp " + addr + ": bind: address already in use")
	got = inUse(flat, listenSetting{flag: "--p2p", addr: "127.0.0.1:1"}, listenSetting{flag: "--rpc", key: "chain.rpc", addr: addr})
	if !strings.HasPrefix(got.Error(), "--rpc "+addr+": address already in use") || !strings.HasSuffix(got.Error(), "pass another --rpc HOST:PORT (or set chain.rpc in the config)") {
		t.Errorf("two settings: %v", got)
	}
	if got := inUse(flat, listenSetting{flag: "--p2p", addr: "127.0.0.1:1"}, listenSetting{flag: "--rpc", addr: "127.0.0.1:2"}); got != flat {
		t.Errorf("no setting named: %v; want the error unchanged", got)
	}
	other := errors.New("listen tcp: permission denied")
	if got := inUse(other, listenSetting{flag: "--status", addr: addr}); got != other {
		t.Errorf("another error: %v; want it unchanged", got)
	}
	port := inUse(err, listenSetting{flag: "--status-port", addr: addr, port: true})
	if !strings.HasSuffix(port.Error(), "pass another --status-port") {
		t.Errorf("a port flag: %v", port)
	}
}

// devnet checks the ports it was given before starting anything, naming
// the flag of one that is taken.
func TestDevnetPortsInUse(t *testing.T) {
	status, dist := heldAddr(t), heldAddr(t)
	_, statusPort, _ := net.SplitHostPort(status)
	_, distPort, _ := net.SplitHostPort(dist)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--rpc", status}, "--rpc " + status + ": address already in use"},
		{[]string{"--status-port", statusPort, "--providers", "1"}, "--status-port " + status + ": address already in use"},
		{[]string{"--status-port", "0", "--distributor-port", distPort}, "--distributor-port " + dist + ": address already in use"},
	} {
		home := filepath.Join(t.TempDir(), "devnet")
		var out, errOut bytes.Buffer
		args := append([]string{"devnet", "--home", home, "--rpc", freeAddr(t)}, tt.args...)
		if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), tt.want) ||
			strings.Contains(errOut.String(), "starting devnet") {
			t.Errorf("satchel %s: exit %d, stderr %q; want %q before starting", strings.Join(args, " "), code, errOut.String(), tt.want)
		}
	}
}
