package distributor_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// lyingSource flips a byte of every block one provider sends: a corrupt or
// lying provider, which a real one (it verifies its own disk) cannot be
// made into. It embeds the fetch.Client it wraps, as a tracing or metrics
// wrapper would: the Blocks it builds are not Verified, so the node hashes
// them whatever the client it wraps does.
type lyingSource struct {
	*fetch.Client
	liar peer.ID
}

func (s lyingSource) ReadBlock(ctx context.Context, p peer.ID, c cid.Cid) (fetch.Block, error) {
	b, err := s.Client.ReadBlock(ctx, p, c)
	if err == nil && p == s.liar && len(b.Data) > 0 {
		bad := bytes.Clone(b.Data)
		b.Release()
		bad[len(bad)/2] ^= 0xff
		return fetch.Block{Data: bad}, nil
	}
	return b, err
}

// Blocks that do not hash to their CID are neither served nor cached: the
// node takes them from the next provider and ranks the liar last.
func TestBadBlocksRejected(t *testing.T) {
	e := newEnv(t, 2)
	data := randomBytes(t, 256<<10)
	obj := e.put(t, data, 32<<10, 0, 1)
	liar := e.net.Provider(0).Host().ID()
	reg := prometheus.NewRegistry()
	srv := e.ownDistributor(t, func(fc *fetch.Client) distributor.BlockSource { return lyingSource{Client: fc, liar: liar} },
		distributor.WithMetrics(reg))
	url := srv.URL() + "/api/v1/assets/" + obj.ID.String()
	for range 2 { // a miss, then a hit from what was cached
		resp, body := get(t, url)
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("status %d, body matches %v", resp.StatusCode, bytes.Equal(body, data))
		}
	}
	if n := counter(t, reg, "satchel_distributor_fetch_errors_total"); n == 0 {
		t.Fatal("no fetch from the lying provider was rejected")
	}
	st := srv.Status()
	if len(st.Sources) != 2 || st.Sources[1].Peer != liar.String() || st.Sources[1].Failures == 0 {
		t.Fatalf("ranking: %+v; want the liar last with failures", st.Sources)
	}
}
