package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain/api"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/internal/httpserve"
)

// The query API's bounds: each query is a proven read of the chain node,
// which may wait for its next block, so few run at once.
const (
	chainAPIMaxQueries = 32
	chainAPIMaxConns   = 256
)

func newChainAPICmd(app *App) *cobra.Command {
	var listen, genesis, rpcURL string
	cmd := &cobra.Command{
		Use:   "api [--genesis FILE]",
		Short: "Serve the data directory's reads over HTTP/JSON, each proven against the validators",
		Long: `Serve the HTTP/JSON query API (GET /api/v1/...; see docs/OPERATOR.md) until
Ctrl-C. Every answer is read from the chain node at --rpc (default: chain.rpc
in the config) with proofs, and verified against headers signed by the
validators of the genesis file (default: the trust root of the config, as
for every command: chain.trustHeight/trustHash, chain.genesis, the chain
home's genesis.json) before it is served: an answer that fails is refused
with 502 and the endpoint named. --trust-rpc does not apply: the API serves
proven answers only.

It serves at most 32 queries at once (one more is answered 503 with
Retry-After) over at most 256 connections, and drops a client slower than
its timeouts; serving the internet, put it behind a reverse proxy that
limits each client.`,
		Example: `  satchel chain api
  satchel chain api --listen 0.0.0.0:8090 --rpc http://10.0.0.5:26657 --genesis genesis.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if app.TrustRPC {
				return errors.New("--trust-rpc does not apply to chain api: it serves proven answers only; leave it out")
			}
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			if rpcURL == "" {
				rpcURL = cfg.Chain.RPC
			} else if err := checkRPC("--rpc", rpcURL); err != nil {
				return err
			}
			// The config's trust root, or the --genesis file's: the saved
			// header (see connectChain) is used and kept only with the
			// config's root, which the other commands share.
			trust := chainTrust(cfg)
			trust.TrustRPC = false
			ownRoot := genesis == "" || genesis == trust.Genesis
			if !ownRoot {
				trust = rpc.Trust{Genesis: genesis, TrustingPeriod: trust.TrustingPeriod}
			}
			if _, err := trust.Root(); err != nil {
				return fmt.Errorf("query API: %w; pass --genesis FILE, or set chain.genesis (or chain.trustHeight and chain.trustHash) in %s", err, app.ConfigPath)
			}
			tr, err := rpc.Dial(rpcURL)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			startCtx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			pt, release, err := proveSaving(startCtx, tr, rpcURL, trust, trustedHeaderFile(cfg), ownRoot,
				"set chain.trustHeight and chain.trustHash to the latest block that `satchel chain status` prints on a node you trust", app.Log)
			if err != nil {
				return err
			}
			defer release()
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return inUse(fmt.Errorf("query API: %w", err), listenSetting{flag: "--listen", addr: listen})
			}
			l = httpserve.LimitConns(l, chainAPIMaxConns)
			srv := httpserve.Server(httpserve.LimitRequests(api.NewHandler(pt, api.WithLogger(app.Log)), chainAPIMaxQueries))
			if err := app.Printer().Print(map[string]string{"listen": "http://" + l.Addr().String(), "rpc": rpcURL}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "query API at http://%s/api/v1/ (proven reads of %s; Ctrl-C to stop)\n", l.Addr(), rpcURL)
				return err
			}); err != nil {
				l.Close()
				return err
			}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(l) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			if err := srv.Shutdown(sctx); err != nil {
				return err
			}
			if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8090", "`HOST:PORT` to serve on")
	f.StringVar(&genesis, "genesis", "", "the network's genesis `FILE`, whose validators are trusted (default: the config's trust root)")
	f.StringVar(&rpcURL, "rpc", "", "RPC `URL` of the chain node to read from (default: chain.rpc in the config)")
	return cmd
}
