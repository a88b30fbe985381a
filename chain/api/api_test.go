package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/cometbft/cometbft/types"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/api"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/chain/verify"
)

var quiet = slog.New(slog.DiscardHandler)

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func key(name string) chain.Key {
	seed := sha256.Sum256([]byte("satchel api test " + name))
	k, _ := chain.KeyFromSeed(seed[:])
	return k
}

// network starts a node with a channel bag holding n objects.
func network(t *testing.T, n int) (*node.Node, chain.BagID) {
	t.Helper()
	lead, alice := key("lead"), key("alice")
	nd, err := node.New(t.TempDir(), node.WithRPCAddr(""), node.WithP2PAddr(freeAddr(t)), node.WithLogger(quiet),
		node.WithGenesis(chain.DefaultGenesis(lead.Account(), lead.Account())))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	if err := nd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Stop() })
	c := chain.NewClient(nd.Transport())
	submit := func(k chain.Key, m chain.Msg) chain.Committed {
		res, err := c.Submit(ctx, k, m)
		if err != nil {
			t.Fatalf("%s: %v", m.Type(), err)
		}
		return res
	}
	submit(lead, chain.MsgCreateStorageBucket{AcceptingNewBags: true, ObjectsLimit: 100, SizeLimit: 1 << 20})
	submit(alice, chain.MsgCreateMember{Handle: "alice"})
	submit(alice, chain.MsgCreateChannel{Member: 0})
	bag := chain.ChannelBag(0)
	var specs []chain.ObjectSpec
	for i := range n {
		h, _ := multihash.Sum([]byte(fmt.Sprint("object ", i)), multihash.SHA2_256, -1)
		specs = append(specs, chain.ObjectSpec{Size: 10, ContentID: cid.NewCidV1(cid.Raw, h).String()})
	}
	res := submit(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: specs})
	// Proven answers are at the height before the last: let the objects'
	// block be that one.
	if err := nd.Transport().WaitForHeight(ctx, res.Height+1); err != nil {
		t.Fatal(err)
	}
	return nd, bag
}

func get(t *testing.T, srv *httptest.Server, path string, want int, v any) {
	t.Helper()
	res, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		var body bytes.Buffer
		body.ReadFrom(res.Body)
		t.Fatalf("GET %s: %d %s; want %d", path, res.StatusCode, body.String(), want)
	}
	if v != nil {
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}

func verified(t *testing.T, nd *node.Node, tr chain.Transport) *verify.Transport {
	t.Helper()
	trust, err := verify.TrustGenesisFile(nd.GenesisFile())
	if err != nil {
		t.Fatal(err)
	}
	vt, err := verify.New(t.Context(), tr, trust, verify.WithEndpoint("node"), verify.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	return vt
}

func TestProvenAPI(t *testing.T) {
	nd, bag := network(t, 5)
	srv := httptest.NewServer(api.NewHandler(verified(t, nd, nd.Transport()), api.WithLogger(quiet)))
	defer srv.Close()

	var objs []chain.DataObject
	cursor := ""
	for pages := 0; ; pages++ {
		var pg chain.Page[chain.DataObject]
		get(t, srv, "/api/v1/bags/"+url.PathEscape(string(bag))+"/objects?limit=2&cursor="+cursor, http.StatusOK, &pg)
		objs = append(objs, pg.Items...)
		if pg.Next == "" {
			if pages != 2 {
				t.Fatalf("%d pages of 2 for 5 objects", pages+1)
			}
			break
		}
		cursor = pg.Next
	}
	want, err := chain.NewClient(nd.Transport()).Objects(t.Context(), bag)
	if err != nil || len(want) != 5 || len(objs) != 5 {
		t.Fatalf("API listed %d objects, the client %d (%v)", len(objs), len(want), err)
	}
	for i := range want {
		if objs[i] != want[i] {
			t.Fatalf("object %d: API %+v, client %+v", i, objs[i], want[i])
		}
	}
	var one chain.DataObject
	get(t, srv, fmt.Sprintf("/api/v1/bags/%s/objects/%d", bag, want[3].ID), http.StatusOK, &one)
	if one != want[3] {
		t.Fatalf("one object: %+v; want %+v", one, want[3])
	}
	one = chain.DataObject{}
	get(t, srv, fmt.Sprintf("/api/v1/objects/%d", want[2].ID), http.StatusOK, &one)
	if one != want[2] {
		t.Fatalf("object by ID alone: %+v; want %+v", one, want[2])
	}
	get(t, srv, "/api/v1/objects/999999", http.StatusNotFound, nil)
	get(t, srv, "/api/v1/objects/x", http.StatusBadRequest, nil)
	var pending chain.Page[chain.DataObject]
	get(t, srv, "/api/v1/objects/pending?bag="+string(bag), http.StatusOK, &pending)
	if len(pending.Items) != 5 {
		t.Fatalf("%d pending objects; want 5", len(pending.Items))
	}
	var byCID chain.Page[chain.DataObject]
	get(t, srv, "/api/v1/objects/by-content-id/"+want[1].ContentID, http.StatusOK, &byCID)
	if len(byCID.Items) != 1 || byCID.Items[0].ID != want[1].ID {
		t.Fatalf("by content ID: %+v", byCID)
	}
	var av chain.AppVersionInfo
	get(t, srv, "/api/v1/app-version", http.StatusOK, &av)
	if av.Version != node.AppVersion || av.Upgrade != nil {
		t.Fatalf("app version %+v; want %d and no upgrade", av, node.AppVersion)
	}
	var info chain.NodeInfo
	get(t, srv, "/api/v1/info", http.StatusOK, &info)
	if info.ChainID != nd.ChainID() {
		t.Fatalf("info %+v", info)
	}
	get(t, srv, "/api/v1/bags/dynamic:channel:99", http.StatusNotFound, nil)
	get(t, srv, "/api/v1/bags/"+string(bag)+"/objects?limit=x", http.StatusBadRequest, nil)
	get(t, srv, "/api/v1/bags/"+string(bag)+"/objects?cursor=zz", http.StatusBadRequest, nil)
}

// forger signs nothing but alters app hashes in headers.
type forger struct {
	chain.Transport
	src verify.Source
	on  bool
}

func (f *forger) LightBlock(ctx context.Context, h int64) (*types.LightBlock, error) {
	lb, err := f.src.LightBlock(ctx, h)
	if err == nil && f.on {
		lb.AppHash = bytes.Repeat([]byte{9}, 32)
	}
	return lb, err
}

func TestAPIRefusesAForgedAnswer(t *testing.T) {
	nd, bag := network(t, 1)
	f := &forger{Transport: nd.Transport(), src: nd.Transport().(verify.Source)}
	vt := verified(t, nd, f)
	f.on = true
	srv := httptest.NewServer(api.NewHandler(vt, api.WithLogger(quiet)))
	defer srv.Close()
	var e struct{ Error string }
	get(t, srv, "/api/v1/bags/"+string(bag), http.StatusBadGateway, &e)
	if !bytes.Contains([]byte(e.Error), []byte("chain endpoint node")) {
		t.Fatalf("error does not name the endpoint: %q", e.Error)
	}
}

// olderNode is an upstream whose binary predates every query: each answers
// ErrUnknownQuery.
type olderNode struct{ chain.Transport }

func (olderNode) Query(context.Context, string, []byte) ([]byte, error) {
	return nil, chain.ErrUnknownQuery
}

// TestUnknownQueryIsNotNotFound: a query the upstream node does not know
// (an older binary) answers 502, not a 404 a caller would take for "no
// such object".
func TestUnknownQueryIsNotNotFound(t *testing.T) {
	srv := httptest.NewServer(api.NewHandler(olderNode{}))
	t.Cleanup(srv.Close)
	var body struct {
		Code uint32 `json:"code"`
	}
	get(t, srv, "/api/v1/objects/7", http.StatusBadGateway, &body)
	if body.Code != chain.CodeUnknownQuery {
		t.Fatalf("code %d; want %d", body.Code, chain.CodeUnknownQuery)
	}
}
