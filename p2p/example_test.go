package p2p_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/satchel-net/satchel/p2p"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Two hosts on loopback: one serves a stream protocol that greets whoever
// asks, the other calls it. Real protocols use the IDs in this package, such
// as p2p.FetchProtocol, and their own protobuf messages.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const greet protocol.ID = "/satchel/example-greet/1.0.0"
	quiet := p2p.WithLogger(slog.New(slog.DiscardHandler))

	server, err := p2p.New(ctx, quiet)
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	proto := server.Protocol()
	proto.SetHandler(greet, func(ctx context.Context, s network.Stream) error {
		var name wrapperspb.StringValue
		if err := proto.ReadMsg(s, &name, 1<<10); err != nil {
			return err // resets the stream
		}
		return proto.WriteMsg(s, wrapperspb.String("hello, "+name.Value))
	})

	client, err := p2p.New(ctx, quiet)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if err := client.Connect(ctx, server.AddrInfo()); err != nil {
		log.Fatal(err)
	}
	s, err := client.Protocol().NewStream(ctx, server.ID(), greet)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := p2p.WriteMsg(s, wrapperspb.String("satchel")); err != nil {
		log.Fatal(err)
	}
	var reply wrapperspb.StringValue
	if err := p2p.ReadMsg(s, &reply, p2p.DefaultMaxFrame); err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply.Value)
	// Output: hello, satchel
}
