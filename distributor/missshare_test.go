package distributor_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// One client's answers hold at most its share of the miss slots
// (MissClientShare): with 4 slots, a client's second uncached request waits
// for its first while another client's is served from a free slot, and
// every answer ends byte-exact once the fetches run.
func TestMissSlotsSharedPerClient(t *testing.T) {
	e := newEnv(t, 1, distributor.WithMaxCachedObject(0), distributor.WithMaxMisses(distributor.MissClientShare))
	srv := e.d.Server()
	objs := make([]chain.DataObject, 3)
	data := make([][]byte, 3)
	for i := range objs {
		data[i] = randomBytes(t, 200<<10)
		objs[i] = e.put(t, data[i], 64<<10)
	}
	// Nothing cached (not even warmed); fetches wait, so every answer that
	// took a miss slot keeps it.
	releaseFetches := srv.HoldFetchSlots()
	released := false
	defer func() {
		if !released {
			releaseFetches()
		}
	}()

	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		tr := &http.Transport{DialContext: d.DialContext, DisableCompression: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: testnet.WaitTimeout}
	}
	var wg sync.WaitGroup
	bad := make(chan string, 3)
	get := func(c *http.Client, i int) {
		wg.Go(func() {
			resp, err := c.Get(e.d.AssetURL(objs[i].ID))
			if err != nil {
				bad <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(b, data[i]) {
				bad <- "object " + objs[i].ID.String() + ": status " + resp.Status + ", body differs"
			}
		})
	}
	a := from("127.0.0.2")
	get(a, 0)
	testnet.Wait(t, "the first answer holds a slot", func() bool { return srv.MissSlotsHeld() == 1 })
	get(a, 1)
	testnet.Wait(t, "the client's second answer waits for its share", func() bool {
		return counter(t, e.d.Registry(), "satchel_distributor_miss_client_share_waits_total") == 1
	})
	get(from("127.0.0.3"), 2)
	testnet.Wait(t, "another client's answer takes a free slot", func() bool { return srv.MissSlotsHeld() == 2 })
	if n := counter(t, e.d.Registry(), "satchel_distributor_miss_client_share_waits_total"); n != 1 {
		t.Fatalf("%v answers waited for their client's share, want only the first client's second", n)
	}
	releaseFetches()
	released = true
	wg.Wait()
	close(bad)
	for s := range bad {
		t.Error(s)
	}
	testnet.Wait(t, "every slot given back", func() bool { return srv.MissSlotsHeld() == 0 })
}
