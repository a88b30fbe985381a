package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// sampleVideo is a short test-pattern video (VP9 in WebM, made with
// ffmpeg's testsrc) that the devnet puts in its bag so the distributor has
// something a browser plays.
//
//go:embed sample/sample.webm
var sampleVideo []byte

// sampleFile records the sample object the devnet put, so a resumed
// devnet does not put it again.
const sampleFile = "sample.json"

// devnetDistributor describes the devnet's distributor.
type devnetDistributor struct {
	Worker   uint64 `json:"worker"`
	Bucket   string `json:"bucket"`
	URL      string `json:"url"`
	Status   string `json:"status"`
	Sample   uint64 `json:"sampleObject"`
	AssetURL string `json:"sampleUrl"`
}

// startDevnetDistributor adds the devnet's distributor (a family, a bucket
// holding the bag, the node serving it on port; 0 picks a free one) and
// puts the sample video, or file when given, once.
func startDevnetDistributor(ctx context.Context, nw *testnet.Network, port int, file string) (devnetDistributor, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	d, err := nw.AddDistributor(ctx, distributor.WithHTTPAddr(addr))
	if err != nil {
		return devnetDistributor{}, fmt.Errorf("start the devnet's distributor on %s: %w (pass another --distributor-port)", addr, err)
	}
	obj, err := devnetSample(ctx, nw, file)
	if err != nil {
		return devnetDistributor{}, err
	}
	return devnetDistributor{
		Worker: uint64(d.Worker), Bucket: d.Bucket.String(), URL: d.URL(), Status: d.URL() + "/",
		Sample: uint64(obj), AssetURL: d.AssetURL(obj),
	}, nil
}

// devnetSample returns the sample object, putting it on every provider
// when the devnet has none yet.
func devnetSample(ctx context.Context, nw *testnet.Network, file string) (chain.ObjectID, error) {
	path := filepath.Join(nw.Dir, sampleFile)
	var rec struct {
		Object chain.ObjectID `json:"object"`
		File   string         `json:"file"`
	}
	b, err := os.ReadFile(path)
	if err == nil && json.Unmarshal(b, &rec) == nil && rec.File == file {
		if _, err := nw.Client.DataObject(ctx, nw.Bag, rec.Object); err == nil {
			return rec.Object, nil
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	data := sampleVideo
	if file != "" {
		if data, err = os.ReadFile(file); err != nil {
			return 0, fmt.Errorf("--sample: %w", err)
		}
	}
	var to []int
	for _, p := range nw.Providers() {
		to = append(to, p.Index)
	}
	// Chunks of 256 KiB: a seek in the video fetches a few of them.
	obj, err := nw.UploadChunked(ctx, data, 256<<10, to...)
	if err != nil {
		return 0, fmt.Errorf("put the sample video: %w", err)
	}
	rec.Object, rec.File = obj.ID, file
	out, _ := json.Marshal(rec)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return 0, err
	}
	return obj.ID, nil
}
