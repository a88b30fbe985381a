package testnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/satchel-net/satchel/chain"
)

// setupFile records what the one-time chain setup created, so a network
// started again on the same directory finds its buckets and bag instead of
// creating new ones.
const setupFile = "network.json"

// Voucher limits of every bucket the network creates: far above what a test
// or a devnet stores, below the genesis maximums.
const (
	bucketObjectsLimit = 100_000
	bucketSizeLimit    = 512 << 30
)

// setup is the chain state the network made once and reuses on restart.
type setup struct {
	ChainID   string                  `json:"chainId"`
	Workers   []chain.WorkerID        `json:"workers"`
	Buckets   []chain.StorageBucketID `json:"buckets"`
	Member    chain.MemberID          `json:"member"`
	Channel   chain.ChannelID         `json:"channel"`
	Bag       chain.BagID             `json:"bag"`
	Providers int                     `json:"providers"`
}

// keys are the accounts of a network, kept as files under dir/keys so a
// restarted network signs with the same ones.
type keys struct {
	storageLead      chain.Key
	distributionLead chain.Key
	member           chain.Key
	workers          []chain.Key
}

func loadKeys(dir string, providers int) (keys, error) {
	var k keys
	var err error
	load := func(name string) chain.Key {
		if err != nil {
			return chain.Key{}
		}
		var key chain.Key
		key, err = chain.LoadOrCreateKey(keyFile(dir, name))
		return key
	}
	k.storageLead = load("storage-lead")
	k.distributionLead = load("distribution-lead")
	k.member = load("member")
	for i := range providers {
		k.workers = append(k.workers, load(fmt.Sprintf("provider-%d", i)))
	}
	return k, err
}

func keyFile(dir, name string) string { return filepath.Join(dir, "keys", name+".key") }

// readSetup returns the setup recorded in dir, or ok false when there is none.
func readSetup(dir string) (s setup, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, setupFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, false, fmt.Errorf("testnet: %s: %w", filepath.Join(dir, setupFile), err)
	}
	return s, true, nil
}

func writeSetup(dir string, s setup) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, setupFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, setupFile))
}

// setupChain makes, through ordinary transactions, what a storage network
// needs: one storage worker and one bucket per provider (each worker the
// active operator of its bucket, signing with its role key, which is also
// its transactor), a dynamic bag policy placing every new channel in all the
// buckets, a member and its channel. The channel's bag is the network's bag.
// The storage lead invites the member (invite_member), as a network whose
// open registration is closed registers its members.
func setupChain(ctx context.Context, c *chain.Client, k keys, providers int) (setup, error) {
	s := setup{Providers: providers}
	id, err := c.ChainID(ctx)
	if err != nil {
		return s, err
	}
	s.ChainID = id
	for i := range providers {
		res, err := c.Submit(ctx, k.storageLead, chain.MsgAddWorker{Group: chain.StorageGroup, Account: k.workers[i].Account()})
		if err != nil {
			return s, fmt.Errorf("testnet: add storage worker %d: %w", i, err)
		}
		added, ok := chain.FindEvent[chain.WorkerAdded](res.Result.Events)
		if !ok {
			return s, errors.New("testnet: add worker: no WorkerAdded event")
		}
		w := added.Worker
		res, err = c.Submit(ctx, k.storageLead, chain.MsgCreateStorageBucket{
			AcceptingNewBags: true,
			ObjectsLimit:     bucketObjectsLimit,
			SizeLimit:        bucketSizeLimit,
			InviteWorker:     &w,
		})
		if err != nil {
			return s, fmt.Errorf("testnet: create storage bucket %d: %w", i, err)
		}
		created, ok := chain.FindEvent[chain.StorageBucketCreated](res.Result.Events)
		if !ok {
			return s, errors.New("testnet: create bucket: no StorageBucketCreated event")
		}
		if _, err := c.Submit(ctx, k.workers[i], chain.MsgAcceptStorageBucketInvitation{Worker: w, Bucket: created.Bucket}); err != nil {
			return s, fmt.Errorf("testnet: worker %d accepts bucket %d: %w", w, created.Bucket, err)
		}
		s.Workers = append(s.Workers, w)
		s.Buckets = append(s.Buckets, created.Bucket)
	}
	if providers > 0 {
		if _, err := c.Submit(ctx, k.storageLead, chain.MsgSetStorageDynamicBagPolicy{
			BagType: chain.ChannelBagType, StorageBuckets: uint64(providers),
		}); err != nil {
			return s, fmt.Errorf("testnet: channel bag policy: %w", err)
		}
	}
	res, err := c.Submit(ctx, k.storageLead, chain.MsgInviteMember{Controller: k.member.Account(), Handle: "alice"})
	if err != nil {
		return s, fmt.Errorf("testnet: invite member: %w", err)
	}
	m, ok := chain.FindEvent[chain.MemberCreated](res.Result.Events)
	if !ok {
		return s, errors.New("testnet: invite member: no MemberCreated event")
	}
	s.Member = m.Member
	res, err = c.Submit(ctx, k.member, chain.MsgCreateChannel{Member: m.Member, Title: "testnet"})
	if err != nil {
		return s, fmt.Errorf("testnet: create channel: %w", err)
	}
	ch, ok := chain.FindEvent[chain.ChannelCreated](res.Result.Events)
	if !ok {
		return s, errors.New("testnet: create channel: no ChannelCreated event")
	}
	s.Channel, s.Bag = ch.Channel, ch.Bag
	return s, nil
}
