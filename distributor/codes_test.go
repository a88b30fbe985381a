package distributor_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/testnet"
)

func TestStatusCodes(t *testing.T) {
	e := newEnv(t, 1)
	data := randomBytes(t, 50<<10)
	obj := e.put(t, data, 16<<10)
	url := e.d.AssetURL(obj.ID)
	base := e.d.URL() + "/api/v1/assets/"

	// A pending object: registered, never uploaded.
	pending, err := e.net.Register(e.ctx, 1000, obj.ContentID)
	if err != nil {
		t.Fatal(err)
	}
	// An object of a bag the distributor's bucket does not hold: a second
	// channel's bag, which the (empty) distribution policy places nowhere.
	res, err := e.net.Client.Submit(e.ctx, e.net.Member, chain.MsgCreateChannel{Member: e.net.MemberID, Title: "other"})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := chain.FindEvent[chain.ChannelCreated](res.Result.Events)
	r, err := e.net.Client.Submit(e.ctx, e.net.Member, chain.MsgRegisterDataObjects{Bag: ch.Bag, Objects: []chain.ObjectSpec{{Size: 10, ContentID: obj.ContentID}}})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := chain.FindEvent[chain.ObjectsRegistered](r.Result.Events)
	elsewhere := reg.Objects[0]
	// The distributor reads the chain's blocks in order: once the later
	// of the two registrations is known, both are.
	waitStatus(t, base+elsewhere.ID.String(), http.StatusMisdirectedRequest)
	sum, _ := mh.Sum([]byte("not a block of the object"), mh.SHA2_256, -1)
	stranger := cid.NewCidV1(cid.Raw, sum)

	size := len(data)
	cases := []struct {
		name   string
		method string
		url    string
		hdr    []string
		want   int
		kind   string
	}{
		{"unknown object", "GET", base + "999999", nil, 404, "not_found"},
		{"non-numeric ID", "GET", base + "abc", nil, 400, "bad_object_id"},
		{"negative ID", "GET", base + "-1", nil, 400, "bad_object_id"},
		{"huge ID", "GET", base + "184467440737095516160000", nil, 400, "bad_object_id"},
		{"pending object", "GET", base + pending.ID.String(), nil, 404, "pending"},
		{"other bag", "GET", base + elsewhere.ID.String(), nil, 421, "not_distributed"},
		{"other bag HEAD", "HEAD", base + elsewhere.ID.String(), nil, 421, ""},
		{"range past the end", "GET", url, []string{"Range", fmt.Sprintf("bytes=%d-", size)}, 416, ""},
		{"malformed range", "GET", url, []string{"Range", "bytes=abc"}, 416, ""},
		{"inverted range", "GET", url, []string{"Range", "bytes=500-100"}, 416, ""},
		{"absurd range", "GET", url, []string{"Range", "bytes=0-99999999999999999999999999"}, 416, ""},
		{"too many ranges", "GET", url, []string{"Range", "bytes=" + strings.Repeat("0-0,", 100) + "1-1"}, 416, "bad_range"},
		{"not a byte range", "GET", url, []string{"Range", "pages=1-2"}, 200, ""},
		{"etag match", "GET", url, []string{"If-None-Match", `"` + obj.ContentID + `"`}, 304, ""},
		{"etag list match", "GET", url, []string{"If-None-Match", `"x", W/"` + obj.ContentID + `"`}, 304, ""},
		{"etag mismatch", "GET", url, []string{"If-None-Match", `"bafyother"`}, 200, ""},
		{"HEAD", "HEAD", url, nil, 200, ""},
		{"block not in the object", "GET", url + "/blocks/" + stranger.String(), nil, 404, "not_found"},
		{"malformed block CID", "GET", url + "/blocks/xyz", nil, 400, "bad_cid"},
		{"preflight", "OPTIONS", url, nil, 204, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, tc.url, tc.hdr...)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tc.want, body)
			}
			if tc.kind != "" {
				var ae struct{ Type, Message string }
				if err := json.Unmarshal(body, &ae); err != nil || ae.Type != tc.kind || ae.Message == "" {
					t.Fatalf("error body %s: want type %q with a message", body, tc.kind)
				}
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("no CORS header")
			}
		})
	}

	resp, body := get(t, e.d.URL()+"/api/v1/buckets")
	var bk struct{ BucketIDs []string }
	if err := json.Unmarshal(body, &bk); resp.StatusCode != 200 || err != nil || len(bk.BucketIDs) != 1 || bk.BucketIDs[0] != e.d.Bucket.String() {
		t.Fatalf("buckets: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, e.d.URL()+"/api/v1/status")
	var st struct {
		Objects   int
		Buckets   []string
		CacheUsed int64
	}
	if err := json.Unmarshal(body, &st); resp.StatusCode != 200 || err != nil || st.Objects < 2 || len(st.Buckets) != 1 || st.CacheUsed == 0 {
		t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, e.d.URL()+"/metrics"); resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	if resp, _ := get(t, e.d.URL()+"/"); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status page: %d", resp.StatusCode)
	}
}

func waitStatus(t *testing.T, url string, code int) {
	t.Helper()
	testnet.Wait(t, fmt.Sprintf("%s answers %d", url, code), func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == code
	})
}
