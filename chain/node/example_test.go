package node_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
)

// A one-validator network in a directory: start it, submit a signed
// transaction through a Client, and read the events of its block.
func Example() {
	home, err := os.MkdirTemp("", "satchel-chain-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)

	storageLead, _ := chain.GenerateKey()
	distributionLead, _ := chain.GenerateKey()
	n, err := node.New(home,
		node.WithGenesis(chain.DefaultGenesis(storageLead.Account(), distributionLead.Account())),
		node.WithRPCAddr(""),            // no RPC server: this process uses n.Transport()
		node.WithP2PAddr("127.0.0.1:0"), // any free port: no other node dials this one
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := n.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer n.Stop()

	client := chain.NewClient(n.Transport())
	member, _ := chain.GenerateKey()
	res, err := client.Submit(ctx, member, chain.MsgCreateMember{Handle: "alice"})
	if err != nil {
		log.Fatal(err)
	}
	block, err := n.Transport().BlockEvents(ctx, res.Height)
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range block.Events {
		fmt.Println(ev.Type)
	}
	// Output:
	// MemberCreated
	// BagCreated
}
