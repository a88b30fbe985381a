package contracts

import (
	"crypto/ed25519"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts/pb"
	"github.com/satchel-net/satchel/topics"
)

// Conversions between the Go types and their wire messages.

// ToPB returns the wire form of p.
func (p *Proposal) ToPB() *pb.Proposal {
	pub, _ := p.Renter.PublicKey()
	return &pb.Proposal{
		Id: p.ID[:], Topic: p.Topic.Bytes(), BagId: string(p.Bag), ObjectId: uint64(p.Object),
		ContentId: p.ContentID, Size: p.Size, ChunkCount: p.Chunks,
		DurationSeconds: uint64(p.Duration / time.Second),
		Availability:    uint32(p.Availability), Speed: uint32(p.Speed), Redundancy: p.Redundancy,
		Renter: pub, RenterMember: uint64(p.Member), RenterPeer: []byte(p.RenterPeer),
		CreatedUnix: p.Created.Unix(), TtlSeconds: uint32(p.TTL / time.Second),
		RenterAddrs: p.RenterAddrs, Signature: p.Signature,
	}
}

// ProposalFromPB decodes a wire proposal. It checks the form of the fields it
// converts (lengths, descriptors); call Validate or Check for the rest.
func ProposalFromPB(m *pb.Proposal) (*Proposal, error) {
	if m == nil {
		return nil, malformed("no proposal")
	}
	id, err := idFrom(m.Id, "proposal id")
	if err != nil {
		return nil, err
	}
	tp, err := topics.FromBytes(m.Topic)
	if err != nil {
		return nil, malformed("%v", err)
	}
	renter, err := accountFrom(m.Renter, "renter")
	if err != nil {
		return nil, err
	}
	if m.DurationSeconds > uint64(MaxDuration/time.Second) {
		return nil, malformed("duration %d s: limit %v", m.DurationSeconds, MaxDuration)
	}
	if m.Availability > 0xff || m.Speed > 0xff {
		return nil, malformed("availability %d, speed %d: want descriptors 1 to 3", m.Availability, m.Speed)
	}
	pid, err := peer.IDFromBytes(m.RenterPeer)
	if err != nil {
		return nil, malformed("renter peer: %v", err)
	}
	return &Proposal{
		ID: id, Topic: tp,
		Terms: Terms{
			Bag: chain.BagID(m.BagId), Object: chain.ObjectID(m.ObjectId), ContentID: m.ContentId,
			Size: m.Size, Chunks: m.ChunkCount,
			Availability: topics.Descriptor(m.Availability), Speed: topics.Descriptor(m.Speed),
			Redundancy: m.Redundancy,
		},
		Duration: time.Duration(m.DurationSeconds) * time.Second,
		Renter:   renter, Member: chain.MemberID(m.RenterMember), RenterPeer: pid,
		Created: time.Unix(m.CreatedUnix, 0), TTL: time.Duration(m.TtlSeconds) * time.Second,
		RenterAddrs: m.RenterAddrs, Signature: m.Signature,
	}, nil
}

// ToPB returns the wire form of c.
func (c *Contract) ToPB() *pb.Contract {
	renter, _ := c.Renter.PublicKey()
	prov, _ := c.Provider.PublicKey()
	return &pb.Contract{
		Id: c.ID[:], Topic: c.Topic.Bytes(), BagId: string(c.Bag), ObjectId: uint64(c.Object),
		ContentId: c.ContentID, Size: c.Size, ChunkCount: c.Chunks,
		StartUnix: c.Start.Unix(), EndUnix: c.End.Unix(),
		Availability: uint32(c.Availability), Speed: uint32(c.Speed), Redundancy: c.Redundancy,
		Renter: renter, RenterMember: uint64(c.Member),
		Provider: prov, ProviderWorker: uint64(c.Worker), ProviderBucket: uint64(c.Bucket),
		ProviderPeer:    []byte(c.ProviderPeer),
		RenterSignature: c.RenterSignature, ProviderSignature: c.ProviderSignature,
	}
}

// ContractFromPB decodes a wire contract. It checks the form of the fields
// it converts; call Validate, VerifyProvider or Verify for the rest.
func ContractFromPB(m *pb.Contract) (*Contract, error) {
	if m == nil {
		return nil, malformed("no contract")
	}
	id, err := idFrom(m.Id, "contract id")
	if err != nil {
		return nil, err
	}
	tp, err := topics.FromBytes(m.Topic)
	if err != nil {
		return nil, malformed("%v", err)
	}
	renter, err := accountFrom(m.Renter, "renter")
	if err != nil {
		return nil, err
	}
	prov, err := accountFrom(m.Provider, "provider")
	if err != nil {
		return nil, err
	}
	if m.Availability > 0xff || m.Speed > 0xff {
		return nil, malformed("availability %d, speed %d: want descriptors 1 to 3", m.Availability, m.Speed)
	}
	pid, err := peer.IDFromBytes(m.ProviderPeer)
	if err != nil {
		return nil, malformed("provider peer: %v", err)
	}
	return &Contract{
		ID: id, Topic: tp,
		Terms: Terms{
			Bag: chain.BagID(m.BagId), Object: chain.ObjectID(m.ObjectId), ContentID: m.ContentId,
			Size: m.Size, Chunks: m.ChunkCount,
			Availability: topics.Descriptor(m.Availability), Speed: topics.Descriptor(m.Speed),
			Redundancy: m.Redundancy,
		},
		Start: time.Unix(m.StartUnix, 0), End: time.Unix(m.EndUnix, 0),
		Renter: renter, Member: chain.MemberID(m.RenterMember),
		Provider: prov, Worker: chain.WorkerID(m.ProviderWorker), Bucket: chain.StorageBucketID(m.ProviderBucket),
		ProviderPeer:    pid,
		RenterSignature: m.RenterSignature, ProviderSignature: m.ProviderSignature,
	}, nil
}

func accountFrom(b []byte, what string) (chain.Account, error) {
	if len(b) != ed25519.PublicKeySize {
		return "", malformed("%s: %d bytes, want a %d-byte ed25519 public key", what, len(b), ed25519.PublicKeySize)
	}
	return chain.AccountFromPublicKey(b), nil
}
