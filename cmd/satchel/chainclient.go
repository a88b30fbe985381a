package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/chain/verify"
	"github.com/satchel-net/satchel/internal/units"
)

// This file holds what every command that reads or writes the data directory
// shares: connecting a chain.Client from the config, choosing the signing
// key, the confirmation prompt, submitting and printing a transaction, and
// turning chain errors into messages that name the cause and the next step.
//
// Conventions, the same for every chain command:
//
//   - The node is the one at chain.rpc in the config (default
//     http://127.0.0.1:26657, where `satchel chain start` listens).
//   - The signing key is, in order: -k/--key PATH; `key:` in the config; the
//     default key of the command's role. Leader commands default to the lead
//     key `satchel chain init` wrote under the home; every other command to
//     the account key under the home, which `satchel member create` makes
//     when it does not exist.
//   - A transaction is described and confirmed before it is submitted.
//     -y/--yes answers yes. Without -y, stdin must be a terminal: a script
//     that forgets -y is refused (nothing is submitted) rather than left
//     waiting for an answer nobody gives.
//   - Bad flag values are refused before anything is read or submitted.

// txTimeout bounds how long a command waits for its transaction to commit.
const txTimeout = time.Minute

// Confirmation input. Tests replace these to act as a terminal.
var (
	promptInput     io.Reader = os.Stdin
	stdinIsTerminal           = func() bool {
		fd := os.Stdin.Fd()
		return isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd)
	}
)

// keyRole says whose key a command signs with when no key is named.
type keyRole int

const (
	// accountRole is the user's own account: members, channel owners,
	// bucket operators (workers sign with their role account).
	accountRole keyRole = iota
	// storageLeadRole is the storage working group lead.
	storageLeadRole
	// distributionLeadRole is the distribution working group lead.
	distributionLeadRole
)

// leadRole returns the role of the lead of g.
func leadRole(g chain.Group) keyRole {
	if g == chain.DistributionGroup {
		return distributionLeadRole
	}
	return storageLeadRole
}

func (r keyRole) String() string {
	switch r {
	case storageLeadRole:
		return "storage lead"
	case distributionLeadRole:
		return "distribution lead"
	}
	return "account"
}

// defaultKeyFile is where the key of role r lives when neither --key nor
// the config names one: the files `satchel chain init` writes for the
// leads, and the account key `satchel member create` makes.
func defaultKeyFile(cfg Config, r keyRole) string {
	switch r {
	case storageLeadRole:
		return leadKeyFile(cfg, chain.StorageGroup)
	case distributionLeadRole:
		return leadKeyFile(cfg, chain.DistributionGroup)
	}
	return accountKeyFile(cfg)
}

// leadKeyFile is the key file of the lead of g under the home.
func leadKeyFile(cfg Config, g chain.Group) string {
	return filepath.Join(cfg.Home, "keys", string(g)+"-lead.key")
}

// accountKeyFile is the user's own account key under the home.
func accountKeyFile(cfg Config) string {
	return filepath.Join(cfg.Home, "keys", "account.key")
}

// signer is a loaded key and where it came from, for the prompt and for
// errors that ask for another key.
type signer struct {
	key    chain.Key
	path   string
	source string // "--key", "config key", or "default <role> key"
	// unsaved is set for a default account key generated for this command;
	// saveNew writes it once the transaction is confirmed.
	unsaved bool
}

func (s signer) String() string {
	if s.unsaved {
		return fmt.Sprintf("account %s (new key, to be saved to %s)", s.key.Account(), s.path)
	}
	return fmt.Sprintf("account %s (%s %s)", s.key.Account(), s.source, s.path)
}

// loadSigner loads the key a command signs with: flagPath, the config's key,
// or the role's default file. With create, a missing default account key is
// generated (only `member create` does so); it is saved by saveNew, after
// the confirmation, so a declined command leaves no file behind.
func loadSigner(app *App, cfg Config, flagPath string, r keyRole, create bool) (signer, error) {
	s := signer{path: flagPath, source: "--key"}
	switch {
	case flagPath != "":
	case cfg.Key != "":
		s.path, s.source = cfg.Key, "config key"
	default:
		s.path, s.source = defaultKeyFile(cfg, r), "default "+r.String()+" key"
	}
	var err error
	s.key, err = loadKey(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		if create && r == accountRole && s.source != "--key" && s.source != "config key" {
			s.key, err = chain.GenerateKey()
			s.unsaved = true
			return s, err
		}
		if create && r == accountRole && s.source == "--key" && cfg.Key == "" {
			return s, fmt.Errorf("key file %s (from --key) does not exist; make it with `satchel key new %s`, or leave --key out to create a new account key at %s", s.path, s.path, defaultKeyFile(cfg, r))
		}
		return s, noKeyError(app, s, r)
	}
	return s, err
}

// saveNew saves a key loadSigner generated.
func (s *signer) saveNew(app *App) error {
	if !s.unsaved {
		return nil
	}
	if err := chain.SaveKey(s.path, s.key); err != nil {
		return err
	}
	s.unsaved = false
	fmt.Fprintf(app.Err, "created account key %s (account %s); keep it safe: it controls your member\n", s.path, s.key.Account())
	return nil
}

func noKeyError(app *App, s signer, r keyRole) error {
	switch {
	case s.source == "--key":
		return fmt.Errorf("key file %s (from --key) does not exist; name an existing key file, or make it with `satchel key new %s`", s.path, s.path)
	case s.source == "config key":
		return fmt.Errorf("key file %s (key in %s) does not exist; fix key in the config or pass --key PATH", s.path, app.ConfigPath)
	case r == accountRole:
		return fmt.Errorf("no account key at %s; create one with `satchel member create` (a member) or `satchel key new` (an account alone), or pass --key PATH (or set key in %s)", s.path, app.ConfigPath)
	}
	return fmt.Errorf("no %s key at %s; `satchel chain init` writes it there on the lead's machine; elsewhere pass --key PATH (or set key in %s)", r, s.path, app.ConfigPath)
}

// txFlags are the flags of every command that submits a transaction.
type txFlags struct {
	yes bool
	key string
}

// addTxFlags adds -y/--yes and -k/--key to cmd.
func addTxFlags(cmd *cobra.Command) *txFlags {
	f := &txFlags{}
	cmd.Flags().BoolVarP(&f.yes, "yes", "y", false, `answer "yes" to the confirmation prompt (required when stdin is not a terminal)`)
	cmd.Flags().StringVarP(&f.key, "key", "k", "", "account key `PATH` to sign with (default: key in the config, else the role's key under the home)")
	return f
}

// confirm asks the user to confirm action on stderr, unless yes. Without a
// terminal it refuses, so a script without -y fails instead of hanging.
func confirm(app *App, yes bool, action string) error {
	if yes {
		return nil
	}
	if !stdinIsTerminal() {
		return fmt.Errorf("refusing to %s without confirmation: stdin is not a terminal, so pass -y/--yes to confirm; nothing was submitted",
			lowerFirst(firstLine(action)))
	}
	fmt.Fprintf(app.Err, "%s\nSubmit this transaction? [y/N] ", action)
	line, err := bufio.NewReader(promptInput).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read confirmation: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("aborted; nothing was submitted")
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// chainConnectTimeout bounds connecting to the chain node: dialing and
// verifying the trust root.
const chainConnectTimeout = 30 * time.Second

// chainTrust is how the answers of the node at chain.rpc are trusted:
// --trust-rpc or chain.trustRPC believes them; otherwise they are proven
// from chain.trustHeight/trustHash, else from the validators of
// chain.genesis, else of the genesis file in the chain home.
func chainTrust(cfg Config) rpc.Trust {
	t := rpc.Trust{TrustRPC: cfg.Chain.TrustRPC, Height: cfg.Chain.TrustHeight, Hash: cfg.Chain.TrustHash, Genesis: cfg.Chain.Genesis,
		TrustingPeriod: cfg.Chain.TrustingPeriod}
	if t.Genesis == "" && t.Height == 0 && t.Hash == "" {
		if g := node.GenesisPath(chainHome(cfg, "")); fileExists(g) {
			t.Genesis = g
		}
	}
	return t
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// connectChain returns a client of the node at chain.rpc and a function
// that releases it. Unless chain.trustRPC (--trust-rpc), every read is
// proven against headers the validators signed (chainTrust): an endpoint
// that answers anything else is refused, named in the error. Verification
// starts from the header the last command verified (trustedHeaderFile)
// when it is newer than the configured root and still fits it; the client
// keeps the latest header it verified saved there (keepTrustedHeader: every
// trustSaveInterval and when released, unless the saved one is recent
// enough). log gets the verifier's warnings (the command's logger, so -v
// and the format are the command's).
func connectChain(cfg Config, log *slog.Logger) (*chain.Client, func(), error) {
	t, err := rpc.Dial(cfg.Chain.RPC)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), chainConnectTimeout)
	defer cancel()
	trust := chainTrust(cfg)
	if _, rerr := trust.Root(); rerr != nil && !trust.TrustRPC {
		// An unreachable node is the first thing to fix.
		if _, err := t.LatestHeight(ctx); err != nil {
			t.Close()
			return nil, nil, err
		}
		t.Close()
		return nil, nil, fmt.Errorf("%w; set chain.genesis to the network's genesis.json (any node's CHAIN_HOME/config/genesis.json), "+
			"or chain.trustHeight and chain.trustHash from `satchel chain status` on a node you trust; "+
			"or pass --trust-rpc (chain.trustRPC: true) to believe the node at %s unproven", rerr, cfg.Chain.RPC)
	}
	pt, release, err := proveSaving(ctx, t, cfg.Chain.RPC, trust, trustedHeaderFile(cfg), !trust.TrustRPC,
		fmt.Sprintf("in the config, set chain.trustHeight and chain.trustHash to the latest block that `satchel chain status` prints on a node you trust, "+
			"or pass --trust-rpc (chain.trustRPC: true) to believe the node at %s unproven", cfg.Chain.RPC), log)
	var lie *verify.LieError
	if errors.As(err, &lie) && lie.Height == 1 && trust.Genesis != "" && trust.Height == 0 {
		// Block 1 disagreeing with the genesis is more often the wrong
		// file in the config than a lying node.
		err = fmt.Errorf("%w; or %s is the genesis of another network than the node's: take config/genesis.json from a node of this network", err, trust.Genesis)
	}
	if err != nil {
		return nil, nil, err
	}
	return chain.NewClient(pt), release, nil
}

// dialChain is connectChain for a command: a node it cannot reach, or
// that does not answer, is explained with the next step to take.
func dialChain(app *App, cfg Config) (*chain.Client, func(), error) {
	c, closeFn, err := connectChain(cfg, app.Log)
	if err != nil {
		return nil, nil, explainWithin(app, cfg, err, nil, chainConnectTimeout)
	}
	return c, closeFn, nil
}

// proveSaving opens proven reads of the node behind t (rpc.Prove) from
// trust. With keep, verification starts from the header saved at saved
// when it fits (loadTrustedHeader), and the latest verified header is kept
// saved there while the transport is open (saveTrustedHeaders). advice is
// added to the error when every root is past the trusting period. release
// stops the saving and closes the transport; on error t is closed.
func proveSaving(ctx context.Context, t chain.Transport, endpoint string, trust rpc.Trust, saved string, keep bool,
	advice string, log *slog.Logger) (_ chain.Transport, release func(), _ error) {
	if keep {
		trust.Saved = loadTrustedHeader(saved, log)
	}
	pt, err := rpc.Prove(ctx, t, endpoint, trust, rpc.WithLogger(log), rpc.WithVerifyOptions(verify.WithClock(trustClock)))
	if errors.Is(err, verify.ErrTrustExpired) {
		err = fmt.Errorf("%w; %s", err, advice)
	}
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	stopSaving := func() {}
	if p, ok := pt.(*rpc.Proven); ok && keep {
		stopSaving = saveTrustedHeaders(saved, p, trust.Saved, log)
	}
	return pt, func() {
		stopSaving()
		_ = pt.Close()
	}, nil
}

// trustSaveInterval is how often a long-running command (a storage or
// distributor server) saves the latest verified header while it runs: one
// that crashes then restarts from a header at most this old rather than
// from the one it started with, which may be past the trusting period.
var trustSaveInterval = time.Hour

// saveTrustedHeaders saves the latest header p verified to path every
// trustSaveInterval, and once more when the returned stop is called (which
// waits for a save under way). prev is the header p started from.
func saveTrustedHeaders(path string, p *rpc.Proven, prev *rpc.SavedRoot, log *slog.Logger) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(trustSaveInterval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				keepTrustedHeader(path, p, prev, log)
				return
			case <-tick.C:
				prev = keepTrustedHeader(path, p, prev, log)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-exited
	}
}

// chainRead runs a read against the configured node and explains its error.
// The read commands (bag, bucket, family, object, params, workers list) show
// the data directory as the node at chain.rpc last committed it and need no
// key. With --json each prints the chain's own types (chain.Bag,
// chain.StorageBucket, ...), so a script reads the same fields the Go API has.
func chainRead[T any](cmd *cobra.Command, app *App, read func(ctx context.Context, c *chain.Client) (T, error)) (T, error) {
	var zero T
	cfg, err := app.Config()
	if err != nil {
		return zero, err
	}
	c, closeFn, err := dialChain(app, cfg)
	if err != nil {
		return zero, err
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(cmd.Context(), txTimeout)
	defer cancel()
	v, err := read(ctx, c)
	if err != nil {
		return zero, explainWithin(app, cfg, err, nil, txTimeout)
	}
	return v, nil
}

// tx is one transaction a command submits.
type tx struct {
	// role is whose key signs by default.
	role keyRole
	// createKey lets the default account key be generated (member create).
	createKey bool
	// msg is the transaction body.
	msg chain.Msg
	// action says what the transaction does, for the confirmation prompt,
	// e.g. "Create a distribution bucket in family 0, accepting new bags".
	action string
	// done reads the committed events and returns the line printed and the
	// fields --json adds beside the receipt. Nil prints "done: <action>".
	done func(events []chain.Event) (line string, fields map[string]any)
}

// receipt is the --json result of every transaction: where it committed,
// who signed it, its events, and the command's own fields.
type receipt struct {
	Height int64         `json:"height"`
	TxHash string        `json:"txHash"`
	Signer chain.Account `json:"signer"`
	Events []chain.Event `json:"events"`
}

// submit validates t's message, loads the signer, confirms, submits and
// prints the result. Nothing reaches the chain unless every step before it
// succeeded.
func submit(cmd *cobra.Command, app *App, f *txFlags, t tx) error {
	if err := t.msg.ValidateBasic(); err != nil {
		return err
	}
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	s, err := loadSigner(app, cfg, f.key, t.role, t.createKey)
	if err != nil {
		return err
	}
	action := fmt.Sprintf("%s\n  signed by %s\n  on the chain node at %s", t.action, s, cfg.Chain.RPC)
	if err := confirm(app, f.yes, action); err != nil {
		return err
	}
	if err := s.saveNew(app); err != nil {
		return err
	}
	c, closeFn, err := dialChain(app, cfg)
	if err != nil {
		return err
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(cmd.Context(), txTimeout)
	defer cancel()
	res, err := c.Submit(ctx, s.key, t.msg)
	if err != nil {
		return explainWithin(app, cfg, err, &txContext{signer: s, role: t.role}, txTimeout)
	}
	line := "done: " + lowerFirst(t.action)
	fields := map[string]any{}
	if t.done != nil {
		line, fields = t.done(res.Result.Events)
	}
	out := map[string]any{}
	for k, v := range fields {
		out[k] = v
	}
	r := receipt{Height: res.Height, TxHash: strings.ToUpper(hex.EncodeToString(res.TxHash)), Signer: s.key.Account(), Events: res.Result.Events}
	if r.Events == nil {
		r.Events = []chain.Event{}
	}
	out["height"], out["txHash"], out["signer"], out["events"] = r.Height, r.TxHash, r.Signer, r.Events
	return app.Printer().Print(out, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, line)
		return err
	})
}

// txCommand describes a command that submits one transaction: its help,
// its flags and how it builds the transaction from them. Every such command
// has -y/--yes and -k/--key, and runs the same way: flags parse, build, then
// submit (validate, confirm, sign, submit, print).
type txCommand struct {
	use, short, long, example string
	// args checks the positional arguments; nil means none are taken.
	args cobra.PositionalArgs
	// flags adds the command's own flags, keeping what it needs to build.
	flags func(cmd *cobra.Command)
	// build makes the transaction from the parsed flags and arguments. It
	// refuses bad combinations before anything is read or submitted.
	build func(cmd *cobra.Command, args []string) (tx, error)
}

// command returns the cobra command of c.
func (c txCommand) command(app *App) *cobra.Command {
	args := c.args
	if args == nil {
		args = cobra.NoArgs
	}
	var tf *txFlags
	cmd := &cobra.Command{
		Use:     c.use,
		Short:   c.short,
		Long:    c.long,
		Example: c.example,
		Args:    args,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := c.build(cmd, args)
			if err != nil {
				return err
			}
			return submit(cmd, app, tf, t)
		},
	}
	tf = addTxFlags(cmd)
	if c.flags != nil {
		c.flags(cmd)
	}
	return cmd
}

// doneLine is a tx.done that prints a fixed line and fields.
func doneLine(line string, fields map[string]any) func([]chain.Event) (string, map[string]any) {
	return func([]chain.Event) (string, map[string]any) { return line, fields }
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// txContext is what explain knows about a failed submission.
type txContext struct {
	signer signer
	role   keyRole
}

// explain turns an error from the chain into one that names the cause and
// the next step. The chain's own message comes first and the error still
// matches its sentinel under errors.Is.
func explain(app *App, cfg Config, err error, tc *txContext) error {
	return explainWithin(app, cfg, err, tc, 0)
}

// explainWithin is explain for a call that had within to finish (0: not
// known), which a timeout's message names.
func explainWithin(app *App, cfg Config, err error, tc *txContext, within time.Duration) error {
	var ce *chain.Error
	if !errors.As(err, &ce) {
		return explainNode(app, cfg, err, tc, within)
	}
	hint := ""
	switch ce.Code {
	case chain.CodeUnauthorized:
		if tc != nil {
			hint = fmt.Sprintf("this was signed by %s", tc.signer)
			if tc.role != accountRole {
				hint += "; " + leadKeyHint(app, cfg, tc)
			} else {
				hint += "; pass --key with the key of the account named above"
			}
		}
	case chain.CodeBadNonce:
		hint = "another transaction of this account committed first; run the command again"
	case chain.CodeWrongChain:
		hint = fmt.Sprintf("chain.rpc in %s (%s) points at another network", app.ConfigPath, cfg.Chain.RPC)
	case chain.CodeBadSignature, chain.CodeBadTx, chain.CodeUnknownMsg:
		hint = "the node may run another version of satchel than this command"
	case chain.CodeBagNotFound:
		hint = "list bags with `satchel bag list`"
	case chain.CodeStorageBucketNotFound:
		hint = "list storage buckets with `satchel bucket list --storage`"
	case chain.CodeFamilyNotFound:
		hint = "list families with `satchel family list`"
	case chain.CodeDistributionBucketNotFound:
		hint = "list distribution buckets with `satchel bucket list --distribution`"
	case chain.CodeObjectNotFound:
		hint = "list a bag's objects with `satchel object list BAG`"
	case chain.CodeWorkerNotFound:
		hint = "list workers with `satchel workers list -g GROUP`"
		if !strings.Contains(ce.Error(), "workers add") { // the chain's message may say it already
			hint += "; the lead adds them with `satchel workers add`"
		}
	case chain.CodeMemberNotFound:
		hint = "register one with `satchel member create`"
	case chain.CodeVoucherLimitTooHigh:
		hint = "the storage lead raises the max with `satchel storage leader update-voucher-limits`"
	case chain.CodeBagNotInBucket, chain.CodeBagAlreadyInBucket:
		hint = "see the bag's buckets with `satchel bag show BAG`"
	case chain.CodeNoInvitation, chain.CodeNotOperator, chain.CodeAlreadyOperator, chain.CodeInvitationPending, chain.CodeBucketHasOperator:
		hint = "see the bucket's operators and invitations with `satchel bucket show ID`"
	case chain.CodeZeroSize:
		hint = "a data object holds at least one byte: leave empty files out"
	case chain.CodeObjectTooLarge:
		hint = "`satchel params` shows the limit; split the file, or ask the storage lead to raise it with `satchel storage leader set-max-object-size`"
	case chain.CodeBlacklisted:
		hint = "if the content should be allowed, ask the storage lead to take it off the blacklist with `satchel storage leader update-blacklist -r CID`"
	case chain.CodeUploadingBlocked:
		hint = "`satchel params` shows the switch; the storage lead lifts it with `satchel storage leader set-uploading-blocked off`"
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w; %s", err, hint)
}

// leadKeyHint tells a lead command signed by another key which key to pass:
// the lead key under the home when it is there (the config's key, which
// signs every command, may have hidden it), else where init writes it.
func leadKeyHint(app *App, cfg Config, tc *txContext) string {
	path := defaultKeyFile(cfg, tc.role)
	if _, err := os.Stat(path); err != nil {
		return fmt.Sprintf("sign with the %s key: pass --key PATH (on the lead's machine `satchel chain init` wrote it to %s)", tc.role, path)
	}
	h := fmt.Sprintf("sign with the %s key: pass --key %s", tc.role, path)
	if tc.signer.source == "config key" {
		h += fmt.Sprintf(" (key in %s signs every command, leader ones included, unless --key names another)", app.ConfigPath)
	}
	return h
}

// explainNode explains an error that is not the data directory's own: the
// node could not be reached, did not answer in time, or refused the
// transaction before it reached the application.
func explainNode(app *App, cfg Config, err error, tc *txContext, within time.Duration) error {
	// A timeout first: a call that timed out is also a *url.Error, and a
	// node that accepted the connection is not unreachable.
	if errors.Is(err, context.DeadlineExceeded) && (within > 0 || fromNode(err, cfg)) {
		when := "in time"
		if within > 0 {
			when = "within " + within.String()
		}
		msg := fmt.Sprintf("the chain node at %s did not answer %s; is it running, or still catching up? check with `satchel chain status`", cfg.Chain.RPC, when)
		if tc != nil {
			msg += "; the transaction may still commit, so check before you run the command again"
		}
		return fmt.Errorf("%w; %s", err, msg)
	}
	if unreachable(err, cfg) {
		return fmt.Errorf("cannot reach the chain node at %s: %w; start it with `satchel chain start`, or set chain.rpc in %s to a running node", cfg.Chain.RPC, err, app.ConfigPath)
	}
	switch {
	case errors.Is(err, node.ErrDropped):
		return fmt.Errorf("%w; another transaction of this account probably used its nonce first: run the command again to sign and submit it anew", err)
	case errors.Is(err, rpc.ErrDuplicateTx):
		return fmt.Errorf("%w; wait a few blocks and check whether it committed before you run the command again", err)
	case errors.Is(err, rpc.ErrCatchingUp):
		return fmt.Errorf("%w; wait until `satchel chain status` no longer says catching up, or set chain.rpc in %s to a node that has caught up", err, app.ConfigPath)
	}
	return err
}

// unreachable reports whether err means no connection to the chain node
// could be made: a refused or failed dial, not a node that answered late.
func unreachable(err error, cfg Config) bool {
	var oe *net.OpError
	dial := errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &oe) && oe.Op == "dial"
	var ue *url.Error
	return dial && (!errors.As(err, &ue) || fromNode(err, cfg))
}

// fromNode reports whether err is from an HTTP call to the chain node at
// chain.rpc, rather than to some other peer.
func fromNode(err error, cfg Config) bool {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return false
	}
	rpc := cfg.Chain.RPC
	if !strings.Contains(rpc, "://") {
		rpc = "http://" + rpc // as rpc.Dial reads it
	}
	want, err1 := url.Parse(rpc)
	got, err2 := url.Parse(ue.URL)
	if err1 != nil || err2 != nil {
		return false
	}
	// Over a unix socket the request URL names no real host.
	return want.Scheme == "unix" || got.Host == want.Host
}

// ---- flag values ----

// parseYesNo reads the (yes|no) of -a/--acceptingBags.
func parseYesNo(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "y", "true":
		return true, nil
	case "no", "n", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q: want yes or no", s)
}

// parseOnOff reads the (on|off) of -d/--mode and set-uploading-blocked.
func parseOnOff(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "yes", "true":
		return true, nil
	case "off", "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q: want on or off", s)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// parseCount reads a non-negative decimal integer.
func parseCount(s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want a non-negative integer", s)
	}
	return n, nil
}

// parseBytes reads a size flag: bytes, or a number and a unit such as 10GiB
// or 1.5TB (units.ParseBytes).
func parseBytes(s string) (uint64, error) { return units.ParseBytes(s) }

// formatBytes prints a size with a binary unit, e.g. "10 GiB"
// (units.FormatBytes).
func formatBytes(n uint64) string { return units.FormatBytes(n) }

// listFlag is a repeatable flag whose every use may hold a comma-separated
// list: `-a 1 -a 2` and `-a 1,2` are the same.
type listFlag[T any] struct {
	values []T
	parse  func(string) (T, error)
	typ    string
}

func newListFlag[T any](parse func(string) (T, error), typ string) *listFlag[T] {
	return &listFlag[T]{parse: parse, typ: typ}
}

func (f *listFlag[T]) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			return fmt.Errorf("%q: empty list entry", s)
		}
		v, err := f.parse(part)
		if err != nil {
			return err
		}
		f.values = append(f.values, v)
	}
	return nil
}

func (f *listFlag[T]) String() string {
	parts := make([]string, len(f.values))
	for i, v := range f.values {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ",")
}

func (f *listFlag[T]) Type() string { return f.typ }

// joinIDs writes IDs separated by spaces, or "none".
func joinIDs[T fmt.Stringer](ids []T) string {
	if len(ids) == 0 {
		return "none"
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id.String()
	}
	return strings.Join(parts, " ")
}

// joinStrings writes strings separated by spaces, or "none".
func joinStrings(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, " ")
}

// nonNil returns xs, or an empty slice for nil, so JSON shows [] not null.
func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// requiredFlags marks flags required; cobra then names every missing one.
func requiredFlags(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		if err := cmd.MarkFlagRequired(n); err != nil {
			panic(err) // a misspelled flag name is a programming error
		}
	}
}
