package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// refusedBeforeFetch runs a get to path and wants it refused with an error
// containing want before anything is fetched.
func refusedBeforeFetch(t *testing.T, path, want string) {
	t.Helper()
	called := false
	_, _, err := writeOutput(path, false, 0, func(w io.Writer) (int64, error) { called = true; return 0, nil })
	if err == nil || called || !strings.Contains(err.Error(), want) {
		t.Fatalf("-o %s: fill called %v, %v; want refused before any fetch, saying %q", path, called, err, want)
	}
}

// As root, a link another user planted in a sticky world-writable
// directory (/tmp) is not followed, as the kernel's fs.protected_symlinks
// does not follow it: to an existing root file, dangling into a directory
// of root's, or through a directory part. A link root owns there, or the
// directory's owner owns, is followed.
func TestGetOutputPlantedLinkInStickyDirRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to plant another user's link")
	}
	const nobody, owner = 65534, 1000
	base := t.TempDir()
	tmp, etc := filepath.Join(base, "tmp"), filepath.Join(base, "etc")
	must(t, os.Mkdir(tmp, 0o777))
	must(t, os.Chmod(tmp, 0o777|os.ModeSticky))
	must(t, os.Mkdir(etc, 0o755))
	must(t, os.Mkdir(filepath.Join(etc, "cron.d"), 0o755))
	victim := filepath.Join(etc, "passwd")
	must(t, os.WriteFile(victim, []byte("root:x:0:0\n"), 0o644))
	plant := func(name, target string, uid int) string {
		p := filepath.Join(tmp, name)
		must(t, os.Symlink(target, p))
		must(t, os.Lchown(p, uid, uid))
		return p
	}
	refusedBeforeFetch(t, plant("out", victim, nobody), "fs.protected_symlinks")
	refusedBeforeFetch(t, plant("dangling", filepath.Join(etc, "cron.d", "x"), nobody), "fs.protected_symlinks")
	refusedBeforeFetch(t, filepath.Join(plant("d", etc, nobody), "passwd"), "fs.protected_symlinks")
	wantFile(t, victim, "root:x:0:0\n")
	onlyEntry(t, filepath.Join(etc, "cron.d"))

	mine := plant("mine", filepath.Join(etc, "mine"), 0)
	if _, _, err := writeOutput(mine, false, 0, fillWith([]byte("object\n"))); err != nil {
		t.Fatalf("-o root's own link: %v", err)
	}
	wantFile(t, filepath.Join(etc, "mine"), "object\n")
	must(t, os.Chown(tmp, owner, owner))
	dirOwners := plant("owners", filepath.Join(etc, "owners"), owner)
	if _, _, err := writeOutput(dirOwners, false, 0, fillWith([]byte("object\n"))); err != nil {
		t.Fatalf("-o a link of the directory's owner: %v", err)
	}
	wantFile(t, filepath.Join(etc, "owners"), "object\n")
	// Not sticky: followed whoever owns the link, as the kernel does.
	must(t, os.Chmod(tmp, 0o777))
	if _, _, err := writeOutput(filepath.Join(tmp, "out"), false, 0, fillWith([]byte("object\n"))); err != nil {
		t.Fatalf("-o another user's link in a non-sticky directory: %v", err)
	}
	wantFile(t, victim, "object\n")
}

// Through a symbolic link, a device, FIFO or socket is refused before
// anything is fetched (a planted link must not turn a get into a write to
// a disk); named itself, a FIFO is written (TestGetToFIFOWritesStraight).
func TestGetOutputDeviceThroughLinkRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	must(t, syscall.Mkfifo(fifo, 0o600))
	for target, kind := range map[string]string{fifo: "FIFO", "/dev/null": "character device"} {
		link := filepath.Join(dir, "to-"+filepath.Base(target))
		must(t, os.Symlink(target, link))
		refusedBeforeFetch(t, link, "a "+kind)
	}
	// A link to a descriptor path is the user's shell's: written through.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	link := filepath.Join(dir, "to-fd")
	must(t, os.Symlink(fmt.Sprintf("/dev/fd/%d", w.Fd()), link))
	if _, direct, err := writeOutput(link, false, 0, fillWith([]byte("object\n"))); err != nil || !direct {
		t.Fatalf("-o a link to /dev/fd/N: direct %v, %v", direct, err)
	}
	got := make([]byte, len("object\n"))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "object\n" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// A dangling link whose target passes ".." through a directory that does
// not exist leads nowhere, as the kernel's lookup says (ENOENT): nothing
// is written, in particular not the file a lexical clean would name.
func TestGetOutputDanglingLinkDotDotThroughMissingDir(t *testing.T) {
	d := t.TempDir()
	sub := filepath.Join(d, "sub")
	must(t, os.Mkdir(sub, 0o755))
	link := filepath.Join(sub, "out")
	must(t, os.Symlink("missing/../../victim", link))
	if f, err := os.OpenFile(link, os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
		f.Close()
		t.Fatal("the kernel followed it")
	}
	refusedBeforeFetch(t, link, "directory "+filepath.Join(sub, "missing")+" does not exist")
	onlyEntry(t, d, "sub")
	onlyEntry(t, sub, "out")
}

// The output is resolved, and a named descriptor duplicated, when it is
// opened: closing the original afterwards (as satchel's client could then
// reuse the number for a socket) does not change where the bytes go.
func TestGetOutputDescriptorTakenAtOpen(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o, err := openOutput(fmt.Sprintf("/dev/fd/%d", w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	n, direct, err := o.write(false, 0, fillWith([]byte("object\n")))
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != 7 || !direct {
		t.Fatalf("write = %d, direct %v, %v", n, direct, err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "object\n" {
		t.Fatalf("the pipe got %q, %v", got, err)
	}
}

// `satchel get -o /dev/fd/N` with no descriptor N open fails on the output
// before the config is read or the client opened (which opens descriptors
// of its own, one of which could be N).
func TestGetResolvesOutputBeforeClient(t *testing.T) {
	fd := 900
	for ; fd < 1000; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			break
		}
	}
	var out, errb bytes.Buffer
	root := newRootCmd(&App{Out: &out, Err: &errb})
	missing := filepath.Join(t.TempDir(), "missing.yml")
	root.SetArgs([]string{"-c", missing, "get", "12", "--bag", "dynamic:channel:1", "-o", fmt.Sprintf("/dev/fd/%d", fd)})
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("descriptor %d is not open", fd)) {
		t.Fatalf("get -o /dev/fd/%d (not open), config %s missing: %v; want the descriptor refused first", fd, missing, err)
	}
}
