package testnet_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/satchel-net/satchel/testnet"
)

// A network of three providers in a directory: an object pushed to one
// provider is accepted on chain and synced to the other two.
func ExampleStart() {
	dir, err := os.MkdirTemp("", "satchel-testnet-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	net, err := testnet.Start(ctx, dir, testnet.Config{Providers: 3})
	if err != nil {
		log.Fatal(err)
	}
	defer net.Close()

	obj, err := net.Upload(ctx, []byte("hello, satchel"), 0)
	if err != nil {
		log.Fatal(err)
	}
	// Wait (polling, with the context's deadline) until every provider
	// holds the object and the chain shows it accepted.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		o, err := net.Client.DataObject(ctx, obj.Bag, obj.ID)
		held := 0
		for _, p := range net.Providers() {
			if p.Holds(obj.ID) {
				held++
			}
		}
		if err == nil && o.Accepted && held == 3 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			log.Fatal("object not synced: ", ctx.Err())
		}
	}
	fmt.Println("bag:", net.Bag)
	fmt.Println("accepted and held by 3 providers")
	// Output:
	// bag: dynamic:channel:0
	// accepted and held by 3 providers
}
