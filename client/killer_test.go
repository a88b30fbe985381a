package client

import (
	"sync"
	"testing"

	"github.com/satchel-net/satchel/testnet"
)

// killer stops one provider during an upload, once, from a progress
// callback: in the background, since a callback must not block the
// upload, and wait returns once the kill has finished.
type killer struct {
	once   sync.Once
	wg     sync.WaitGroup
	victim *testnet.Provider
}

// kill stops the provider pick names (none if nil), the first time it is
// called.
func (k *killer) kill(t *testing.T, pick func() *testnet.Provider) {
	k.once.Do(func() {
		if k.victim = pick(); k.victim == nil {
			return
		}
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			if err := k.victim.Kill(); err != nil {
				t.Error(err)
			}
		}()
	})
}

// wait returns once the kill, if any, has finished.
func (k *killer) wait() { k.wg.Wait() }

// always returns a pick function naming p.
func always(p *testnet.Provider) func() *testnet.Provider {
	return func() *testnet.Provider { return p }
}
