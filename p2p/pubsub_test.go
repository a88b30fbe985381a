package p2p_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/p2p/testnet"
)

// WaitTopicPeers returns once the host knows the subscribers asked for, and
// says how many it knows when its context ends first.
func TestWaitTopicPeers(t *testing.T) {
	net := testnet.NewMock(t, 3, 0)
	for _, i := range []int{1, 2} {
		sub, err := net.Host(i).Subscribe(contractTopic)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := net.Host(0)
	if err := h.WaitTopicPeers(ctx, contractTopic, 2); err != nil {
		t.Fatalf("wait for the 2 subscribers: %v", err)
	}
	if n := len(h.TopicPeers(contractTopic)); n != 2 {
		t.Fatalf("WaitTopicPeers returned with %d subscribers known, want 2", n)
	}
	short, stop := context.WithTimeout(ctx, 600*time.Millisecond)
	defer stop()
	err := h.WaitTopicPeers(short, contractTopic, 3)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "2 peers known") {
		t.Fatalf("wait for a third subscriber that never comes: %v; want the deadline, naming the 2 known", err)
	}
}
