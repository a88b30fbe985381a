package node

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
)

// TestOlderChainVersionRunsAndJoins: a chain whose genesis names app
// version 2 (made before the object-ID index) keeps version 2's rules under
// this binary: its blocks write no object-ID index, so a node joining from
// its genesis replays them to the app hashes the validator committed; and
// the node reports version 2, the version in the chain's headers. A full
// node that reported this binary's version instead would refuse every
// header, and one that kept the index would reach other app hashes.
func TestOlderChainVersionRunsAndJoins(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	lead, member := mustKey(t), mustKey(t)
	home := version2Home(t, lead)
	val := startNode(t, home)

	c := chain.NewClient(val.Transport())
	bag, reg, res := registerObject(ctx, t, c, lead, member)
	id := reg.Objects[0].ID

	// Version 2 has no object-ID index: the query answers the plain
	// not-found that sends a client to scan the bags, not the final
	// ErrObjectNotFound of a chain that has the index.
	if _, err := c.ObjectByID(ctx, id); !errors.Is(err, chain.ErrNotFound) || errors.Is(err, chain.ErrObjectNotFound) {
		t.Fatalf("ObjectByID on a version 2 chain: %v; want plain not found", err)
	}
	if _, err := c.DataObject(ctx, bag, id); err != nil {
		t.Fatalf("the object by bag: %v", err)
	}

	full := startNode(t, filepath.Join(t.TempDir(), "full"),
		WithGenesisDoc(val.GenesisFile()), WithPersistentPeers(val.P2PAddress()))
	h, ha, hb := sameState(ctx, t, val, full, res.Height)
	if ha != hb || ha == "" {
		t.Fatalf("at height %d: validator app hash %s, joined node %s", h, ha, hb)
	}
	for name, n := range map[string]*Node{"validator": val, "joined node": full} {
		info, err := n.app.Info(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if info.AppVersion != state.VersionMerkle {
			t.Errorf("%s reports app version %d; want %d", name, info.AppVersion, state.VersionMerkle)
		}
		if meta := n.cmt.BlockStore().LoadBlockMeta(h); meta == nil || meta.Header.Version.App != state.VersionMerkle {
			t.Errorf("%s: header at height %d: %+v; want app version %d", name, h, meta, state.VersionMerkle)
		}
	}
}

// TestNewChainRunsTheNewestVersion: a new genesis names this binary's
// version and the object-ID index answers.
func TestNewChainRunsTheNewestVersion(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	n := startNode(t, t.TempDir(), WithGenesis(testGenesis(t)))
	doc, err := cmttypes.GenesisDocFromFile(n.GenesisFile())
	if err != nil {
		t.Fatal(err)
	}
	info, err := n.app.Info(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if doc.ConsensusParams.Version.App != AppVersion || info.AppVersion != AppVersion {
		t.Fatalf("genesis names version %d, node reports %d; want %d", doc.ConsensusParams.Version.App, info.AppVersion, AppVersion)
	}
	if _, err := chain.NewClient(n.Transport()).ObjectByID(ctx, 7); !errors.Is(err, chain.ErrObjectNotFound) {
		t.Fatalf("ObjectByID of a missing object on a new chain: %v; want ErrObjectNotFound", err)
	}
}

// TestGenesisOfAnUnknownVersionRefused: a genesis naming a version this
// binary does not run stops the node with an error that says so.
func TestGenesisOfAnUnknownVersionRefused(t *testing.T) {
	home := t.TempDir()
	if _, err := NewNetwork([]string{home}, testGenesis(t)); err != nil {
		t.Fatal(err)
	}
	setGenesisAppVersion(t, GenesisPath(home), AppVersion+1)
	n, err := New(home, WithRPCAddr(freeAddr(t)), WithP2PAddr(freeAddr(t)), WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	err = n.Start(testCtx(t, 20*time.Second))
	if err == nil {
		_ = n.Stop()
		t.Fatal("a node started a chain of a version from the future")
	}
	if want := fmt.Sprintf("app version %d", AppVersion+1); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "start a new chain") {
		t.Fatalf("error %q does not name the version", err)
	}
}

// version2Home makes the home of a one-validator network whose genesis
// names app version 2, with lead as its storage lead.
func version2Home(t *testing.T, lead chain.Key) string {
	t.Helper()
	g := chain.DefaultGenesis(lead.Account(), mustKey(t).Account())
	home := filepath.Join(t.TempDir(), "validator")
	if _, err := NewNetwork([]string{home}, g); err != nil {
		t.Fatal(err)
	}
	setGenesisAppVersion(t, GenesisPath(home), state.VersionMerkle)
	return home
}

// setGenesisAppVersion rewrites the app version the genesis file at path
// names, as an older or newer satchel would have written it.
func setGenesisAppVersion(t testing.TB, path string, v uint64) {
	t.Helper()
	doc, err := cmttypes.GenesisDocFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc.ConsensusParams.Version.App = v
	if err := doc.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}
