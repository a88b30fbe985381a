package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/internal/logbuf"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/testnet"
	"github.com/spf13/pflag"
)

// `satchel storage server` runs a provider node for a bucket: it takes the
// bucket over from a stopped testnet provider, publishes its own peer ID on
// chain, syncs an object uploaded to the other provider, serves its status
// page, and `satchel bag locate` finds both providers live on the DHT.
// Ctrl-C (the context ending) stops it cleanly.
func TestStorageServerCommand(t *testing.T) {
	rpc := freeAddr(t)
	net := testnet.New(t, testnet.Providers(2), testnet.Configure(func(c *testnet.Config) {
		c.ChainRPCAddr = rpc
	}), testnet.ProviderOptions(provider.WithReconcileInterval(300*time.Millisecond)))
	p1 := net.Provider(1)
	oldPeer := p1.AddrInfo().ID
	if err := p1.Kill(); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cfgPath := filepath.Join(home, "config.yml")
	writeFile(t, cfgPath, "home: "+home+"\nchain:\n  rpc: http://"+rpc+"\n  genesis: "+net.Chain.GenesisFile()+"\n")
	p0 := net.Provider(0).AddrInfo()
	boot := fmt.Sprintf("%s/p2p/%s", p0.Addrs[0], p0.ID)

	// A bucket that does not exist is refused before --data is made.
	var badOut, badErr bytes.Buffer
	bad := filepath.Join(home, "bad-data")
	if code := run(context.Background(), []string{"-c", cfgPath, "storage", "server", "-w", p1.Worker.String(), "-i", "99",
		"--key", net.KeyFile("provider-1"), "--data", bad, "--listen", "/ip4/127.0.0.1/tcp/0", "--status", "127.0.0.1:0"}, &badOut, &badErr); code == 0 ||
		!strings.Contains(badErr.String(), "storage bucket 99") || !strings.Contains(badErr.String(), "satchel bucket list --storage") {
		t.Fatalf("storage server -i 99: exit %d, stderr %s", code, badErr.String())
	}
	if _, err := os.Stat(bad); err == nil {
		t.Fatalf("storage server -i 99 made %s", bad)
	}
	// So is a bucket another worker operates.
	badOut.Reset()
	badErr.Reset()
	other := p1.Worker + 1
	if code := run(context.Background(), []string{"-c", cfgPath, "storage", "server", "-w", other.String(), "-i", p1.Bucket.String(),
		"--key", net.KeyFile("provider-1"), "--data", bad, "--listen", "/ip4/127.0.0.1/tcp/0", "--status", "127.0.0.1:0"}, &badOut, &badErr); code == 0 ||
		!strings.Contains(badErr.String(), fmt.Sprintf("storage bucket %d is operated by storage worker %d (active), not %d", p1.Bucket, p1.Worker, other)) {
		t.Fatalf("storage server -w %d: exit %d, stderr %s", other, code, badErr.String())
	}
	if _, err := os.Stat(bad); err == nil {
		t.Fatalf("storage server -w %d made %s", other, bad)
	}
	// A --status address in use is named by its flag.
	held := heldAddr(t)
	badOut.Reset()
	badErr.Reset()
	if code := run(context.Background(), []string{"-c", cfgPath, "storage", "server", "-w", p1.Worker.String(), "-i", p1.Bucket.String(),
		"--key", net.KeyFile("provider-1"), "--data", filepath.Join(home, "data"), "--listen", "/ip4/127.0.0.1/tcp/0", "--status", held}, &badOut, &badErr); code == 0 ||
		!strings.Contains(badErr.String(), "--status "+held+": address already in use") || !strings.Contains(badErr.String(), "pass another --status HOST:PORT") {
		t.Fatalf("storage server --status %s (in use): exit %d, stderr %s", held, code, badErr.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut logbuf.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("storage server stderr:\n%s", errOut.String())
		}
	})
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-c", cfgPath, "--json", "storage", "server",
			"-w", p1.Worker.String(), "-i", p1.Bucket.String(),
			"--key", net.KeyFile("provider-1"),
			"--data", filepath.Join(home, "data"),
			"--listen", "/ip4/127.0.0.1/tcp/0",
			"--bootstrap", boot,
			"--status", "127.0.0.1:0",
		}, &out, &errOut)
	}()

	var info serverInfo
	testnet.Wait(t, "the server to print where it runs", func() bool {
		select {
		case code := <-done:
			t.Fatalf("storage server exited %d early:\n%s", code, errOut.String())
		default:
		}
		return json.Unmarshal([]byte(out.String()), &info) == nil
	})
	if info.PeerID == "" || info.PeerID == oldPeer.String() || info.Status == "" || info.Bucket != p1.Bucket {
		t.Fatalf("server info: %+v", info)
	}
	testnet.Wait(t, "the server's peer ID in the operator metadata", func() bool {
		b, err := net.Client.StorageBucket(context.Background(), p1.Bucket)
		return err == nil && b.Metadata != nil && b.Metadata.PeerID == info.PeerID
	})

	_, err := net.UploadChunked(context.Background(), bytes.Repeat([]byte("satchel "), 4096), 4096, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the server to sync the object", func() bool {
		resp, err := http.Get(info.Status)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st provider.Status
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Objects == 1 && st.SyncBacklog == 0
	})

	// bag locate, through the operators' published addresses.
	var loc bagLocation
	testnet.Wait(t, "both providers live on the DHT", func() bool {
		var lout bytes.Buffer
		if run(context.Background(), []string{"-c", cfgPath, "--json", "bag", "locate", string(net.Bag), "--timeout", "5s"}, &lout, io.Discard) != 0 {
			return false
		}
		loc = bagLocation{}
		if err := json.Unmarshal(lout.Bytes(), &loc); err != nil {
			return false
		}
		live := 0
		for _, b := range loc.Buckets {
			if b.Live {
				live++
			}
		}
		// The stopped testnet provider's record (another peer ID) may be
		// listed too, as a provider the chain does not name.
		return live == 2 && len(loc.Providers) >= 2
	})
	if loc.Bag != net.Bag || len(loc.Buckets) != 2 {
		t.Errorf("locate: %+v", loc)
	}
	var human bytes.Buffer
	if err := printLocation(&human, loc); err != nil || !strings.Contains(human.String(), info.PeerID) {
		t.Errorf("locate table does not name the server's peer %s:\n%s", info.PeerID, human.String())
	}
	// A bootstrap peer that refuses the dial is named as the DHT's
	// trouble, not blamed on the chain node, which answered.
	var lout, lerr bytes.Buffer
	refused := "/ip4/127.0.0.1/tcp/1/p2p/" + info.PeerID
	if code := run(context.Background(), []string{"-c", cfgPath, "bag", "locate", string(net.Bag), "--bootstrap", refused, "--timeout", "5s"}, &lout, &lerr); code == 0 ||
		!strings.Contains(lerr.String(), "could not reach any peer to join the DHT through") || strings.Contains(lerr.String(), "chain node") {
		t.Errorf("bag locate --bootstrap %s: exit %d, stderr %q", refused, code, lerr.String())
	}

	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("storage server exited %d after Ctrl-C:\n%s", code, errOut.String())
	}
}

func TestStorageServerFlags(t *testing.T) {
	home := t.TempDir()
	cfgPath := filepath.Join(home, "config.yml")
	writeFile(t, cfgPath, "home: "+home+"\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"storage", "server", "-i", "1"}, "-w/--worker and -i/--bucketId are required"},
		{[]string{"storage", "server", "-w", "x", "-i", "1"}, "worker ID \"x\""},
		{[]string{"storage", "server", "-w", "1", "-i", "1"}, "no account key"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"-c", cfgPath}, tc.args...), &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("satchel %s: exit %d, stderr %q; want a failure naming %q", strings.Join(tc.args, " "), code, errOut.String(), tc.want)
		}
	}
}

// The servers' help gives each default once, in round figures.
func TestServerHelpDefaults(t *testing.T) {
	flagLine := func(args []string, flag string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append(args, "--help"), &out, &errOut); code != 0 {
			t.Fatalf("satchel %s --help: exit %d, %s", strings.Join(args, " "), code, errOut.String())
		}
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, "--"+flag+" ") {
				return l
			}
		}
		t.Fatalf("satchel %s --help does not show --%s:\n%s", strings.Join(args, " "), flag, out.String())
		return ""
	}
	for _, tt := range []struct {
		args       []string
		flag, want string
	}{
		{[]string{"storage", "server"}, "deletion-grace", "(default: storage.deletionGrace in the config, else 24h)"},
		{[]string{"storage", "server"}, "audit-answer-burst", "(default about 64 MiB:"},
		{[]string{"distributor", "server"}, "max-conns", "(default 0: 4096, or half the open-file limit"},
	} {
		l := flagLine(tt.args, tt.flag)
		if !strings.Contains(l, tt.want) || strings.Count(l, "default") != 1 || strings.Contains(l, ".99") {
			t.Errorf("satchel %s --help: %q; want one default, %q", strings.Join(tt.args, " "), l, tt.want)
		}
	}
}

// roomDir is the chain as a Ledger reads it: a bucket with a roomy voucher.
type roomDir struct{ contracts.Directory }

func (roomDir) StorageBucket(context.Context, chain.StorageBucketID) (chain.StorageBucket, error) {
	return chain.StorageBucket{Voucher: chain.Voucher{ObjectsLimit: 100, SizeLimit: 1 << 40}}, nil
}

// The room flags of `storage server` reach the Ledger that reserves room
// for open contract uploads, and bad values are refused before anything
// is read or started.
func TestStorageServerRoomFlags(t *testing.T) {
	home := t.TempDir()
	cfgPath := filepath.Join(home, "config.yml")
	writeFile(t, cfgPath, "home: "+home+"\n")
	for _, tc := range []struct {
		flag, value, want string
	}{
		{"contract-reserve-window", "0", "--contract-reserve-window must be more than 0"},
		{"contract-reserve-window", "5XB", "unknown unit"},
		{"contract-idle-release", "0s", "--contract-idle-release must be more than 0"},
		{"contract-open-per-member", "0", "--contract-open-per-member must be at least 1"},
		{"contract-open-max", "8", "--contract-open-max 8 is less than --contract-open-per-member 16"},
		{"contract-member-share", "0", "--contract-member-share must be at least 1"},
	} {
		args := []string{"-c", cfgPath, "storage", "server", "-w", "1", "-i", "1", "--" + tc.flag, tc.value}
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("--%s %s: exit %d, stderr %q; want a failure naming %q", tc.flag, tc.value, code, errOut.String(), tc.want)
		}
	}

	// The defaults are the contracts package's; given values are the Ledger's.
	reserve := func(args ...string) (window uint64, open int) {
		t.Helper()
		var lf ledgerFlags
		fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
		lf.add(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		opts, err := lf.options()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		l := contracts.NewLedger(roomDir{}, 1, nil, opts...)
		for open = 0; open < 20; open++ {
			c := &contracts.Contract{ID: contracts.NewID(), Member: 1, Terms: contracts.Terms{Bag: "dynamic:channel:1", Size: 1 << 30}, End: time.Now().Add(time.Hour)}
			if _, err := l.Reserve(context.Background(), c); errors.Is(err, contracts.ErrBusy) {
				break
			} else if err != nil {
				t.Fatalf("%v: reserve: %v", args, err)
			}
		}
		return l.Reserved() / uint64(open), open
	}
	if w, open := reserve(); w != contracts.ReserveWindow || open != contracts.MaxOpenPerMember {
		t.Errorf("defaults: each upload reserved %d bytes, %d open for one member; want %d and %d", w, open, uint64(contracts.ReserveWindow), contracts.MaxOpenPerMember)
	}
	if w, open := reserve("--contract-reserve-window", "64MiB", "--contract-open-per-member", "3", "--contract-member-share", "1"); w != 64<<20 || open != 3 {
		t.Errorf("--contract-reserve-window 64MiB --contract-open-per-member 3: each upload reserved %d bytes, %d open; want %d and 3", w, open, 64<<20)
	}
}
