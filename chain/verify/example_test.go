package verify_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/chain/verify"
)

// A client whose reads are proven: it trusts the genesis validators, not
// the node it reads from.
func Example() {
	home, err := os.MkdirTemp("", "satchel-verify-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)
	lead, _ := chain.GenerateKey()
	n, err := node.New(home,
		node.WithGenesis(chain.DefaultGenesis(lead.Account(), lead.Account())),
		node.WithRPCAddr(""), node.WithP2PAddr("127.0.0.1:0"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := n.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer n.Stop()

	trust, err := verify.TrustGenesisFile(n.GenesisFile())
	if err != nil {
		log.Fatal(err)
	}
	vt, err := verify.New(ctx, n.Transport(), trust, verify.WithEndpoint("local node"))
	if err != nil {
		log.Fatal(err)
	}
	client := chain.NewClient(vt)
	member, _ := chain.GenerateKey()
	if _, err := client.Submit(ctx, member, chain.MsgCreateMember{Handle: "alice"}); err != nil {
		log.Fatal(err)
	}
	m, err := client.Member(ctx, 0) // proven against the validators' signatures
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Handle)
	// Output: alice
}
