package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/satchel-net/satchel/client"
)

// stderrIsTerminal reports whether w, the command's stderr, is a terminal.
// Tests replace it.
var stderrIsTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// Progress bar drawing.
const (
	barWidth    = 24
	barInterval = 100 * time.Millisecond // at most ten redraws a second
	// rateWindow is how far back the rate (and so the ETA) looks.
	rateWindow = 3 * time.Second
)

// progressBar draws a client operation's progress on one line of stderr:
// a bar, the bytes done and total, the rate, the ETA, and what the upload is
// doing. It draws nothing unless stderr is a terminal and output is not
// JSON; a nil *progressBar is valid and draws nothing.
type progressBar struct {
	w     io.Writer
	label string
	now   func() time.Time

	mu      sync.Mutex
	last    time.Time // last redraw
	phase   string
	samples []sample // recent (time, bytes) for the rate
	width   int      // width of the last line drawn, to clear it
	p       client.Progress
	drawn   bool
}

type sample struct {
	t time.Time
	n int64
}

// newProgressBar returns a bar for app's stderr, or nil when none should
// be drawn.
func newProgressBar(app *App, label string) *progressBar {
	if app.JSON || !stderrIsTerminal(app.Err) {
		return nil
	}
	return &progressBar{w: app.Err, label: label, now: time.Now}
}

// update records a progress report and redraws at most every barInterval.
// It is the client's progress callback.
func (b *progressBar) update(p client.Progress) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	phase := phaseOf(p)
	if phase != b.phase {
		b.phase, b.samples = phase, nil
	}
	b.samples = append(b.samples, sample{now, p.Bytes})
	for len(b.samples) > 2 && now.Sub(b.samples[0].t) > rateWindow {
		b.samples = b.samples[1:]
	}
	b.p = p
	if b.drawn && now.Sub(b.last) < barInterval {
		return
	}
	b.draw(now)
}

// done draws the final state and ends the line.
func (b *progressBar) done(ok bool) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.drawn {
		return
	}
	if ok {
		b.draw(b.now())
	}
	fmt.Fprintln(b.w)
}

// phaseOf names what an operation is doing, for the bar.
func phaseOf(p client.Progress) string {
	if p.Op == client.OpGet {
		return "reading"
	}
	switch p.File {
	case client.FileChunking:
		return "hashing and sending"
	case client.FileRegistering:
		return "registering"
	case client.FileUploading:
		return "uploading"
	case client.FileUploaded:
		return "waiting for the chain to accept"
	case client.FileAccepted:
		return "stored"
	case client.FileFailed:
		return "failed"
	}
	return "starting"
}

// rate returns the bytes per second over the recent samples.
func (b *progressBar) rate() float64 {
	if len(b.samples) < 2 {
		return 0
	}
	first, last := b.samples[0], b.samples[len(b.samples)-1]
	dt := last.t.Sub(first.t).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(last.n-first.n) / dt
}

func (b *progressBar) draw(now time.Time) {
	b.last, b.drawn = now, true
	p := b.p
	var line strings.Builder
	line.WriteString(b.label)
	line.WriteString(" ")
	if p.TotalBytes > 0 {
		frac := min(float64(p.Bytes)/float64(p.TotalBytes), 1)
		fill := int(frac * barWidth)
		line.WriteString("[")
		line.WriteString(strings.Repeat("=", fill))
		if fill < barWidth {
			line.WriteString(">")
			line.WriteString(strings.Repeat(" ", barWidth-fill-1))
		}
		fmt.Fprintf(&line, "] %3.0f%% %s/%s", frac*100, formatBytes(uint64(p.Bytes)), formatBytes(uint64(p.TotalBytes)))
	} else {
		line.WriteString(formatBytes(uint64(p.Bytes)))
	}
	r := b.rate()
	if r > 0 {
		fmt.Fprintf(&line, " %s/s", formatBytes(uint64(r)))
		if p.TotalBytes > p.Bytes {
			eta := time.Duration(float64(p.TotalBytes-p.Bytes) / r * float64(time.Second))
			fmt.Fprintf(&line, " ETA %s", formatETA(eta))
		}
	}
	line.WriteString(" · ")
	line.WriteString(b.phase)
	if p.Op == client.OpPut && p.Providers > 0 {
		fmt.Fprintf(&line, " · %d providers", p.Providers)
		if open := openLinks(p); open > 0 {
			fmt.Fprintf(&line, ", %d chunks in flight", open)
		}
		if f := p.Links[client.LinkFailed]; f > 0 {
			fmt.Fprintf(&line, ", %d failed", f)
		}
	}
	s := line.String()
	pad := ""
	if n := len([]rune(s)); n < b.width {
		pad = strings.Repeat(" ", b.width-n)
	}
	b.width = len([]rune(s))
	fmt.Fprintf(b.w, "\r%s%s", s, pad)
}

// openLinks counts the storage links still under way.
func openLinks(p client.Progress) int {
	n := 0
	for s := client.LinkCreated; s < client.LinkSigned; s++ {
		n += p.Links[s]
	}
	return n
}

// formatETA prints a duration as 1h02m, 3m04s or 12s.
func formatETA(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}
