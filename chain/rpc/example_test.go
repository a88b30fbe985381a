package rpc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/chain/rpc"
)

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A client of a remote endpoint whose every read is proven against the
// validators of the network's genesis file.
func ExampleOpen() {
	home, err := os.MkdirTemp("", "satchel-rpc-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)
	lead, _ := chain.GenerateKey()
	n, err := node.New(home,
		node.WithGenesis(chain.DefaultGenesis(lead.Account(), lead.Account())),
		node.WithRPCAddr(freePort()), node.WithP2PAddr("127.0.0.1:0"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer n.Stop()

	t, err := rpc.Open(ctx, n.RPCAddress(), rpc.Trust{Genesis: n.GenesisFile()})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	c := chain.NewClient(t)
	p, err := c.Params(ctx) // proven
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.StorageLead == lead.Account())
	// Output: true
}
