package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// appendLog makes a file holding "precious log\n" and opens it for
// appending, as a shell's `3>>app.log` does.
func appendLog(t *testing.T) (string, *os.File) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(log, []byte("precious log\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return log, f
}

func wantFile(t *testing.T, path, want string) {
	t.Helper()
	if got, err := os.ReadFile(path); err != nil || string(got) != want {
		t.Fatalf("%s holds %q (%v), want %q", path, got, err, want)
	}
}

// A path naming a descriptor of this process — /dev/fd/N, /proc/self/fd/N,
// a link to one — is written through the descriptor at its offset (here
// appended), never replaced by a renamed file.
func TestGetOutputDescriptorWrittenThrough(t *testing.T) {
	for _, alias := range []string{"/dev/fd/%d", "/proc/self/fd/%d", "/proc/thread-self/fd/%d", "link", "/dev/../dev/fd/%d"} {
		log, f := appendLog(t)
		path := fmt.Sprintf(alias, f.Fd())
		if alias == "link" {
			path = filepath.Join(t.TempDir(), "out")
			if err := os.Symlink(fmt.Sprintf("/dev/fd/%d", f.Fd()), path); err != nil {
				t.Fatal(err)
			}
		}
		n, direct, err := writeOutput(path, false, 0, fillWith([]byte("object\n")))
		if err != nil || n != 7 || !direct {
			t.Fatalf("-o %s: %d bytes, direct %v, %v", path, n, direct, err)
		}
		wantFile(t, log, "precious log\nobject\n")
		if alias == "link" {
			if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("%s after the get: %v, %v; want the link kept", path, fi, err)
			}
		}
	}
}

// -o /dev/stderr with `2>>app.log` appends to app.log.
func TestGetOutputDevStderrWrittenThrough(t *testing.T) {
	log, f := appendLog(t)
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(saved)
	if err := syscall.Dup3(int(f.Fd()), 2, 0); err != nil {
		t.Fatal(err)
	}
	_, direct, werr := writeOutput("/dev/stderr", false, 0, fillWith([]byte("object\n")))
	_ = syscall.Dup3(saved, 2, 0)
	if werr != nil || !direct {
		t.Fatalf("-o /dev/stderr: direct %v, %v", direct, werr)
	}
	wantFile(t, log, "precious log\nobject\n")
}

// A descriptor that is not open, or another process's, is refused before
// anything is fetched; stdout's names are told as stdout's.
func TestGetOutputDescriptorRefused(t *testing.T) {
	fd, err := syscall.Dup(0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd) // now a descriptor number that is not open
	for path, want := range map[string]string{
		fmt.Sprintf("/dev/fd/%d", fd): "is not open",
		"/proc/1/fd/1":                "of another process",
		"/dev/fd/2/x":                 "nothing can be under it",
	} {
		called := false
		_, _, err := writeOutput(path, false, 0, func(w io.Writer) (int64, error) { called = true; return 0, nil })
		if err == nil || called || !strings.Contains(err.Error(), want) {
			t.Fatalf("-o %s: fill called %v, %v; want an error saying it %s", path, called, err, want)
		}
	}
	link := filepath.Join(t.TempDir(), "mine")
	if err := os.Symlink("/dev/stdout", link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", link} {
		if !namesStdout(p) {
			t.Errorf("namesStdout(%s) = false", p)
		}
	}
	if namesStdout("/dev/stderr") || namesStdout(filepath.Join(t.TempDir(), "1")) || namesStdout("/dev/fd/1/..") {
		t.Error("namesStdout true for a path that is not stdout")
	}
}

// Through a dangling link, the link's target is written (in its own
// directory) and the link kept.
func TestGetOutputDanglingLinkWritesTarget(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "current")
	if err := os.Symlink("data/v2.bin", link); err != nil {
		t.Fatal(err)
	}
	if _, direct, err := writeOutput(link, false, 0, fillWith([]byte("object\n"))); err != nil || direct {
		t.Fatalf("-o %s: direct %v, %v", link, direct, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s after the get: %v, %v; want the link kept", link, fi, err)
	}
	wantFile(t, filepath.Join(dir, "data", "v2.bin"), "object\n")
	onlyEntry(t, filepath.Join(dir, "data"), "v2.bin")
}

// A file with another hard link is written in place: both names see the
// new bytes. The object is fetched into a temporary file first, so a get
// failing after its first byte leaves the file as it was.
func TestGetOutputHardLinkWrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("old bytes, longer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	// A get failing before its first byte leaves it as it was.
	failed := errors.New("no provider")
	if _, _, err := writeOutput(a, false, 0, func(io.Writer) (int64, error) { return 0, failed }); !errors.Is(err, failed) {
		t.Fatalf("-o %s, failing: %v", a, err)
	}
	wantFile(t, b, "old bytes, longer\n")
	if _, direct, err := writeOutput(a, false, 0, func(w io.Writer) (int64, error) {
		n, _ := w.Write([]byte("first leaf"))
		return int64(n), failed
	}); !errors.Is(err, failed) || direct {
		t.Fatalf("-o %s, failing after its first byte: direct %v, %v", a, direct, err)
	}
	wantFile(t, a, "old bytes, longer\n")
	if _, direct, err := writeOutput(a, false, 0, fillWith([]byte("object\n"))); err != nil || direct {
		t.Fatalf("-o %s: direct %v, %v; want staged, then copied in", a, direct, err)
	}
	wantFile(t, b, "object\n")
	if fa, fb := mustStat(t, a), mustStat(t, b); !os.SameFile(fa, fb) {
		t.Fatalf("%s and %s are no longer one file", a, b)
	}
	onlyEntry(t, dir, "a", "b")
}

// A bind-mounted file (as in a container) is written in place, decided
// before anything is fetched, rather than failing the rename with EBUSY.
func TestGetOutputMountPointWrittenInPlace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount")
	}
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "host.bin"), filepath.Join(dir, "out.bin")
	for _, p := range []string{src, dst} {
		if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mount", "--bind", src, dst).CombinedOutput(); err != nil {
		t.Skipf("bind mount: %v %s", err, out)
	}
	defer exec.Command("umount", dst).Run()
	failed := errors.New("no provider")
	if _, _, err := writeOutput(dst, false, 0, func(w io.Writer) (int64, error) {
		n, _ := w.Write([]byte("first leaf"))
		return int64(n), failed
	}); !errors.Is(err, failed) {
		t.Fatalf("-o on a bind-mounted file, failing: %v", err)
	}
	wantFile(t, src, "old\n")
	if _, direct, err := writeOutput(dst, false, 0, fillWith([]byte("object\n"))); err != nil || direct {
		t.Fatalf("-o on a bind-mounted file: direct %v, %v; want staged, then copied in", direct, err)
	}
	wantFile(t, src, "object\n")
}

// Replacing a file keeps its owner, group and whole mode (set-id and
// sticky bits too).
func TestGetOutputKeepsOwnerAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	p := filepath.Join(t.TempDir(), "site.bin")
	if err := os.WriteFile(p, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o754) | os.ModeSetuid | os.ModeSetgid | os.ModeSticky
	if err := os.Chown(p, 1000, 1001); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if _, direct, err := writeOutput(p, false, 0, fillWith([]byte("object\n"))); err != nil || direct {
		t.Fatalf("-o %s: direct %v, %v; want it replaced", p, direct, err)
	}
	wantFile(t, p, "object\n")
	fi, _ := os.Stat(p)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 1000 || st.Gid != 1001 || fi.Mode() != mode {
		t.Fatalf("%s is %d:%d %v after the get, want 1000:1001 %v", p, st.Uid, st.Gid, fi.Mode(), mode)
	}
}

// A get's temporary file (.FILE.<digits>.satchel.part) that no get holds
// the lock of and that has not been written for staleAge (left by a get
// killed outright) is removed by the next get to the same FILE. One a live
// get holds (here a descriptor holding its lock), one written lately (a
// get on another host of a network file system whose lock is not seen
// here), and every file not named exactly like a get's — a user's own
// .out.bin.notes.part, an older satchel's .out.bin.444.part — are left.
func TestGetOutputRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.bin")
	at := func(name string) string { return filepath.Join(dir, name) }
	stale, live := at(".out.bin.111.satchel.part"), at(".out.bin.222.satchel.part")
	recent := at(".out.bin.555.satchel.part")
	others := []string{at(".other.bin.333.satchel.part"), at(".out.bin.444.part"), at(".out.bin.notes.part"),
		at(".out.bin.notes.satchel.part"), at(".out.bin.1x2.satchel.part"), at(".out.bin..satchel.part"), at(".out.bin.666.satchel.partial")}
	old := time.Now().Add(-staleAge - time.Minute)
	for _, p := range append([]string{stale, live, recent}, others...) {
		must(t, os.WriteFile(p, []byte("partial"), 0o600))
		if p != recent {
			must(t, os.Chtimes(p, old, old))
		}
	}
	holder, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := unix.Flock(int(holder.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	var during []string
	if _, _, err := writeOutput(out, false, 0, func(w io.Writer) (int64, error) {
		// The get's own temporary file is locked while it is written.
		during, _ = filepath.Glob(filepath.Join(dir, ".out.bin.*"+tempSuffix))
		for _, p := range during {
			if p == live || p == recent || slices.Contains(others, p) {
				continue
			}
			f, err := os.Open(p)
			if err != nil {
				return 0, err
			}
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			f.Close()
			if err == nil {
				return 0, fmt.Errorf("%s, being written, is not locked", p)
			}
		}
		return fillWith([]byte("object\n"))(w)
	}); err != nil {
		t.Fatal(err)
	}
	if len(during) != 6 { // live, recent, notes, 1x2, "", and the get's own
		t.Fatalf("temporary files while writing: %v", during)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale %s: %v; want it removed", stale, err)
	}
	for _, p := range append([]string{live, recent}, others...) {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v; want it left", p, err)
		}
	}
	wantFile(t, out, "object\n")
}

// As a user who is not root: a FILE this user may not write (0444) is
// refused before anything is fetched, as curl -o refuses it, though its
// directory would let a rename replace it; a writable FILE in a directory
// this user cannot write is written in place. As root, the test runs
// itself again as nobody (65534).
func TestGetOutputUnprivileged(t *testing.T) {
	if dir := os.Getenv("SATCHEL_TEST_UNPRIV_DIR"); dir != "" {
		unprivilegedOutput(t, dir)
		return
	}
	if os.Geteuid() != 0 {
		t.Setenv("TMPDIR", t.TempDir())
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "w"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"w/ro", "rw"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte("old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		must(t, os.Chmod(filepath.Join(dir, "w/ro"), 0o444))
		must(t, os.Chmod(dir, 0o555))
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		unprivilegedOutput(t, dir)
		return
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "getunpriv")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	must(t, os.Chmod(dir, 0o755)) // root's, so nobody cannot write it
	must(t, os.Mkdir(filepath.Join(dir, "w"), 0o755))
	must(t, os.Chown(filepath.Join(dir, "w"), nobody, nobody))
	must(t, os.Mkdir(filepath.Join(dir, "tmp"), 0o700))
	must(t, os.Chown(filepath.Join(dir, "tmp"), nobody, nobody))
	for name, mode := range map[string]os.FileMode{"w/ro": 0o444, "rw": 0o644} {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte("old\n"), mode))
		must(t, os.Chmod(p, mode))
		must(t, os.Chown(p, nobody, nobody))
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "test.bin")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(bin, data, 0o755))
	cmd := exec.Command(bin, "-test.run=^TestGetOutputUnprivileged$", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SATCHEL_TEST_UNPRIV_DIR="+dir, "TMPDIR="+filepath.Join(dir, "tmp"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func unprivilegedOutput(t *testing.T, dir string) {
	called := false
	ro := filepath.Join(dir, "w", "ro")
	_, _, err := writeOutput(ro, false, 0, func(w io.Writer) (int64, error) { called = true; return 0, nil })
	if err == nil || called || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("-o a 0444 file: fill called %v, %v; want permission denied before any fetch", called, err)
	}
	wantFile(t, ro, "old\n")
	rw := filepath.Join(dir, "rw")
	// Staged in the temporary directory, the file's own being read-only.
	var staged []string
	failed := errors.New("no provider")
	if _, _, err := writeOutput(rw, false, 0, func(w io.Writer) (int64, error) {
		staged, _ = filepath.Glob(filepath.Join(os.TempDir(), ".rw.*"+tempSuffix))
		n, _ := w.Write([]byte("first leaf"))
		return int64(n), failed
	}); !errors.Is(err, failed) || len(staged) != 1 {
		t.Fatalf("-o a writable file in a read-only directory, failing: staged in %v, %v", staged, err)
	}
	wantFile(t, rw, "old\n")
	if _, direct, err := writeOutput(rw, false, 0, fillWith([]byte("object\n"))); err != nil || direct {
		t.Fatalf("-o a writable file in a read-only directory: direct %v, %v; want staged, then copied in", direct, err)
	}
	wantFile(t, rw, "object\n")
	if left, _ := filepath.Glob(filepath.Join(os.TempDir(), ".rw.*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A get killed outright (SIGKILL) while it writes leaves its temporary
// file; while it lives, another get to the same FILE leaves that file
// alone; once it is dead, the next get removes it.
func TestGetOutputKilledGetCleanedUp(t *testing.T) {
	if out := os.Getenv("SATCHEL_TEST_KILLED_OUT"); out != "" {
		_, _, err := writeOutput(out, false, 0, func(w io.Writer) (int64, error) {
			if _, err := w.Write([]byte("partial")); err != nil {
				return 0, err
			}
			fmt.Println("writing")
			select {} // until killed
		})
		t.Fatalf("writeOutput returned: %v", err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.bin")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestGetOutputKilledGetCleanedUp$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SATCHEL_TEST_KILLED_OUT="+out)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line := make([]byte, len("writing\n"))
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "writing\n" {
		t.Fatalf("the writing get said %q, %v", line, err)
	}
	temps := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, ".out.bin.*"+tempSuffix))
		return m
	}
	left := temps()
	if len(left) != 1 {
		t.Fatalf("temporary files of the live get: %v", left)
	}
	// A get to the same FILE while the first lives: its file is kept.
	if _, _, err := writeOutput(out, false, 0, fillWith([]byte("first\n"))); err != nil {
		t.Fatal(err)
	}
	if got := temps(); len(got) != 1 || got[0] != left[0] {
		t.Fatalf("temporary files after a get beside a live one: %v, want %v kept", got, left)
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	if got := temps(); len(got) != 1 {
		t.Fatalf("temporary files after the kill: %v, want the killed get's left", got)
	}
	// Written lately, it is left (it could be a live get's on another host).
	if _, _, err := writeOutput(out, false, 0, fillWith([]byte("second\n"))); err != nil {
		t.Fatal(err)
	}
	if got := temps(); len(got) != 1 {
		t.Fatalf("temporary files after a get just after the kill: %v, want the killed get's left", got)
	}
	old := time.Now().Add(-staleAge - time.Minute)
	must(t, os.Chtimes(left[0], old, old))
	if _, _, err := writeOutput(out, false, 0, fillWith([]byte("second\n"))); err != nil {
		t.Fatal(err)
	}
	if got := temps(); len(got) != 0 {
		t.Fatalf("temporary files after the next get: %v, want the killed get's removed", got)
	}
	wantFile(t, out, "second\n")
}
