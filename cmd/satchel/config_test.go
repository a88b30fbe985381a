package main

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		return p
	}

	t.Run("missing and empty files give the defaults", func(t *testing.T) {
		for _, p := range []string{
			filepath.Join(dir, "missing.yml"),
			write("empty.yml", ""),
			write("comments.yml", "# nothing set yet\n"),
		} {
			cfg, err := LoadConfig(p)
			if err != nil || !reflect.DeepEqual(cfg, DefaultConfig()) {
				t.Errorf("LoadConfig(%s) = %+v, %v; want the defaults", filepath.Base(p), cfg, err)
			}
		}
	})

	t.Run("known keys override the defaults", func(t *testing.T) {
		cfg, err := LoadConfig(write("ok.yml", "home: /srv/satchel\nchain:\n  rpc: http://10.0.0.1:26657\np2p:\n  identityFile: id.key\n"))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Home != "/srv/satchel" || cfg.Chain.RPC != "http://10.0.0.1:26657" || cfg.P2P.IdentityFile != "id.key" ||
			len(cfg.P2P.Listen) != 2 {
			t.Errorf("config: %+v", cfg)
		}
	})

	tests := []struct {
		name, content string
		want          []string
	}{
		{"top", "home: x\nhomr: y\n",
			[]string{`line 2: unknown key "homr" at the top level`, "home, key, chain, p2p"}},
		{"nested", "chain:\n  rcp: http://127.0.0.1:26657\n",
			[]string{`line 2: unknown key "rcp" in chain; the keys there are home, rpc`}},
		{"deeper", "p2p:\n  listen: []\n  identity_file: x\n  bootstrap: []\n",
			[]string{`line 3: unknown key "identity_file" in p2p`, "identityFile"}},
		{"two", "chian: {}\nkye: k\n",
			[]string{`unknown key "chian"`, `unknown key "kye"`}},
		{"not a mapping", "chain: 5\n", []string{"line 1: chain holds keys (home, rpc, genesis, trustHeight, trustHash, trustRPC, trustingPeriod), not `5`"}},
		// A value of the wrong type names its key and the form it wants.
		{"int duration", "chain:\n  rpc: http://x:1\n\n  trustingPeriod: 7\n",
			[]string{"line 4: chain.trustingPeriod: want a duration such as 168h", "got 7"}},
		{"day duration", "storage:\n  deletionGrace: 1day\n",
			[]string{"line 2: storage.deletionGrace: want a duration such as 24h (units h, m, s; 7 days is 168h), got 1day"}},
		{"long value", "chain:\n  trustingPeriod: 336hours-and-more\n",
			[]string{"line 2: chain.trustingPeriod: want a duration", "got 336hours-and-more"}},
		{"listen string", "p2p:\n  listen: /ip4/0.0.0.0/tcp/4001\n",
			[]string{"line 2: p2p.listen: want a list of multiaddrs", "got /ip4/0.0.0.0/tcp/4001"}},
		{"bootstrap map", "p2p:\n  bootstrap:\n    - a: b\n",
			[]string{"line 3: p2p.bootstrap: want a list of multiaddrs with /p2p/ peer IDs", "got a mapping"}},
		{"flow", "chain: {trustHeight: abc, trustRPC: maybe}\n",
			[]string{"line 1: chain.trustHeight: want a block height (a whole number), got abc", "line 1: chain.trustRPC: want true or false, got maybe"}},
		{"list for string", "home: [a, b]\n", []string{"line 1: home: want a string, got a list"}},
		{"tab", "chain:\n\trpc: x\n",
			[]string{"line 2: not valid YAML: the line has a tab; YAML indents with spaces only"}},
		{"syntax", "chain: [\n", []string{"not valid YAML"}},
		{"rpc scheme", "chain:\n  rpc: htp://127.0.0.1:26657\n", []string{`chain.rpc "htp://127.0.0.1:26657": scheme "htp"; want http://HOST:PORT`}},
		{"rpc empty", "chain:\n  rpc: http://\n", []string{`chain.rpc "http://": no address`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(tt.name+".yml", tt.content)
			_, err := LoadConfig(p)
			if err == nil {
				t.Fatalf("LoadConfig accepted %q", tt.content)
			}
			for _, w := range append(tt.want, "config "+p+": ") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "main.") || strings.Contains(err.Error(), "time.Duration") || strings.Contains(err.Error(), "[]string") {
				t.Errorf("error %q names a Go type", err)
			}
		})
	}
}

// TestExplicitConfigMustExist: a missing ./config.yml means the defaults,
// but a file named with -c that does not exist is an error naming it.
func TestExplicitConfigMustExist(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent.yml")
	for _, args := range [][]string{
		{"-c", missing, "bag", "show", "dynamic:channel:0"},
		{"bag", "list", "--configPath", missing},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut)
		want := "config file " + missing + " (from -c) does not exist"
		if code == 0 || !strings.Contains(errOut.String(), want) {
			t.Errorf("satchel %s: exit %d, stderr %q; want %q", strings.Join(args, " "), code, errOut.String(), want)
		}
	}
}
