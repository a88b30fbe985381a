package distributor

import (
	"context"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/fetch"
)

// plainSource is a BlockSource that says nothing about verifying.
type plainSource struct{}

func (plainSource) ReadBlock(context.Context, peer.ID, cid.Cid) (fetch.Block, error) {
	return fetch.Block{}, nil
}

// rewritingSource wraps a fetch.Client (embedded, so it inherits its
// VerifiesBlocks) and changes its blocks: it must say it does not verify.
type rewritingSource struct{ *fetch.Client }

func (rewritingSource) ReadBlock(context.Context, peer.ID, cid.Cid) (fetch.Block, error) {
	return fetch.Block{Data: []byte("not what the provider sent")}, nil
}

func (rewritingSource) VerifiesBlocks() bool { return false }

// A source's blocks skip the node's hash only when the source says it
// verifies them: the fetch protocol's client does; a source without the
// method, or one that says false, has its blocks hashed.
func TestSourceVerifies(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  BlockSource
		want bool
	}{
		{"fetch.Client", (*fetch.Client)(nil), true},
		{"no VerifiesBlocks", plainSource{}, false},
		{"wrapper saying false", rewritingSource{}, false},
	} {
		if got := sourceVerifies(tc.src); got != tc.want {
			t.Errorf("%s: sourceVerifies = %v, want %v", tc.name, got, tc.want)
		}
	}
}
