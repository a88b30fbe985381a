package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// A provider serves audits from its block store; a challenger audits it for
// two chunks of an object and checks them against the object's content ID.
func Example() {
	ctx := context.Background()
	quiet := p2p.WithLogger(slog.New(slog.DiscardHandler))
	prov, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), quiet)
	if err != nil {
		log.Fatal(err)
	}
	defer prov.Close()
	challenger, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), quiet)
	if err != nil {
		log.Fatal(err)
	}
	defer challenger.Close()

	// The provider holds object 1 of a bag: 10 chunks of 1 KiB.
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	bs, err := blockstore.Open(dir, blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	defer bs.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), 640)
	res, _ := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(1024))
	m := blockstore.Manifest{Bag: "dynamic:channel:1", Object: 1, Root: res.Root}
	for _, c := range res.Chunks {
		_ = bs.Put(c.CID, data[c.Offset:c.Offset+int64(c.Size)])
		m.Chunks = append(m.Chunks, blockstore.ChunkRef{CID: c.CID, Size: uint64(c.Size)})
	}
	if err := bs.PutManifest(m); err != nil {
		log.Fatal(err)
	}
	h := audit.NewHandler(bs.ForAudit(), bs.ForAudit(), audit.WithLogger(slog.New(slog.DiscardHandler)))
	h.Register(prov.Protocol())
	defer h.Close()

	if err := challenger.Connect(ctx, prov.AddrInfo()); err != nil {
		log.Fatal(err)
	}
	c, err := audit.NewClient(challenger.Libp2p())
	if err != nil {
		log.Fatal(err)
	}
	out, err := c.Audit(ctx, prov.ID(), audit.Target{Bag: m.Bag, Object: 1, Root: res.Root},
		[]audit.Sample{{Index: 2}, {Index: 9}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pass:", out.Pass, "bytes:", out.BytesIn > 2048)
	// Output: pass: true bytes: true
}
