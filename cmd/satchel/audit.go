package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/units"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/provider"
)

func init() { registerGroup(newAuditCmd) }

// auditVerdict is what `satchel audit PEER OBJECT` prints.
type auditVerdict struct {
	Peer    string         `json:"peer"`
	Bucket  uint64         `json:"bucket"`
	Bag     chain.BagID    `json:"bag"`
	Object  chain.ObjectID `json:"object"`
	CID     string         `json:"cid"`
	Chunks  []int          `json:"chunks"`
	Pass    bool           `json:"pass"`
	Reason  string         `json:"reason,omitempty"`
	BytesIn int            `json:"bytesIn"`
	TookMs  int64          `json:"tookMs"`
}

func newAuditCmd(app *App) *cobra.Command {
	var bagFlag string
	var samples int
	cmd := &cobra.Command{
		Use:   "audit PEER OBJECT --bag BAG",
		Short: "Audit a storage provider for an object, or show the audits a node heard",
		Long: `Challenge storage provider PEER (a peer ID) for random chunks of object OBJECT
of bag BAG over /satchel/audit/1.0.0, verify each chunk and its Merkle proof
against the object's content ID on chain, and print the verdict. The exit
status is 0 when the provider passed, 1 when it failed.

PEER must operate one of the bag's storage buckets: its address is read from
the operator metadata on chain. The challenge is signed with this command's
own libp2p key (a fresh one each run). The chunk count is read from the
object's DAG, fetched from PEER and verified against the content ID.

"satchel audit report" shows what a storage node heard from the network's
auditors.`,
		Example: `  satchel audit 12D3KooW... 12 --bag dynamic:channel:1
  satchel audit report --bucket 2`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, err := peer.Decode(args[0])
			if err != nil {
				return fmt.Errorf("PEER %q is not a peer ID: %w", args[0], err)
			}
			id, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("OBJECT %q is not an object ID: %w", args[1], err)
			}
			if bagFlag == "" {
				return errors.New("--bag is required: the bag object OBJECT belongs to, e.g. dynamic:channel:1")
			}
			bag, err := chain.ParseBagID(bagFlag)
			if err != nil {
				return fmt.Errorf("--bag: %w", err)
			}
			if samples < 1 || samples > audit.MaxSamples {
				return fmt.Errorf("--samples %d: want 1 to %d", samples, audit.MaxSamples)
			}
			v, err := runAudit(cmd.Context(), app, pid, bag, chain.ObjectID(id), samples)
			if err != nil {
				return err
			}
			if err := printVerdict(app, v); err != nil {
				return err
			}
			if !v.Pass {
				return &exitError{code: 1, err: fmt.Errorf("provider %s failed the audit: %s", v.Peer, v.Reason)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&bagFlag, "bag", "b", "", "the object's bag, e.g. dynamic:channel:1 (required)")
	cmd.Flags().IntVar(&samples, "samples", provider.DefaultAuditSamples, fmt.Sprintf("chunks to ask for (1 to %d)", audit.MaxSamples))
	cmd.AddCommand(newAuditReportCmd(app))
	return cmd
}

// runAudit finds PEER among the bag's operators, reads the object's chunk
// count and runs one audit.
func runAudit(ctx context.Context, app *App, pid peer.ID, bag chain.BagID, id chain.ObjectID, samples int) (auditVerdict, error) {
	cfg, err := app.Config()
	if err != nil {
		return auditVerdict{}, err
	}
	c, _, closeFn, err := openClient(app, cfg, chain.Key{}, 0)
	if err != nil {
		return auditVerdict{}, err
	}
	defer closeFn()
	cc, closeChain, err := dialChain(app, cfg)
	if err != nil {
		return auditVerdict{}, err
	}
	defer closeChain()
	obj, err := readObject(ctx, cc, bag, id)
	if err != nil {
		return auditVerdict{}, explain(app, cfg, err, nil)
	}
	root, err := cid.Decode(obj.ContentID)
	if err != nil {
		return auditVerdict{}, fmt.Errorf("object %d: content ID %q: %w", id, obj.ContentID, err)
	}
	ai, bucket, err := operatorOf(ctx, cc, bag, pid)
	if err != nil {
		return auditVerdict{}, err
	}
	h := c.Host()
	if err := h.Connect(ctx, ai); err != nil {
		return auditVerdict{}, fmt.Errorf("connect to %s: %w", pid, err)
	}
	fc := fetch.NewClient(h.Libp2p())
	defer fc.Close()
	n, err := audit.ChunkCount(root, func(b cid.Cid) ([]byte, error) { return fc.GetBlock(ctx, pid, b) })
	if err != nil {
		return auditVerdict{}, fmt.Errorf("read the DAG of object %d from %s: %w", id, pid, err)
	}
	ac, err := audit.NewClient(h.Libp2p())
	if err != nil {
		return auditVerdict{}, err
	}
	if obj.Size > 0 && uint64(n) > obj.Size {
		return auditVerdict{}, fmt.Errorf("%w: the DAG of object %d from %s claims %d chunks of a %d-byte object", audit.ErrBadAnswer, id, pid, n, obj.Size)
	}
	idx := audit.PickIndexes(n, samples)
	smp := make([]audit.Sample, len(idx))
	for i, k := range idx {
		smp[i] = audit.Sample{Index: k}
	}
	out, err := ac.Audit(ctx, pid, audit.Target{Bag: string(bag), Object: uint64(id), Root: root}, smp)
	if err != nil {
		return auditVerdict{}, err
	}
	v := auditVerdict{Peer: pid.String(), Bucket: uint64(bucket), Bag: bag, Object: id, CID: root.String(), Chunks: idx,
		Pass: out.Pass, BytesIn: out.BytesIn, TookMs: out.Took.Milliseconds()}
	if out.Err != nil {
		v.Reason = out.Err.Error()
	}
	return v, nil
}

// operatorOf finds pid among the operators of the bag's storage buckets.
func operatorOf(ctx context.Context, cc *chain.Client, bag chain.BagID, pid peer.ID) (peer.AddrInfo, chain.StorageBucketID, error) {
	b, err := cc.Bag(ctx, bag)
	if err != nil {
		return peer.AddrInfo{}, 0, fmt.Errorf("bag %s: %w", bag, err)
	}
	for _, id := range b.StorageBuckets {
		bkt, err := cc.StorageBucket(ctx, id)
		if err != nil || bkt.Metadata == nil || bkt.Metadata.PeerID != pid.String() {
			continue
		}
		ai, err := p2p.ParseAddrInfo(bkt.Metadata.PeerID, bkt.Metadata.Multiaddrs)
		if err != nil {
			return peer.AddrInfo{}, 0, fmt.Errorf("storage bucket %d metadata: %w", id, err)
		}
		return ai, id, nil
	}
	return peer.AddrInfo{}, 0, fmt.Errorf("%s operates none of the storage buckets of bag %s; see them with \"satchel bag show %s\"", pid, bag, bag)
}

func printVerdict(app *App, v auditVerdict) error {
	return app.Printer().Print(v, func(w io.Writer) error {
		verdict := "PASS"
		if !v.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%s  provider %s (bucket %d), object %d of %s (%s)\n", verdict, v.Peer, v.Bucket, v.Object, v.Bag, v.CID)
		fmt.Fprintf(w, "  chunks   %v\n", v.Chunks)
		fmt.Fprintf(w, "  received %d bytes in %d ms\n", v.BytesIn, v.TookMs)
		if v.Reason != "" {
			fmt.Fprintf(w, "  reason   %s\n", v.Reason)
		}
		return nil
	})
}

// auditReportRow is one provider in `satchel audit report`.
type auditReportRow struct {
	Provider    string    `json:"provider"`
	Bucket      uint64    `json:"bucket"`
	Passed      int       `json:"passed"`
	Failed      int       `json:"failed"`
	First       time.Time `json:"first"`
	Last        time.Time `json:"last"`
	LastFailure string    `json:"lastFailure,omitempty"`
	// Results are the individual results, oldest first (--json only).
	Results []provider.HeardResult `json:"results"`
}

func newAuditReportCmd(app *App) *cobra.Command {
	var statusAddr string
	bucketF := newFlag("", chain.StorageBucketID(0), chain.ParseStorageBucketID, "B")
	cmd := &cobra.Command{
		Use:   "report [--bucket B]",
		Short: "Show the audit results a storage node heard: pass and fail per provider",
		Long: `Ask a running storage node (its status server, --status) for the audit results it
heard on the network's audit topic (signed by their auditors, who must operate
buckets of the node's bags; the node keeps the most recent 10000 in memory),
and print per provider how many audits passed and failed, over which period,
and why the last failure failed. --json prints every result.`,
		Example: `  satchel audit report
  satchel audit report --status 127.0.0.1:7071 --bucket 2 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u := url.URL{Scheme: "http", Host: statusAddr, Path: provider.AuditsPath}
			bucket := uint64(bucketF.value)
			only := cmd.Flags().Changed("bucket")
			if only {
				u.RawQuery = url.Values{"bucket": {strconv.FormatUint(bucket, 10)}}.Encode()
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, u.String(), nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("ask the storage node at %s: %w; is \"satchel storage server\" running with --status %s?", statusAddr, err, statusAddr)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("storage node at %s answered %s", statusAddr, resp.Status)
			}
			var heard []provider.HeardResult
			if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&heard); err != nil {
				return fmt.Errorf("read the audit results of %s: %w", statusAddr, err)
			}
			rows := summarizeAudits(heard)
			if len(rows) == 0 && only {
				if err := bucketExists(cmd, app, chain.StorageBucketID(bucket)); err != nil {
					return err
				}
			}
			return app.Printer().Print(rows, func(w io.Writer) error {
				if len(rows) == 0 && only {
					_, err := fmt.Fprintf(w, "no audit results heard yet for storage bucket %d; is it a bucket of this node's bags? see them with `satchel bucket list --storage`\n", bucket)
					return err
				}
				if len(rows) == 0 {
					_, err := fmt.Fprintln(w, "no audit results heard yet: providers audit each other every --audit-interval (10m by default), for objects held 10 minutes or more; `satchel audit PEER OBJECT --bag BAG` audits one now")
					return err
				}
				var table [][]string
				for _, r := range rows {
					table = append(table, []string{strconv.FormatUint(r.Bucket, 10), r.Provider, strconv.Itoa(r.Passed), strconv.Itoa(r.Failed),
						r.First.Format(time.RFC3339), r.Last.Format(time.RFC3339), r.LastFailure})
				}
				return Table(w, []string{"BUCKET", "PROVIDER", "PASSED", "FAILED", "FIRST", "LAST", "LAST FAILURE"}, table)
			})
		},
	}
	cmd.Flags().StringVar(&statusAddr, "status", defaultStatusAddr, "status `HOST:PORT` of the storage node to ask")
	cmd.Flags().Var(bucketF, "bucket", "show the providers of storage bucket B only (default: every bucket)")
	return cmd
}

// bucketExists fails when the chain says storage bucket id does not exist,
// so that a mistyped --bucket is an error rather than an empty report. A
// chain it cannot ask is no error: the report comes from the storage node.
func bucketExists(cmd *cobra.Command, app *App, id chain.StorageBucketID) error {
	_, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) (chain.StorageBucket, error) {
		return c.StorageBucket(ctx, id)
	})
	if errors.Is(err, chain.ErrStorageBucketNotFound) {
		return fmt.Errorf("--bucket %d: %w", id, err)
	}
	if err != nil {
		app.Log.Debug("could not check the bucket on chain", "component", "cli", "bucket", id, "err", err)
	}
	return nil
}

// summarizeAudits groups heard results per provider, in bucket order.
func summarizeAudits(heard []provider.HeardResult) []auditReportRow {
	by := map[string]*auditReportRow{}
	for _, h := range heard {
		r := by[h.Provider]
		if r == nil {
			r = &auditReportRow{Provider: h.Provider, Bucket: h.Bucket, First: h.Time}
			by[h.Provider] = r
		}
		if h.Pass {
			r.Passed++
		} else {
			r.Failed++
			r.LastFailure = h.Reason
		}
		r.First = minTime(r.First, h.Time)
		if h.Time.After(r.Last) {
			r.Last = h.Time
		}
		r.Results = append(r.Results, h)
	}
	out := make([]auditReportRow, 0, len(by))
	for _, r := range by {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b auditReportRow) int {
		if a.Bucket != b.Bucket {
			return int(a.Bucket) - int(b.Bucket)
		}
		if a.Provider < b.Provider {
			return -1
		}
		return 1
	})
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// auditFlags are the audit and scrub settings of `storage server`.
type auditFlags struct {
	interval     time.Duration
	bandwidth    float64 // MB/s
	scrub        float64 // MB/s
	answerRate   string  // size a second (units.ParseBytes)
	answerBurst  string  // size
	answerBudget provider.Option
}

func (a *auditFlags) add(f *pflag.FlagSet) {
	f.DurationVar(&a.interval, "audit-interval", provider.DefaultAuditInterval, "time between audit rounds of the bags' other providers (0 turns auditing off)")
	f.Float64Var(&a.bandwidth, "audit-bandwidth", float64(provider.DefaultAuditBandwidth)/1e6, "`MB/s` the node's audits may ask its peers to send")
	f.Float64Var(&a.scrub, "scrub-rate", float64(provider.DefaultScrubRate)/1e6, "`MB/s` of disk reads the background scrub may use (0 turns it off)")
	f.StringVar(&a.answerRate, "audit-answer-rate", "", "`SIZE` a second of chunks and proof blocks the node reads to answer all auditors together, e.g. 20MB; challenges beyond it are refused (default "+units.FormatBytes(audit.DefaultAnswerRate)+")")
	f.StringVar(&a.answerBurst, "audit-answer-burst", "", "`SIZE` the node may read for answers at once above --audit-answer-rate (default about "+units.FormatBytes(roundMiB(audit.DefaultAnswerBurst))+": four answers of whole chunks of the largest size)")
}

// parse reads the size flags (empty: the defaults); call it before options.
func (a *auditFlags) parse() error {
	rate, err := parseOptionalSize("--audit-answer-rate", a.answerRate, 1)
	if err != nil {
		return err
	}
	burst, err := parseOptionalSize("--audit-answer-burst", a.answerBurst, audit.MaxChunkSize)
	if err != nil {
		return err
	}
	a.answerBudget = provider.WithAuditAnswerBudget(rate, burst)
	return nil
}

// parseOptionalSize reads the size flag called name: 0 when it is empty,
// else at least least bytes.
func parseOptionalSize(name, s string, least uint64) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := parseSize(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s %q: %w", name, s, err)
	case n < least:
		return 0, fmt.Errorf("%s %q: must be at least %s", name, s, units.FormatBytes(least))
	case n > math.MaxInt64:
		return 0, fmt.Errorf("%s %q: must be at most %s", name, s, units.FormatBytes(math.MaxInt64))
	}
	return int64(n), nil
}

// options returns the audit options of the flags parse read.
func (a *auditFlags) options() []provider.Option {
	return []provider.Option{provider.WithAudits(a.interval, int64(a.bandwidth*1e6)), a.answerBudget}
}

func (a *auditFlags) scrubOption() provider.Option {
	return provider.WithScrub(int64(a.scrub*1e6), 0)
}

// roundMiB rounds n to whole MiB for help text: the answer burst is four
// answers of the largest chunks, a little under 64 MiB, which would print
// as 63.99 MiB.
func roundMiB(n uint64) uint64 { return (n + 1<<19) >> 20 << 20 }
