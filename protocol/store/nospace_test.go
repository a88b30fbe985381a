package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// spReplies answers one chunk exchange with first, and, when first is
// AGREED, with then once SIGN arrived.
func spReplies(s network.Stream, first *pb.StoreReply, then ...*pb.StoreReply) error {
	_ = s.SetDeadline(time.Now().Add(30 * time.Second))
	var req pb.StoreRequest
	if err := p2p.ReadMsg(s, &req, store.MaxFrame); err != nil {
		return err
	}
	if req.GetRequest() == nil {
		return fmt.Errorf("first frame %v, want a chunk request", &req)
	}
	id := req.Id
	first.Id = id
	if err := p2p.WriteMsg(s, first); err != nil {
		return err
	}
	if first.Status != pb.Status_STATUS_AGREED {
		return nil
	}
	for req.GetSign() == nil {
		if err := p2p.ReadMsg(s, &req, store.MaxFrame); err != nil {
			return err
		}
	}
	for _, r := range then {
		r.Id = id
		if err := p2p.WriteMsg(s, r); err != nil {
			return err
		}
	}
	return nil
}

// spScriptedPush pushes one chunk to a provider answering as spReplies
// does, and returns the push's error.
func spScriptedPush(t *testing.T, first *pb.StoreReply, then ...*pb.StoreReply) error {
	t.Helper()
	e := newSPEnv(t)
	data := spRand(31, 10<<10)
	res := e.spObjectData(t, 1, data, 64<<10)
	served := make(chan error, 1)
	e.provider.SetStreamHandler(p2p.StoreProtocol, func(s network.Stream) {
		defer s.Close()
		served <- spReplies(s, first, then...)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, err := e.open(t).Push(ctx, spPush(t, res, data, 1, 0))
	if err == nil || rc != nil {
		t.Fatalf("push answered %v/%v got receipt %v, err %v; want an error", first.Status, then, rc, err)
	}
	if err := <-served; err != nil {
		t.Fatalf("scripted provider: %v", err)
	}
	return err
}

// A no_space refusal or failure reaches the uploader as a *RefusedError
// with NoSpace set, matching ErrNoSpace and not ErrProviderBusy, its reason
// intact; one without the flag matches neither.
func TestNoSpaceRoundTrips(t *testing.T) {
	const reason = "provider could not store the chunk: write: no space left on device"
	for _, tc := range []struct {
		name    string
		first   *pb.StoreReply
		then    []*pb.StoreReply
		status  pb.Status
		noSpace bool
	}{
		{"refused", &pb.StoreReply{Status: pb.Status_STATUS_REFUSED, Reason: reason, NoSpace: true}, nil, pb.Status_STATUS_REFUSED, true},
		{"failed at data", &pb.StoreReply{Status: pb.Status_STATUS_AGREED},
			[]*pb.StoreReply{{Status: pb.Status_STATUS_FAILED, Reason: reason, NoSpace: true}}, pb.Status_STATUS_FAILED, true},
		{"failed without the flag", &pb.StoreReply{Status: pb.Status_STATUS_AGREED},
			[]*pb.StoreReply{{Status: pb.Status_STATUS_FAILED, Reason: reason}}, pb.Status_STATUS_FAILED, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := spScriptedPush(t, tc.first, tc.then...)
			var r *store.RefusedError
			if !errors.As(err, &r) || r.Status != tc.status || r.Reason != reason || r.NoSpace != tc.noSpace {
				t.Fatalf("push: %v (%+v); want %v, NoSpace %v, the reason kept", err, r, tc.status, tc.noSpace)
			}
			if errors.Is(err, store.ErrNoSpace) != tc.noSpace || errors.Is(err, store.ErrProviderBusy) {
				t.Fatalf("push: %v matches ErrNoSpace %v (want %v), ErrProviderBusy %v", err,
					errors.Is(err, store.ErrNoSpace), tc.noSpace, errors.Is(err, store.ErrProviderBusy))
			}
		})
	}
}

// A status this uploader does not know (a later protocol's) is never taken
// for success: it is a protocol error, at the request and in place of
// SIGNED alike, even with a reason and no_space set.
func TestUnknownStatusIsNotSuccess(t *testing.T) {
	future := func() *pb.StoreReply {
		return &pb.StoreReply{Status: pb.Status(42), Reason: "a later protocol's answer", NoSpace: true}
	}
	for _, tc := range []struct {
		name  string
		first *pb.StoreReply
		then  []*pb.StoreReply
	}{
		{"at the request", future(), nil},
		{"in place of SIGNED", &pb.StoreReply{Status: pb.Status_STATUS_AGREED},
			[]*pb.StoreReply{{Status: pb.Status_STATUS_SEGMENTS_OK}, {Status: pb.Status_STATUS_DATA_RECEIVED}, future()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := spScriptedPush(t, tc.first, tc.then...); !errors.Is(err, store.ErrProtocol) {
				t.Fatalf("push answered status 42: %v; want ErrProtocol", err)
			}
		})
	}
}

// A peer built before no_space (StoreReply without field 8) decodes a
// no_space reply as the REFUSED or FAILED it is, with its reason: the
// field is one it skips.
func TestNoSpaceOlderPeerSeesRefusal(t *testing.T) {
	desc := olderStoreReply(t, "no_space")
	for _, st := range []pb.Status{pb.Status_STATUS_REFUSED, pb.Status_STATUS_FAILED} {
		b, err := proto.Marshal(&pb.StoreReply{Id: 7, Status: st, Reason: "no space left on device", NoSpace: true})
		if err != nil {
			t.Fatal(err)
		}
		status, reason, skipped := decodeAsOlder(t, desc, b)
		if status != st.Number() || reason != "no space left on device" {
			t.Fatalf("older peer reads status %d, reason %q; want %v with the reason", status, reason, st)
		}
		if !skipped {
			t.Fatal("the flag is not a field the older peer skips")
		}
	}
}

// olderStoreReply returns StoreReply's descriptor as a peer built before
// field had it: without the field (and, for a proto3 optional one, its
// synthetic oneof).
func olderStoreReply(t *testing.T, field string) protoreflect.MessageDescriptor {
	t.Helper()
	fd := protodesc.ToFileDescriptorProto(pb.File_protocol_store_pb_store_proto)
	for _, m := range fd.MessageType {
		if m.GetName() != "StoreReply" {
			continue
		}
		var kept []*descriptorpb.FieldDescriptorProto
		var dropped *descriptorpb.FieldDescriptorProto
		for _, f := range m.Field {
			if f.GetName() == field {
				dropped = f
			} else {
				kept = append(kept, f)
			}
		}
		if dropped == nil {
			t.Fatalf("StoreReply has no field %s", field)
		}
		m.Field = kept
		if dropped.GetProto3Optional() {
			oneof := dropped.GetOneofIndex()
			m.OneofDecl = append(m.OneofDecl[:oneof], m.OneofDecl[oneof+1:]...)
			for _, f := range kept {
				if f.OneofIndex != nil && f.GetOneofIndex() > oneof {
					f.OneofIndex = proto.Int32(f.GetOneofIndex() - 1)
				}
			}
		}
	}
	old, err := protodesc.NewFile(fd, nil)
	if err != nil {
		t.Fatal(err)
	}
	return old.Messages().ByName("StoreReply")
}

// decodeAsOlder decodes reply bytes b as a peer with StoreReply descriptor
// desc does, and returns the status and reason it reads and whether it
// skipped fields it does not know.
func decodeAsOlder(t *testing.T, desc protoreflect.MessageDescriptor, b []byte) (status protoreflect.EnumNumber, reason string, skipped bool) {
	t.Helper()
	m := dynamicpb.NewMessage(desc)
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("an older peer cannot decode the reply: %v", err)
	}
	return m.Get(desc.Fields().ByName("status")).Enum(), m.Get(desc.Fields().ByName("reason")).String(), len(m.GetUnknown()) > 0
}
