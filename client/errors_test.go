package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
)

// An upload that ends short of providers blames busy providers only when
// every one it tried was busy: with a dead one among them, the error says
// to check the providers too and does not match ErrProvidersBusy, so a
// caller does not wait for a dead provider to become free.
func TestNoProviderErrorBusyOnlyWhenAllBusy(t *testing.T) {
	busy := PeerError{Peer: peer.ID("busy-provider-a"), Err: busyPushError("chunk 3", 0, store.ErrProviderBusy)}
	dead := PeerError{Peer: peer.ID("dead-provider-b"), Err: fmt.Errorf("dial: connection refused")}

	all := &NoProviderError{Bag: "dynamic:channel:1", Need: 2, Have: 0, Op: "upload", Tried: []PeerError{busy, busy}}
	if !errors.Is(all, ErrProvidersBusy) || !errors.Is(all, ErrNoProviderReachable) {
		t.Fatalf("every provider busy: %v; want ErrProvidersBusy and ErrNoProviderReachable", all)
	}
	if msg := all.Error(); !strings.Contains(msg, "--busy-wait") || strings.Contains(msg, "check that the providers run") {
		t.Fatalf("every provider busy: %q; want the advice to wait, not to check the providers", msg)
	}

	mixed := &NoProviderError{Bag: "dynamic:channel:1", Need: 2, Have: 0, Op: "upload", Tried: []PeerError{busy, dead}}
	if errors.Is(mixed, ErrProvidersBusy) || !errors.Is(mixed, ErrNoProviderReachable) {
		t.Fatalf("a busy and a dead provider: %v; want ErrNoProviderReachable only", mixed)
	}
	if msg := mixed.Error(); !strings.Contains(msg, "check that the providers run") || !strings.Contains(msg, "--busy-wait") {
		t.Fatalf("a busy and a dead provider: %q; want both pieces of advice", msg)
	}

	none := &NoProviderError{Bag: "dynamic:channel:1", Need: 1, Op: "upload", Tried: []PeerError{dead}}
	if errors.Is(none, ErrProvidersBusy) || strings.Contains(none.Error(), "busy") {
		t.Fatalf("a dead provider: %v; want no busy advice", none)
	}
}

var errConnRefused = errors.New("dial tcp 127.0.0.1:26657: connection refused")

// bagFails is a chain whose Bag fails with err.
type bagFails struct {
	Chain
	err error
}

func (b bagFails) Bag(context.Context, chain.BagID) (chain.Bag, error) { return chain.Bag{}, b.err }

// TestChainErrorNamesBag: a chain error met while working on a bag names
// the bag, once, whether or not the chain's own message does, and keeps
// its sentinel.
func TestChainErrorNamesBag(t *testing.T) {
	net := newFakeNet(t, 1)
	for _, tc := range []struct {
		name string
		err  error
		is   error
	}{
		{"transport", fmt.Errorf("read the chain: %w", errConnRefused), errConnRefused},
		{"not found", chain.Errorf(chain.ErrBagNotFound, "bag %s does not exist", net.bag), chain.ErrBagNotFound},
	} {
		c, err := New(Config{Chain: bagFails{net.chain, tc.err}, Key: net.key, Host: net.host(t)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Upload(testCtx(t), net.bag)
		if !errors.Is(err, tc.is) || strings.Count(err.Error(), string(net.bag)) != 1 {
			t.Fatalf("%s: %v; want %v naming bag %s once", tc.name, err, tc.is, net.bag)
		}
		_ = c.Close()
	}
}

// The advice that ends an upload's NoProviderError matches why each
// provider failed: a provider that reported its disk full (by the reply's
// no_space flag, or an older one by its reason's words) is named as such, one that refused for another reason is named as refusing, and
// "check that the providers run" is given only when one could not be
// reached.
func TestNoProviderErrorHintMatchesCause(t *testing.T) {
	full := PeerError{Peer: peer.ID("full-provider-aaaaa"), Err: fmt.Errorf("chunk 4: %w", &store.RefusedError{
		Status: storepb.Status_STATUS_FAILED, Reason: "provider could not store the chunk: write /srv/blocks/p1: no space left on device"})}
	// The reply's no_space flag names the disk whatever the system's words.
	flagged := PeerError{Peer: peer.ID("voll-provider-ddddd"), Err: fmt.Errorf("chunk 2: %w", &store.RefusedError{
		Status: storepb.Status_STATUS_FAILED, NoSpace: true, Reason: "provider could not store the chunk: Auf dem Gerät ist kein Speicherplatz mehr verfügbar"})}
	refused := PeerError{Peer: peer.ID("picky-provider-bbbb"), Err: &store.RefusedError{
		Status: storepb.Status_STATUS_REFUSED, Reason: "not authorized: bucket 3 is not storing bag dynamic:channel:1"}}
	gone := PeerError{Peer: peer.ID("gone-provider-ccccc"), Err: &unreachableError{what: "chunk 9", waited: DefaultReconnectWait, err: openFailed(errors.New("dial: connection refused"))}}
	upload := func(tried ...PeerError) string {
		return (&NoProviderError{Bag: "dynamic:channel:1", Need: 4, Have: 3, Op: "upload", Tried: tried}).Error()
	}
	for _, tc := range []struct {
		name      string
		msg       string
		want, not []string
	}{
		{"disk full", upload(full), []string{shortPeer(full.Peer) + " reported its disk full", "no space left on device", "run the command again"},
			[]string{"check that the providers run", "refused the upload"}},
		{"disk full by the flag", upload(flagged), []string{shortPeer(flagged.Peer) + " reported its disk full", "Speicherplatz"},
			[]string{"check that the providers run", "refused the upload"}},
		{"refused", upload(refused), []string{shortPeer(refused.Peer) + " refused the upload for the reason it gave", "not authorized"},
			[]string{"check that the providers run", "disk full"}},
		{"unreachable", upload(gone), []string{"unreachable for 30s", "check that the providers run and are reachable"},
			[]string{"refused the upload", "disk full"}},
		{"all three", upload(full, refused, gone), []string{"reported its disk full", "refused the upload", "check that the providers run"}, nil},
	} {
		for _, s := range tc.want {
			if !strings.Contains(tc.msg, s) {
				t.Errorf("%s: %q lacks %q", tc.name, tc.msg, s)
			}
		}
		for _, s := range tc.not {
			if strings.Contains(tc.msg, s) {
				t.Errorf("%s: %q says %q", tc.name, tc.msg, s)
			}
		}
	}
}
