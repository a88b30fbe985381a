package client

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/p2p"
)

// mustPutOptions returns the client's put options for opts, which must be
// valid.
func mustPutOptions(t *testing.T, c *Client, opts ...PutOption) putOptions {
	t.Helper()
	o, err := c.putOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// onlyReader hides every method of r but Read: Put streams it.
type onlyReader struct{ r *bytes.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestInvalidPutOptionsFake gives every put option a value no upload can
// run with: Put (of a file and of a stream), PutFile and Upload each fail
// at once, before a spool is made or anything registered or sent, with an
// error that names the option; the client still closes.
func TestInvalidPutOptionsFake(t *testing.T) {
	net := newFakeNet(t, 2)
	c := net.client("")
	data := []byte("some content")
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	spools := func() int {
		m, _ := filepath.Glob(filepath.Join(os.TempDir(), "satchel-upload-*"))
		return len(m)
	}
	spooled := spools()
	for _, tc := range []struct {
		opt  PutOption
		is   error
		name string // what the message must name
	}{
		{WithChunkSize(0), ErrInvalidOption, "WithChunkSize(0)"},
		{WithChunkSize(-1), ErrInvalidOption, "WithChunkSize(-1)"},
		{WithChunkSize(chunker.MaxChunkSize + 1), ErrInvalidOption, "WithChunkSize"},
		{WithRedundancy(-1), ErrInvalidOption, "WithRedundancy(-1)"},
		{WithRedundancy(3), ErrRedundancy, "2 storage bucket(s)"},
		{putOptionList{WithRedundancy(1), WithMinRedundancy(2)}, ErrRedundancy, "WithMinRedundancy(2)"},
		{WithMinRedundancy(3), ErrRedundancy, "at least 3 copies"},
		{WithAcceptTimeout(0), ErrInvalidOption, "WithAcceptTimeout(0s)"},
		{WithAcceptTimeout(-time.Second), ErrInvalidOption, "WithAcceptTimeout(-1s)"},
		{WithExpiry(0), ErrInvalidOption, "WithExpiry(0s)"},
		{WithReplication(Replication(7)), ErrInvalidOption, "WithReplication(Replication(7))"},
		{WithContracts(nil, ContractNeeds{}), ErrInvalidOption, "renter is nil"},
		{WithContracts(&contracts.Renter{}, ContractNeeds{Window: -time.Second}), ErrInvalidOption, "WithContracts"},
	} {
		calls := map[string]func() error{
			"Put": func() error {
				_, err := c.Put(testCtx(t), net.bag, bytes.NewReader(data), tc.opt)
				return err
			},
			"Put of a stream": func() error {
				_, err := c.Put(testCtx(t), net.bag, onlyReader{bytes.NewReader(data)}, tc.opt)
				return err
			},
			"PutFile": func() error {
				_, err := c.PutFile(testCtx(t), net.bag, path, tc.opt)
				return err
			},
			"Upload": func() error {
				u, err := c.Upload(testCtx(t), net.bag, tc.opt)
				if err == nil {
					u.Abort()
				}
				return err
			},
		}
		for call, f := range calls {
			err := f()
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("%s with %s: err %v, want %v naming %q", call, tc.name, err, tc.is, tc.name)
			}
		}
	}
	if n := net.chain.submits.Load(); n != 0 {
		t.Fatalf("%d transactions for refused uploads", n)
	}
	for _, p := range net.providers {
		if got := p.pushCount(); got != 0 {
			t.Fatalf("%d pushes for refused uploads", got)
		}
	}
	if n := spools(); n > spooled {
		t.Fatalf("%d spool files left by refused uploads", n-spooled)
	}
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs after refused uploads")
	}
}

// putOptionList applies several options as one.
type putOptionList []PutOption

func (l putOptionList) applyPut(o *putOptions) {
	for _, f := range l {
		f.applyPut(o)
	}
}

// TestInvalidClientOptionsFake: New refuses an option value it cannot
// run with, naming the option, instead of running with its default.
func TestInvalidClientOptionsFake(t *testing.T) {
	net := newFakeNet(t, 1)
	for _, tc := range []struct {
		opt  Option
		name string
	}{
		{WithWindow(0), "WithWindow(0)"},
		{WithFetchWindow(-2), "WithFetchWindow(-2)"},
		{WithPushTimeout(0), "WithPushTimeout(0s)"},
		{WithLocateTimeout(-time.Second), "WithLocateTimeout(-1s)"},
		{WithBusyWait(-time.Second), "WithBusyWait(-1s)"},
	} {
		c, err := New(Config{Chain: net.chain, Key: net.key, Host: net.host(t)}, tc.opt)
		if err == nil {
			_ = c.Close()
		}
		if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tc.name) {
			t.Fatalf("New with %s: err %v, want ErrInvalidOption naming it", tc.name, err)
		}
	}
	// Zero busy wait is valid: give a busy provider up at once.
	c, err := New(Config{Chain: net.chain, Key: net.key, Host: net.host(t)}, WithBusyWait(0))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
}

// TestInvalidGetOptionsFake: a peer without an ID given to WithPeers fails
// Open, Get and GetRange at once, naming the option.
func TestInvalidGetOptionsFake(t *testing.T) {
	net := newFakeNet(t, 1)
	c := net.client("")
	obj, err := c.Put(testCtx(t), net.bag, bytes.NewReader([]byte("some content")))
	if err != nil {
		t.Fatal(err)
	}
	bad := WithPeers(peer.AddrInfo{})
	ref := ObjectRef(net.bag, obj.ID)
	_, err1 := c.Open(testCtx(t), ref, bad)
	_, err2 := c.Get(testCtx(t), ref, &bytes.Buffer{}, bad)
	_, err3 := c.GetRange(testCtx(t), ref, 0, 1, &bytes.Buffer{}, bad)
	for _, err := range []error{err1, err2, err3} {
		if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "WithPeers") {
			t.Fatalf("err %v, want ErrInvalidOption naming WithPeers", err)
		}
	}
}

// host starts a libp2p host on loopback for a client of the fake network.
func (n *fakeNet) host(t *testing.T) *p2p.Host {
	t.Helper()
	h, err := p2p.New(testCtx(t), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}
