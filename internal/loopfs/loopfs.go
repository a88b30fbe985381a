//go:build linux

// Package loopfs mounts small, real file systems for tests that need a
// disk which really fills and which no other process writes.
package loopfs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Ext4 mounts an ext4 file system of size bytes (an image on a loop
// device) on a temporary directory and returns it. It skips the test
// where that cannot be done: it takes root, mkfs.ext4, losetup and a free
// loop device; why says what the test needs the disk for. The file system
// is unmounted, the loop device detached and the image deleted when the
// test ends, however far the set-up got.
func Ext4(t testing.TB, size int64, why string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip(why + " needs a small ext4 on a loop device, which only root can mount")
	}
	img := filepath.Join(t.TempDir(), "fs.img") // deleted by TempDir's cleanup
	f, err := os.Create(img)
	if err == nil {
		err = errors.Join(f.Truncate(size), f.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", img).CombinedOutput(); err != nil {
		t.Skipf("cannot make an ext4 image (%v: %s)", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("cannot attach the ext4 image to a loop device (%v: %s)", err, out)
	}
	dev := strings.TrimSpace(string(out))
	// Registered after TempDir, so it runs before the image is deleted.
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	dir := t.TempDir()
	if out, err := exec.Command("mount", dev, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount an ext4 image on a loop device (%v: %s)", err, out)
	}
	// Runs first: a mounted device cannot be detached.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
