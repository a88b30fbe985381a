package client_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/satchel-net/satchel/client"
	"github.com/satchel-net/satchel/testnet"
)

// Put a file into a network and read it back. The network here is a whole
// one in this process (a chain and two storage providers); an app names
// its chain node with Config.ChainRPC instead.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "satchel-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	net, err := testnet.Start(ctx, filepath.Join(dir, "net"), testnet.Config{Providers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer net.Close()

	c, err := client.New(client.Config{
		Chain:    net.Client,                    // the data directory
		Key:      net.Member,                    // the bag owner's key signs the registration
		StateDir: filepath.Join(dir, "uploads"), // interrupted uploads resume from here
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	var states []string
	obj, err := c.Put(ctx, net.Bag, strings.NewReader("hello, satchel"),
		client.WithProgress(func(p client.Progress) {
			if s := p.File.String(); len(states) == 0 || states[len(states)-1] != s {
				states = append(states, s)
			}
		}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", obj.Size, "bytes as", obj.CID, "on", len(obj.Providers), "providers")
	fmt.Println("states:", strings.Join(states, " → "))

	var out bytes.Buffer
	if _, err := c.Get(ctx, client.ObjectRef(obj.Bag, obj.ID), &out); err != nil {
		log.Fatal(err)
	}
	fmt.Println("read back:", out.String())
	// Output:
	// stored 14 bytes as bafkreifon2shye5fpkktu2rbeut5woqlkwmrqavrcltbnca5y3l2tr7k4e on 2 providers
	// states: created → chunking → registering → uploading → uploaded → accepted
	// read back: hello, satchel
}
