//go:build unix

package distributor_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/satchel-net/satchel/distributor"
)

// seekVideo is 60 s of VP9 test pattern at 400 kbit/s in WebM (3 MB, made
// with ffmpeg's testsrc): more than a browser buffers ahead in a second of
// play, so a far seek needs new bytes.
const seekVideo = "testdata/seek.webm"

// seekTo is where the page seeks, in seconds.
const seekTo = 50

// The page loads the video's metadata, seeks far ahead (telling the test
// first, so it can count the bytes fetched from then on), plays, and
// reports the playback position once it plays past the seek point.
const videoPage = `<!doctype html><html><body>
<video id="v" src="%s" muted playsinline preload="metadata"></video>
<script>
const v = document.getElementById('v');
let state = 'start';
const report = (e) => fetch('/report?e=' + e + '&t=' + v.currentTime);
v.addEventListener('error', () => report('error' + (v.error ? v.error.code : '')));
v.addEventListener('loadedmetadata', async () => {
  await report('seek');
  state = 'seeking';
  v.currentTime = %d;
  v.play().catch(e => report('playfailed'));
});
v.addEventListener('timeupdate', () => {
  if (state === 'seeking' && v.currentTime > %d.5) {
    state = 'done';
    report('done');
  }
});
</script></body></html>`

// A browser loads a video from the distributor, seeks far ahead and plays
// on past the seek point.
func TestBrowserVideoSeek(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("headless Chromium not installed (Debian package chromium; .ci/run installs it): browser seek test skipped")
	}
	video, err := os.ReadFile(seekVideo)
	if err != nil {
		t.Fatal(err)
	}
	// No cache: every range the browser asks for is fetched from the
	// providers, so the fetched bytes show what a seek costs.
	e := newEnv(t, 1, distributor.WithMaxCachedObject(0))
	obj := e.put(t, video, 64<<10)
	fetched := func() float64 { return counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total") }

	reports := make(chan url2, 16)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, videoPage, e.d.AssetURL(obj.ID), seekTo, seekTo)
	})
	var atSeek float64
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) {
		ev := r.URL.Query().Get("e")
		if ev == "seek" {
			atSeek = fetched() // before the page seeks: it waits for this answer
		}
		tm, _ := strconv.ParseFloat(r.URL.Query().Get("t"), 64)
		reports <- url2{ev, tm}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := &http.Server{Handler: mux}
	go page.Serve(ln)
	t.Cleanup(func() { page.Close() })

	cmd := exec.Command(bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--autoplay-policy=no-user-gesture-required", "--mute-audio", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "http://"+ln.Addr().String()+"/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})

	deadline := time.After(90 * time.Second)
	for {
		select {
		case r := <-reports:
			t.Logf("page: %s at %.2f s (fetched so far %.0f)", r.event, r.t, fetched())
			switch r.event {
			case "seek":
			case "done":
				if r.t <= seekTo {
					t.Fatalf("playing at %.2f s, not past the seek point %d s", r.t, seekTo)
				}
				// The browser's own read-ahead (it keeps its first request
				// open) counts here too, so this is reported, not bounded.
				t.Logf("bytes fetched from providers from the seek to %.2f s: %.0f (the video is %d)", r.t, fetched()-atSeek, len(video))
				return
			default:
				t.Fatalf("page reported %s", r.event)
			}
		case <-deadline:
			t.Fatal("the page did not play past the seek point within 90 s")
		}
	}
}

type url2 struct {
	event string
	t     float64
}
