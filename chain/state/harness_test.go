package state

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

var genesisTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// testKey returns a reproducible key named name.
func testKey(name string) chain.Key {
	seed := sha256.Sum256([]byte("satchel test key " + name))
	k, err := chain.KeyFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

var (
	storageLead = testKey("storage lead")
	distLead    = testKey("distribution lead")
	alice       = testKey("alice")
	bob         = testKey("bob")
	mallory     = testKey("mallory")
)

// harness drives a Machine block by block.
type harness struct {
	t      *testing.T
	m      *Machine
	height int64
	nonces map[chain.Account]uint64
	// hashFor returns the block hash of a height (placement seed).
	hashFor func(int64) []byte
}

func defaultHash(h int64) []byte {
	s := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("block"), uint64(h)))
	return s[:]
}

func testGenesis() chain.Genesis {
	return chain.DefaultGenesis(storageLead.Account(), distLead.Account())
}

func newHarness(t *testing.T, mutate ...func(*chain.Genesis)) *harness {
	t.Helper()
	m, err := NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	g := testGenesis()
	for _, f := range mutate {
		f(&g)
	}
	if _, err := m.InitChain(g, genesisTime); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, m: m, nonces: map[chain.Account]uint64{}, hashFor: defaultHash}
}

// sign signs msg with k's next nonce.
func (h *harness) sign(k chain.Key, msg chain.Msg) []byte {
	h.t.Helper()
	h.nonces[k.Account()]++
	b, err := chain.SignTx(k, h.nonces[k.Account()], msg)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// block finalizes and commits a block of txs.
func (h *harness) block(txs ...[]byte) []chain.TxResult {
	h.t.Helper()
	h.height++
	res, _, err := h.m.FinalizeBlock(chain.BlockInfo{Height: h.height, Time: genesisTime.Add(time.Duration(h.height) * time.Second), Hash: h.hashFor(h.height)}, txs)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.m.Commit(); err != nil {
		h.t.Fatal(err)
	}
	return res
}

// do runs msg signed by k in its own block and requires success.
func (h *harness) do(k chain.Key, msg chain.Msg) chain.TxResult {
	h.t.Helper()
	r := h.block(h.sign(k, msg))[0]
	if r.Code != chain.CodeOK {
		h.t.Fatalf("%s: code %d: %s", msg.Type(), r.Code, r.Log)
	}
	return r
}

// fail runs msg signed by k, requires it to fail with want, and checks
// that the state did not change except for the signer's nonce, which is
// used unless the message failed its stateless ValidateBasic.
func (h *harness) fail(k chain.Key, msg chain.Msg, want *chain.Error) chain.TxResult {
	h.t.Helper()
	before := dumpState(h.t, h.m)
	r := h.block(h.sign(k, msg))[0]
	if r.Code == chain.CodeOK {
		h.t.Fatalf("%s succeeded; want %v", msg.Type(), want.Msg)
	}
	if err := chain.ErrorFromCode(r.Code, r.Log); !errors.Is(err, want) {
		h.t.Fatalf("%s: got code %d (%s); want code %d (%s)", msg.Type(), r.Code, r.Log, want.Code, want.Msg)
	}
	if len(r.Events) != 0 {
		h.t.Fatalf("%s failed but emitted events %v", msg.Type(), r.Events)
	}
	if msg.ValidateBasic() != nil {
		// Stateless failures can never succeed, so they use no nonce.
		h.nonces[k.Account()]--
	}
	if after := dumpState(h.t, h.m); !maps.Equal(before, after) {
		h.t.Fatalf("%s failed but changed state beyond the signer's nonce", msg.Type())
	}
	if n := queryAs[chain.AccountInfo](h.t, h.m, chain.QueryAccount, k.Account()).Nonce; n != h.nonces[k.Account()] {
		h.t.Fatalf("%s failed: signer nonce %d; want %d (used)", msg.Type(), n, h.nonces[k.Account()])
	}
	return r
}

// dumpState returns every committed state key and value but the account
// nonces.
func dumpState(t *testing.T, m *Machine) map[string]string {
	t.Helper()
	es, err := m.reader().scan(keyState)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range es {
		if !strings.HasPrefix(e.key, keyAccount) {
			out[e.key] = string(e.value)
		}
	}
	return out
}

func queryAs[T any](t *testing.T, m *Machine, path string, arg any) T {
	t.Helper()
	v, err := queryErr[T](m, path, arg)
	if err != nil {
		t.Fatalf("query %s %v: %v", path, arg, err)
	}
	return v
}

func queryErr[T any](m *Machine, path string, arg any) (T, error) {
	var v T
	var data []byte
	if arg != nil {
		b, err := json.Marshal(arg)
		if err != nil {
			return v, err
		}
		data = b
	}
	b, err := m.Query(path, data)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode %s: %w", path, err)
	}
	return v, nil
}

func (h *harness) bag(id chain.BagID) chain.Bag {
	return queryAs[chain.Bag](h.t, h.m, chain.QueryBag, id)
}

func (h *harness) sbucket(id chain.StorageBucketID) chain.StorageBucket {
	return queryAs[chain.StorageBucket](h.t, h.m, chain.QueryStorageBucket, id)
}

func (h *harness) dbucket(f chain.FamilyID, i uint64) chain.DistributionBucket {
	return queryAs[chain.DistributionBucket](h.t, h.m, chain.QueryDistributionBucket, chain.DistributionBucketID{Family: f, Index: i})
}

func (h *harness) params() chain.Params {
	return queryAs[chain.Params](h.t, h.m, chain.QueryParams, nil)
}

func event[T chain.EventPayload](t *testing.T, r chain.TxResult) T {
	t.Helper()
	v, ok := chain.FindEvent[T](r.Events)
	if !ok {
		var zero T
		t.Fatalf("no %s event in %v", zero.EventType(), r.Events)
	}
	return v
}

// Fixtures.

func (h *harness) addWorker(g chain.Group, k chain.Key) chain.WorkerID {
	lead := storageLead
	if g == chain.DistributionGroup {
		lead = distLead
	}
	return event[chain.WorkerAdded](h.t, h.do(lead, chain.MsgAddWorker{Group: g, Account: k.Account()})).Worker
}

func (h *harness) storageBucket(accepting bool, objects, size uint64) chain.StorageBucketID {
	r := h.do(storageLead, chain.MsgCreateStorageBucket{AcceptingNewBags: accepting, ObjectsLimit: objects, SizeLimit: size})
	return event[chain.StorageBucketCreated](h.t, r).Bucket
}

// operatedBucket creates a bucket operated by a new worker with key k.
func (h *harness) operatedBucket(k chain.Key, objects, size uint64) (chain.StorageBucketID, chain.WorkerID) {
	w := h.addWorker(chain.StorageGroup, k)
	b := h.storageBucket(true, objects, size)
	h.do(storageLead, chain.MsgInviteStorageBucketOperator{Bucket: b, Worker: w})
	h.do(k, chain.MsgAcceptStorageBucketInvitation{Worker: w, Bucket: b})
	return b, w
}

func (h *harness) member(k chain.Key) chain.MemberID {
	return event[chain.MemberCreated](h.t, h.do(k, chain.MsgCreateMember{Handle: "m"})).Member
}

func (h *harness) channel(k chain.Key, m chain.MemberID) chain.ChannelID {
	return event[chain.ChannelCreated](h.t, h.do(k, chain.MsgCreateChannel{Member: m})).Channel
}

func (h *harness) family() chain.FamilyID {
	return event[chain.DistributionFamilyCreated](h.t, h.do(distLead, chain.MsgCreateDistributionBucketFamily{})).Family
}

func (h *harness) dBucket(f chain.FamilyID, accepting bool) chain.DistributionBucketID {
	r := h.do(distLead, chain.MsgCreateDistributionBucket{Family: f, AcceptingNewBags: accepting})
	return event[chain.DistributionBucketCreated](h.t, r).Bucket
}

// channelBag makes alice a member with a channel whose bag is placed in one
// fresh storage bucket (the default Channel policy) and returns the bag
// and the bucket.
func (h *harness) channelBag(objects, size uint64) (chain.BagID, chain.StorageBucketID) {
	b := h.storageBucket(true, objects, size)
	m := h.member(alice)
	ch := h.channel(alice, m)
	bag := chain.ChannelBag(ch)
	if got := h.bag(bag).StorageBuckets; len(got) != 1 || got[0] != b {
		h.t.Fatalf("channel bag placed in %v, want [%d]", got, b)
	}
	return bag, b
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
