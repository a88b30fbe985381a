package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/satchel-net/satchel/testnet"
)

// devnetStartTimeout bounds bringing the devnet up (first start creates the
// chain and submits the setup transactions).
const devnetStartTimeout = 2 * time.Minute

func init() { registerGroup(newDevnetCmd) }

// devnetFlags are the knobs of `satchel devnet`.
type devnetFlags struct {
	home       string
	providers  int
	validators int
	rpc        string
	statusPort int
	distPort   int
	sample     string
}

func newDevnetCmd(app *App) *cobra.Command {
	var f devnetFlags
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a whole network in this process: chain, storage providers, a member and a channel bag",
		Long: `Run a local Satchel network in one process, with nothing to install: the
embedded chain (one validator), storage providers that each operate one
bucket, and the transactions that wire them, so a member and its channel bag
exist. Everything listens on 127.0.0.1.

State lives in --home: Ctrl-C stops the network cleanly, running the command
again resumes it, and deleting the directory starts over. The command writes
HOME/config.yml so that other satchel commands can talk to the devnet with
-c HOME/config.yml.`,
		Example: `  satchel devnet
  satchel devnet --home /tmp/devnet --providers 5
  satchel -c .satchel-devnet/config.yml put README.md --bag dynamic:channel:0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDevnet(cmd.Context(), app, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.home, "home", ".satchel-devnet", "`DIR` holding the devnet's state")
	fl.IntVar(&f.providers, "providers", 3, "number of storage providers (each operates one bucket)")
	fl.IntVar(&f.validators, "validators", 1, "number of chain validators, each a node in this process (4 keep going with one stopped)")
	fl.StringVar(&f.rpc, "rpc", "127.0.0.1:26657", "`HOST:PORT` of the chain's RPC, for other commands")
	fl.IntVar(&f.statusPort, "status-port", 7070, "first provider's status `PORT` (provider i uses PORT+i; 0 picks free ports)")
	fl.IntVar(&f.distPort, "distributor-port", 3334, "the distributor's HTTP `PORT` (0 picks a free one)")
	fl.StringVar(&f.sample, "sample", "", "video `FILE` the devnet puts for the distributor to serve (default: a built-in test pattern)")
	return cmd
}

// runDevnet starts the network, prints how to use it and runs until ctx ends.
func runDevnet(ctx context.Context, app *App, f devnetFlags) error {
	if f.providers < 1 {
		return fmt.Errorf("--providers %d: a devnet needs at least one provider", f.providers)
	}
	if f.validators < 1 {
		return fmt.Errorf("--validators %d: a devnet needs at least one validator", f.validators)
	}
	// A missing sample is found before the network starts and its home
	// is made.
	if f.sample != "" {
		if fi, err := os.Stat(f.sample); err != nil {
			return fmt.Errorf("--sample: %w", err)
		} else if !fi.Mode().IsRegular() || fi.Size() == 0 {
			return fmt.Errorf("--sample %s: want a non-empty regular file", f.sample)
		}
	}
	home, err := filepath.Abs(f.home)
	if err != nil {
		return err
	}
	if err := checkFree(listenSetting{flag: "--rpc", addr: f.rpc}); err != nil {
		return err
	}
	// The providers' status ports and the distributor's, checked before
	// anything starts: a port in use is named by its flag, not reported
	// halfway through as a failed start.
	for i := range f.providers {
		if f.statusPort != 0 {
			if err := checkFree(listenSetting{flag: "--status-port", addr: statusAddr(f.statusPort, i), port: true}); err != nil {
				return err
			}
		}
	}
	if f.distPort != 0 {
		if err := checkFree(listenSetting{flag: "--distributor-port", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(f.distPort)), port: true}); err != nil {
			return err
		}
	}
	cfg := testnet.Config{
		Providers:    f.providers,
		Validators:   f.validators,
		ChainRPCAddr: f.rpc,
		Logger:       app.Log,
		StatusAddrs:  func(i int) string { return statusAddr(f.statusPort, i) },
		Contracts:    true, // providers answer proposals on testnet.DefaultContractTopics
	}
	fmt.Fprintf(app.Err, "starting devnet in %s …\n", home)
	startCtx, cancel := context.WithTimeout(ctx, devnetStartTimeout)
	nw, err := testnet.Start(startCtx, home, cfg)
	cancel()
	if errors.Is(err, syscall.EWOULDBLOCK) {
		// A lock held by another process: never advise deleting the state
		// of a devnet that is running.
		return fmt.Errorf("start devnet in %s: %w; another process holds its state open (a devnet still running there?): stop it, or pass another --home", home, err) // not lockHint's words: a devnet has --home
	}
	if err != nil {
		return fmt.Errorf("start devnet in %s: %w (delete the directory to start over)", home, err)
	}
	defer nw.Close()
	cfgPath, err := writeDevnetConfig(nw, home)
	if err != nil {
		return err
	}
	info := describeDevnet(nw, cfgPath)
	dist, err := startDevnetDistributor(ctx, nw, f.distPort, f.sample)
	if err != nil {
		return err
	}
	info.Distributor = &dist
	if err := app.Printer().Print(info, info.print); err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(app.Err, "stopping devnet …")
	if err := nw.Close(); err != nil {
		return fmt.Errorf("stop devnet: %w", err)
	}
	fmt.Fprintln(app.Err, "devnet stopped; run it again to resume")
	return nil
}

// statusAddr is provider i's status listen address.
func statusAddr(base, i int) string {
	if base == 0 {
		return "127.0.0.1:0"
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i))
}

// checkFree fails early, naming the flag, when the address of s is
// malformed or already taken — most often by another devnet or chain still
// running.
func checkFree(s listenSetting) error {
	if _, port, err := net.SplitHostPort(s.addr); err != nil || port == "" {
		return fmt.Errorf("%s %q: want HOST:PORT, e.g. 127.0.0.1:26657", s.flag, s.addr)
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil && !isAddrInUse(err) {
		return fmt.Errorf("%s %s: %w", s.flag, s.addr, err)
	}
	if err != nil {
		return inUse(err, s)
	}
	return l.Close()
}

// writeDevnetConfig writes HOME/config.yml pointing the CLI at the devnet:
// its home (the lead keys), the member's key and the chain's RPC.
func writeDevnetConfig(nw *testnet.Network, home string) (string, error) {
	cfg := DefaultConfig()
	cfg.Home = home
	cfg.Key = nw.KeyFile("member")
	cfg.Chain.RPC = nw.Chain.RPCAddress()
	cfg.Chain.Genesis = nw.Chain.GenesisFile() // every read proven against its validators
	for _, p := range nw.Providers() {
		for _, a := range p.AddrInfo().Addrs {
			cfg.P2P.Bootstrap = append(cfg.P2P.Bootstrap, fmt.Sprintf("%s/p2p/%s", a, p.AddrInfo().ID))
		}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(home, "config.yml")
	header := "# Written by `satchel devnet` on every start: use it with -c " + path + "\n"
	if err := os.WriteFile(path, append([]byte(header), b...), 0o600); err != nil {
		return "", fmt.Errorf("write devnet config: %w", err)
	}
	return path, nil
}

// devnetInfo is what `satchel devnet` prints once the network is up.
type devnetInfo struct {
	Home      string            `json:"home"`
	Config    string            `json:"config"`
	ChainID   string            `json:"chainId"`
	RPC       string            `json:"rpc"`
	Member    uint64            `json:"member"`
	MemberKey string            `json:"memberKey"`
	Bag       string            `json:"bag"`
	Topics    []string          `json:"contractTopics"`
	Providers []devnetProvider  `json:"providers"`
	Commands  map[string]string `json:"commands"`
	// Distributor is the devnet's distributor and the sample it serves.
	Distributor *devnetDistributor `json:"distributor,omitempty"`
}

// devnetProvider describes one running provider.
type devnetProvider struct {
	Index  int      `json:"index"`
	Worker uint64   `json:"worker"`
	Bucket uint64   `json:"bucket"`
	PeerID string   `json:"peerId"`
	Addrs  []string `json:"addrs"`
	Status string   `json:"status,omitempty"`
}

func describeDevnet(nw *testnet.Network, cfgPath string) devnetInfo {
	info := devnetInfo{
		Home: nw.Dir, Config: cfgPath, ChainID: nw.Chain.ChainID(), RPC: nw.Chain.RPCAddress(),
		Member: uint64(nw.MemberID), MemberKey: nw.KeyFile("member"), Bag: nw.Bag.String(),
		Topics: topicStrings(nw.ContractTopics()),
	}
	for _, p := range nw.Providers() {
		ai := p.AddrInfo()
		dp := devnetProvider{Index: p.Index, Worker: uint64(p.Worker), Bucket: uint64(p.Bucket), PeerID: ai.ID.String()}
		for _, a := range ai.Addrs {
			dp.Addrs = append(dp.Addrs, a.String())
		}
		if s := p.Server(); s != nil && s.StatusAddr() != "" {
			dp.Status = "http://" + s.StatusAddr() + "/api/v1/status"
		}
		info.Providers = append(info.Providers, dp)
	}
	c := devnetProgram(os.Args[0]) + " -c " + shellQuote(cfgPath)
	info.Commands = map[string]string{
		"put":     c + " put FILE --bag " + info.Bag,
		"get":     c + " get OBJECT_ID -o FILE",
		"bag":     c + " bag show " + info.Bag,
		"locate":  c + " bag locate " + info.Bag,
		"status":  c + " chain status",
		"publish": c + " contract publish FILE --bag " + info.Bag + " --duration 60d --availability high --speed high",
	}
	return info
}

// devnetProgram is how the commands the devnet prints name the binary: by
// the path it was started with when that is a path (`make run` starts
// ./bin/satchel, which is not on PATH), made absolute so that the lines
// work from any directory; else by its name. A path a shell would split or
// expand is quoted (shellQuote).
func devnetProgram(arg0 string) string {
	if !strings.ContainsRune(arg0, '/') && !strings.ContainsRune(arg0, filepath.Separator) {
		return "satchel"
	}
	if abs, err := filepath.Abs(arg0); err == nil {
		arg0 = abs
	}
	return shellQuote(arg0)
}

// shellQuote returns s as one word of a POSIX shell command: as it is when
// it holds only characters no shell treats specially, else in single
// quotes (a quote within closes them, is escaped, and opens them again),
// so a printed command pastes and runs.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,:/@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (d devnetInfo) print(w io.Writer) error {
	fmt.Fprintf(w, "Satchel devnet is running (Ctrl-C stops it; run again to resume; delete %s to start over)\n\n", d.Home)
	fmt.Fprintf(w, "  chain     %s, RPC %s\n", d.ChainID, d.RPC)
	fmt.Fprintf(w, "  member    %d (key %s)\n", d.Member, d.MemberKey)
	fmt.Fprintf(w, "  bag       %s\n", d.Bag)
	if len(d.Topics) > 0 {
		fmt.Fprintf(w, "  topics    every provider answers contract proposals on %s\n", strings.Join(d.Topics, " "))
	}
	fmt.Fprintf(w, "  config    %s\n\n", d.Config)
	rows := [][]string{}
	for _, p := range d.Providers {
		addr := ""
		if len(p.Addrs) > 0 {
			addr = p.Addrs[0]
		}
		rows = append(rows, []string{strconv.Itoa(p.Index), strconv.FormatUint(p.Bucket, 10), p.PeerID, addr, p.Status})
	}
	if err := Table(w, []string{"PROVIDER", "BUCKET", "PEER ID", "ADDRESS", "STATUS PAGE"}, rows); err != nil {
		return err
	}
	if dd := d.Distributor; dd != nil {
		fmt.Fprintf(w, "\n  distributor  bucket %s (worker %d), status page %s\n", dd.Bucket, dd.Worker, dd.Status)
		fmt.Fprintf(w, "  sample video %s (object %d; open it in a browser)\n", dd.AssetURL, dd.Sample)
	}
	fmt.Fprintf(w, "\nIn another terminal:\n")
	for _, k := range []string{"put", "get", "bag", "locate", "status", "publish"} {
		fmt.Fprintf(w, "  %s\n", d.Commands[k])
	}
	return nil
}
