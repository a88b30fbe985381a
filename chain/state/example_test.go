package state_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
)

// The machine runs without consensus: feed it blocks, commit, query.
func Example() {
	lead, _ := chain.KeyFromSeed(bytes.Repeat([]byte{1}, 32))
	dist, _ := chain.KeyFromSeed(bytes.Repeat([]byte{2}, 32))
	m, err := state.NewMemory()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	if _, err := m.InitChain(chain.DefaultGenesis(lead.Account(), dist.Account()), time.Unix(0, 0)); err != nil {
		fmt.Println(err)
		return
	}

	tx, _ := chain.SignTx(lead, 1, chain.MsgCreateStorageBucket{AcceptingNewBags: true, ObjectsLimit: 100, SizeLimit: 1 << 30})
	results, _, err := m.FinalizeBlock(chain.BlockInfo{Height: 1, Hash: []byte("block 1")}, [][]byte{tx})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := m.Commit(); err != nil {
		fmt.Println(err)
		return
	}
	created, _ := chain.FindEvent[chain.StorageBucketCreated](results[0].Events)
	fmt.Println("created storage bucket", created.Bucket)

	b, _ := m.Query(chain.QueryStorageBucket, []byte("0"))
	fmt.Println(string(b))
	height, _, _ := m.Info()
	fmt.Println("height", height)
	// Output:
	// created storage bucket 0
	// {"id":0,"acceptingNewBags":true,"voucher":{"objectsLimit":100,"sizeLimit":1073741824,"objectsUsed":0,"sizeUsed":0},"operatorStatus":"missing","bagsCount":0,"bags":[]}
	// height 1
}
