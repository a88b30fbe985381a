package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/client"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/p2p"
)

// Environment of BenchmarkCLI.
const (
	// cliBenchSizeEnv sets the object size (bytes, or a size such as
	// 256MiB); default 1 GiB, 64 MiB with -short.
	cliBenchSizeEnv = "SATCHEL_CLIBENCH_SIZE"
	// cliBenchProfileEnv, set to a directory, writes a CPU profile of the
	// devnet (providers and chain) there for the whole run, and one of
	// each satchel command.
	cliBenchProfileEnv = "SATCHEL_CLIBENCH_PROFILE"
)

// BenchmarkCLI measures what a user runs: the satchel binary, built from
// this tree, putting and getting one file (1 GiB; SATCHEL_CLIBENCH_SIZE
// sets another size, -short 64 MiB) against `satchel devnet` with one
// provider, each in a process of its own. Beside it, in the same run and
// against the same devnet, the library does the same through package
// client in this process (a put of its own file, a get to io.Discard and
// one to a file), and
// one plain libp2p stream between two loopback hosts gives the ceiling.
//
// Reported: cli_put_MB/s and lib_put_MB/s, put_cli/lib (target ≥ 0.85),
// put_cli/stream; cli_get_MB/s (to a new file, not synced, as curl and wget
// write), cli_get_stdout_MB/s (to /dev/null), cli_get_fsync_MB/s (--fsync),
// lib_get_MB/s, get_cli/lib (the file get against the library's, target
// ≥ 0.85) and get_cli/stream; lib_get_file_MB/s, the library writing a new
// file through the CLI's writer, and get_cli/lib_file (the CLI's own cost
// in a file get, the disk shared with the provider set apart); the CPU seconds per GiB the command
// (cli_*_cpu_s/GiB) and the devnet (devnet_*_cpu_s/GiB: provider, chain,
// distributor) spent on each. Targets on the lead's machine: put ≥ 500
// MB/s, get ≥ 600 MB/s.
//
//	make bench                                             # 1 GiB
//	go test -run '^$' -bench CLI -benchtime 1x ./cmd/satchel/  # the same alone
func BenchmarkCLI(b *testing.B) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	if s := os.Getenv(cliBenchSizeEnv); s != "" {
		n, err := parseBytes(s)
		if err != nil || n == 0 {
			b.Fatalf("%s=%q: want a size such as 256MiB", cliBenchSizeEnv, s)
		}
		size = int64(n)
	}
	profDir := os.Getenv(cliBenchProfileEnv)
	dir := benchutil.Dir(b)
	bin := buildSatchel(b, dir)
	dn := startDevnet(b, bin, filepath.Join(dir, "devnet"), profDir)
	cfgFile := filepath.Join(dir, "devnet", "config.yml")
	cfg, err := LoadConfig(cfgFile)
	if err != nil {
		b.Fatal(err)
	}
	lib := libClient(b, cfg, filepath.Join(dir, "lib-state"))

	// A warm-up put: a fresh devnet pays first-time costs a running one
	// paid long ago (the chain's first blocks, the provider's store
	// creating its files); whichever put came first would carry them.
	warm := filepath.Join(dir, "warm-up.bin")
	benchutil.WriteRandomFile(b, warm, min(size, 64<<20), 0)
	timeLib(dn, func(ctx context.Context) error {
		_, err := lib.PutFile(ctx, chain.BagID(dn.bag), warm, client.WithRedundancy(1))
		return err
	})

	gib := float64(size) / (1 << 30)
	runs := make([]cliMetrics, b.N)
	for i := range b.N {
		m := &runs[i]
		cliFile, libFile := filepath.Join(dir, "cli.bin"), filepath.Join(dir, "lib.bin")
		// Content of their own, run after run: a provider answers a chunk
		// it holds without storing it again.
		benchutil.WriteRandomFile(b, cliFile, size, uint64(2*i+1))
		benchutil.WriteRandomFile(b, libFile, size, uint64(2*i+2))
		m.stream = medianRawStream(b, min(size, 256<<20))

		// Put: the binary, then the library.
		cmd := []string{"-c", cfgFile, "put", cliFile, "--bag", dn.bag, "--json"}
		out, put := runCLI(b, bin, dn, profDir, "put", cmd...)
		var po putOutput
		if err := json.Unmarshal(out, &po); err != nil {
			b.Fatalf("satchel put printed %q: %v", out, err)
		}
		m.cliPut = put
		var ph putPhases
		m.libPut = timeLib(dn, func(ctx context.Context) error {
			_, err := lib.PutFile(ctx, chain.BagID(dn.bag), libFile, client.WithRedundancy(1), client.WithProgress(ph.record))
			return err
		})
		m.libStream, m.libBind, m.libAccept = ph.seconds()

		// Get: to a file (the default: not synced), to /dev/null, to a
		// file with --fsync; then the library to io.Discard.
		id := po.Object.String()
		outFile := filepath.Join(dir, "out.bin")
		libGet := func() {
			m.libGet = timeLib(dn, func(ctx context.Context) error {
				_, err := lib.Get(ctx, client.ObjectRef(chain.BagID(dn.bag), po.Object), io.Discard)
				return err
			})
		}
		// The library into a new file through the CLI's own writer
		// (writeOutput): against it the CLI's file get shows its own cost,
		// apart from the disk it shares with the provider reading the
		// object.
		libGetFile := func() {
			m.libGetFile = timeLib(dn, func(ctx context.Context) error {
				_, _, err := writeOutput(outFile, false, size, func(w io.Writer) (int64, error) {
					return lib.Get(ctx, client.ObjectRef(chain.BagID(dn.bag), po.Object), w)
				})
				return err
			})
			checkSize(b, outFile, size)
			_ = os.Remove(outFile)
		}
		// Every other run the library reads first, so neither side always
		// follows the puts' writeback.
		if i%2 == 1 {
			libGet()
			libGetFile()
		}
		_, m.cliGet = runCLI(b, bin, dn, profDir, "get", "-c", cfgFile, "get", id, "--bag", dn.bag, "-o", outFile)
		checkSize(b, outFile, size)
		_ = os.Remove(outFile)
		_, m.cliGetStdout = runCLI(b, bin, dn, profDir, "get-stdout", "-c", cfgFile, "get", id, "--bag", dn.bag, "-o", os.DevNull)
		_, m.cliGetFsync = runCLI(b, bin, dn, profDir, "get-fsync", "-c", cfgFile, "get", id, "--bag", dn.bag, "--fsync", "-o", outFile)
		checkSize(b, outFile, size)
		_ = os.Remove(outFile)
		if i%2 == 0 {
			libGetFile()
			libGet()
		}
	}
	m := medianCLIMetrics(runs)
	mbs := func(r timing) float64 { return float64(size) / r.seconds / 1e6 }
	b.ReportMetric(m.stream/1e6, "stream_MB/s")
	b.ReportMetric(mbs(m.cliPut), "cli_put_MB/s")
	b.ReportMetric(mbs(m.libPut), "lib_put_MB/s")
	b.ReportMetric(mbs(m.cliPut)/mbs(m.libPut), "put_cli/lib")
	b.ReportMetric(mbs(m.cliPut)*1e6/m.stream, "put_cli/stream")
	b.ReportMetric(mbs(m.cliGet), "cli_get_MB/s")
	b.ReportMetric(mbs(m.cliGetStdout), "cli_get_stdout_MB/s")
	b.ReportMetric(mbs(m.cliGetFsync), "cli_get_fsync_MB/s")
	b.ReportMetric(mbs(m.libGet), "lib_get_MB/s")
	b.ReportMetric(mbs(m.cliGet)/mbs(m.libGet), "get_cli/lib")
	b.ReportMetric(mbs(m.libGetFile), "lib_get_file_MB/s")
	b.ReportMetric(mbs(m.cliGet)/mbs(m.libGetFile), "get_cli/lib_file")
	b.ReportMetric(mbs(m.cliGet)*1e6/m.stream, "get_cli/stream")
	b.ReportMetric(m.libStream, "lib_put_stream_s")
	b.ReportMetric(m.libBind, "lib_put_bind_s")
	b.ReportMetric(m.libAccept, "lib_put_accept_s")
	b.ReportMetric(m.cliPut.cpu/gib, "cli_put_cpu_s/GiB")
	b.ReportMetric(m.cliPut.others/gib, "devnet_put_cpu_s/GiB")
	b.ReportMetric(m.libPut.cpu/gib, "lib_put_cpu_s/GiB")
	b.ReportMetric(m.libPut.others/gib, "devnet_libput_cpu_s/GiB")
	b.ReportMetric(m.cliGet.cpu/gib, "cli_get_cpu_s/GiB")
	b.ReportMetric(m.cliGet.others/gib, "devnet_get_cpu_s/GiB")
	b.ReportMetric(m.libGet.cpu/gib, "lib_get_cpu_s/GiB")
	b.ReportMetric(m.libGet.others/gib, "devnet_libget_cpu_s/GiB")
	b.ReportMetric(m.libGetFile.cpu/gib, "lib_get_file_cpu_s/GiB")
	b.Logf("machine load (1, 5, 15 min): %s", loadAvg())
}

// medianCLIMetrics is each figure's median over the runs (-benchtime Nx
// with N > 1 on a shared machine), a timing taken whole from the run whose
// wall time is the median.
func medianCLIMetrics(runs []cliMetrics) cliMetrics {
	pick := func(f func(*cliMetrics) float64) float64 {
		xs := make([]float64, len(runs))
		for i := range runs {
			xs[i] = f(&runs[i])
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	timed := func(f func(*cliMetrics) timing) timing {
		ts := make([]timing, len(runs))
		for i := range runs {
			ts[i] = f(&runs[i])
		}
		slices.SortFunc(ts, func(a, b timing) int { return cmp.Compare(a.seconds, b.seconds) })
		return ts[len(ts)/2]
	}
	return cliMetrics{
		stream:       pick(func(m *cliMetrics) float64 { return m.stream }),
		cliPut:       timed(func(m *cliMetrics) timing { return m.cliPut }),
		libPut:       timed(func(m *cliMetrics) timing { return m.libPut }),
		cliGet:       timed(func(m *cliMetrics) timing { return m.cliGet }),
		cliGetStdout: timed(func(m *cliMetrics) timing { return m.cliGetStdout }),
		cliGetFsync:  timed(func(m *cliMetrics) timing { return m.cliGetFsync }),
		libGet:       timed(func(m *cliMetrics) timing { return m.libGet }),
		libGetFile:   timed(func(m *cliMetrics) timing { return m.libGetFile }),
		libStream:    pick(func(m *cliMetrics) float64 { return m.libStream }),
		libBind:      pick(func(m *cliMetrics) float64 { return m.libBind }),
		libAccept:    pick(func(m *cliMetrics) float64 { return m.libAccept }),
	}
}

// cliMetrics are one BenchmarkCLI iteration's figures.
type cliMetrics struct {
	stream                                            float64 // bytes per second
	cliPut, libPut, cliGet, cliGetStdout, cliGetFsync timing
	libGet, libGetFile                                timing
	// The library put's phases, in seconds (see putPhases).
	libStream, libBind, libAccept float64
}

// putPhases records when a put's file first reached each state: streaming
// the chunks runs from FileChunking to FileRegistering, binding (the
// register transaction and the last receipts) to FileUploaded, the
// providers' acceptance on chain to FileAccepted.
type putPhases struct {
	mu    sync.Mutex
	start time.Time
	at    map[client.FileState]time.Duration
}

func (p *putPhases) record(pr client.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at == nil {
		p.start, p.at = time.Now(), map[client.FileState]time.Duration{}
	}
	if _, ok := p.at[pr.File]; !ok {
		p.at[pr.File] = time.Since(p.start)
	}
}

func (p *putPhases) seconds() (stream, bind, accept float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := func(from, to client.FileState) float64 { return (p.at[to] - p.at[from]).Seconds() }
	return d(client.FileChunking, client.FileRegistering), d(client.FileRegistering, client.FileUploaded), d(client.FileUploaded, client.FileAccepted)
}

// timing is one timed operation: its wall time, the CPU seconds of whoever
// did it (the command's process, or this one for the library) and those
// the devnet spent meanwhile.
type timing struct {
	seconds, cpu, others float64
}

// buildSatchel builds the binary of this tree into dir.
func buildSatchel(b *testing.B, dir string) string {
	b.Helper()
	bin := filepath.Join(dir, "satchel")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// devnet is a `satchel devnet` process.
type devnet struct {
	cmd *exec.Cmd
	bag string
}

// cpu returns the CPU seconds the devnet process has used.
func (d *devnet) cpu() float64 { return procCPU(d.cmd.Process.Pid) }

// startDevnet starts `satchel devnet` with one provider in home, on free
// ports, and waits until it is running; cleanup stops it with SIGINT.
func startDevnet(b *testing.B, bin, home, profDir string) *devnet {
	b.Helper()
	cmd := exec.Command(bin, "devnet", "--home", home, "--providers", "1", "--rpc", benchFreeAddr(b),
		"--status-port", "0", "--distributor-port", "0", "--json")
	cmd.Env = os.Environ()
	if profDir != "" {
		cmd.Env = append(cmd.Env, cpuProfileEnv+"="+filepath.Join(profDir, "devnet.cpu"))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	ready := make(chan devnetInfo, 1)
	go func() {
		var info devnetInfo
		if err := json.NewDecoder(stdout).Decode(&info); err == nil {
			ready <- info
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	select {
	case info := <-ready:
		return &devnet{cmd: cmd, bag: info.Bag}
	case <-time.After(devnetStartTimeout):
		b.Fatalf("satchel devnet did not start within %v:\n%s", devnetStartTimeout, stderr.String())
	}
	return nil
}

// runCLI runs the binary with args, returning its standard output and its
// run. With profDir set the command writes a CPU profile there named
// after what.
func runCLI(b *testing.B, bin string, dn *devnet, profDir, what string, args ...string) ([]byte, timing) {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	if profDir != "" {
		cmd.Env = append(cmd.Env, cpuProfileEnv+"="+filepath.Join(profDir, "cli-"+what+".cpu"))
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	dn0 := dn.cpu()
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("satchel %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	r := timing{seconds: time.Since(start).Seconds(), others: dn.cpu() - dn0}
	r.cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return stdout.Bytes(), r
}

// timeLib times fn, a library call in this process.
func timeLib(dn *devnet, fn func(ctx context.Context) error) timing {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dn0, cpu0 := dn.cpu(), benchutil.CPUSeconds()
	start := time.Now()
	if err := fn(ctx); err != nil {
		panic(fmt.Sprintf("library: %v", err)) // b is not at hand; a bench failing here is broken
	}
	return timing{seconds: time.Since(start).Seconds(), cpu: benchutil.CPUSeconds() - cpu0, others: dn.cpu() - dn0}
}

// libClient is a client of the devnet as the CLI makes one, in this
// process.
func libClient(b *testing.B, cfg Config, state string) *client.Client {
	b.Helper()
	key, err := chain.LoadKey(cfg.Key)
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	c, err := client.New(client.Config{ChainRPC: cfg.Chain.RPC, ChainTrust: chainTrust(cfg), Key: key, StateDir: state},
		client.WithLogger(quiet), client.WithHostOptions(p2p.WithBootstrapAddrs(cfg.P2P.Bootstrap...), p2p.WithLogger(quiet)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// medianRawStream is the median throughput, in bytes per second, of three
// copies of n bytes over one plain libp2p stream between two loopback
// hosts set up like the nodes (TCP, TLS, yamux).
func medianRawStream(b *testing.B, n int64) float64 {
	b.Helper()
	src, dst := benchutil.Hosts(b)
	data := make([]byte, n)
	if err := src.Connect(context.Background(), dst.AddrInfo()); err != nil {
		b.Fatal(err)
	}
	benchutil.RawCopy(b, src.Libp2p(), dst.ID(), data[:min(n, 32<<20)]) // warm
	rates := make([]float64, 3)
	for i := range rates {
		rates[i] = float64(n) / benchutil.RawCopy(b, src.Libp2p(), dst.ID(), data).Seconds()
	}
	slices.Sort(rates)
	return rates[1]
}

func checkSize(b *testing.B, path string, size int64) {
	b.Helper()
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != size {
		b.Fatalf("satchel get wrote %v (%v); want %d bytes", fi, err, size)
	}
}

// procCPU returns the user and system CPU seconds of process pid so far
// (0 where /proc is not available).
func procCPU(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	rest := string(raw[bytes.LastIndexByte(raw, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux a Go program runs on.
const clockTicks = 100

func benchFreeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	return strings.Join(f[:min(3, len(f))], " ")
}
