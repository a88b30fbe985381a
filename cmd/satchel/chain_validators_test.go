package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cmttypes "github.com/cometbft/cometbft/types"
)

func TestChainInitValidators(t *testing.T) {
	e := newChainCmdEnv(t)
	dir := filepath.Join(e.dir, "net")
	var res struct {
		ChainID    string             `json:"chainId"`
		Validators []networkValidator `json:"validators"`
	}
	e.json(&res, "chain", "init", "--validators", "4", "--home", dir)
	if len(res.Validators) != 4 {
		t.Fatalf("%d validators; want 4", len(res.Validators))
	}
	var first []byte
	for i, v := range res.Validators {
		b, err := os.ReadFile(filepath.Join(v.Home, "config", "genesis.json"))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Fatalf("validator %d has another genesis", i)
		}
	}
	gen, err := cmttypes.GenesisDocFromJSON(first)
	if err != nil {
		t.Fatal(err)
	}
	if len(gen.Validators) != 4 || gen.ChainID != res.ChainID {
		t.Fatalf("genesis: %d validators, chain %s", len(gen.Validators), gen.ChainID)
	}

	// The ceremony by hand: keys in two homes, one genesis naming both.
	var k1, k2 struct {
		PubKey string `json:"pubKey"`
	}
	e.json(&k1, "chain", "validator-key", "--home", filepath.Join(e.dir, "a"))
	e.json(&k2, "chain", "validator-key", "--home", filepath.Join(e.dir, "b"))
	out := filepath.Join(e.dir, "genesis.json")
	var g struct {
		Validators int `json:"validators"`
	}
	e.json(&g, "chain", "genesis", "--validator", k1.PubKey, "--validator", k2.PubKey, "--out", out)
	if g.Validators != 2 {
		t.Fatalf("genesis names %d validators", g.Validators)
	}
	if _, errOut, code := e.satchel(t.Context(), "chain", "genesis", "--validator", "abc", "--out", out); code == 0 ||
		!strings.Contains(errOut, "is not hex: want the 64 hex characters of the pub key `satchel chain validator-key` prints") {
		t.Fatalf("a bad validator key: exit %d, stderr %q; want a refusal saying what a key is", code, errOut)
	}
}
