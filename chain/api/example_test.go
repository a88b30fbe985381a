package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/api"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/chain/verify"
)

// Serve proven reads over HTTP/JSON.
func Example() {
	home, err := os.MkdirTemp("", "satchel-api-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)
	lead, _ := chain.GenerateKey()
	n, err := node.New(home, node.WithGenesis(chain.DefaultGenesis(lead.Account(), lead.Account())),
		node.WithRPCAddr(""), node.WithP2PAddr("127.0.0.1:0"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := n.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer n.Stop()
	trust, _ := verify.TrustGenesisFile(n.GenesisFile())
	vt, err := verify.New(ctx, n.Transport(), trust)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(vt))
	defer srv.Close()

	res, err := http.Get(srv.URL + "/api/v1/bags/static:council")
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	var bag chain.Bag
	json.NewDecoder(res.Body).Decode(&bag)
	fmt.Println(res.StatusCode, bag.ID)
	// Output: 200 static:council
}
