//go:build unix

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// outputDest is where `satchel get -o` writes: a path with every symbolic
// link resolved (its last part may not exist yet), or a descriptor of this
// process (fd ≥ 0) when the path names one, such as /dev/stderr or
// /dev/fd/3.
type outputDest struct {
	path   string
	fd     int
	linked bool // path is the target of a symbolic link named in its stead
}

// maxLinks is how many symbolic links resolveOutput follows, as Linux does.
const maxLinks = 40

// resolveOutput resolves path one part at a time, following symbolic links,
// and stops at /dev/fd/N or /proc/PID/fd/N: those are magic links to the
// file a descriptor is open on, which must be written through the
// descriptor (at its offset, with its O_APPEND) and never replaced — a
// shell's `2>>app.log` would otherwise lose app.log. A dangling link
// resolves to its target, which is then written.
//
// As the kernel's lookup does, it fails on a missing directory (even one
// a ".." would leave again) and refuses a link the kernel would not follow
// under fs.protected_symlinks (followable).
func resolveOutput(path string) (outputDest, error) {
	rest := path
	resolved := "/"
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return outputDest{}, err
		}
		resolved = wd
	}
	links, linked := 0, false
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, "/")
		switch part {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, part)
		if fd, ok, err := descriptorPath(next); ok || err != nil {
			if err == nil && !lastPart(rest) {
				// Followed, it could lead to a file to replace.
				err = fmt.Errorf("%s names a descriptor: nothing can be under it", next)
			}
			return outputDest{fd: fd, path: next}, err
		}
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			if !lastPart(rest) {
				return outputDest{}, missingDir(next, rest, links)
			}
			return outputDest{path: next, fd: -1, linked: linked}, nil
		}
		if err != nil {
			return outputDest{}, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if err := followable(next, fi, resolved); err != nil {
			return outputDest{}, err
		}
		if links++; links > maxLinks {
			return outputDest{}, fmt.Errorf("more than %d symbolic links to follow", maxLinks)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return outputDest{}, err
		}
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		// The last part is a link (a directory's, as /tmp's on macOS, is not
		// what checkLinked asks about).
		linked = linked || lastPart(rest)
		rest = target + "/" + rest
	}
	return outputDest{path: resolved, fd: -1, linked: linked}, nil
}

// followable applies the kernel's fs.protected_symlinks rule to the link
// at path (fi) in dir: in a sticky world-writable directory (/tmp) a link
// is followed only if this user or the directory's owner owns it, so
// another user's link planted there cannot turn root's get into a write to
// /etc/passwd. Reading links itself, resolveOutput would otherwise bypass
// the kernel's check.
func followable(path string, fi fs.FileInfo, dir string) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	var d unix.Stat_t
	if err := unix.Stat(dir, &d); err != nil {
		return err
	}
	if d.Mode&(unix.S_ISVTX|unix.S_IWOTH) != unix.S_ISVTX|unix.S_IWOTH {
		return nil
	}
	if euid := uint32(os.Geteuid()); st.Uid == euid || st.Uid == d.Uid {
		return nil
	}
	return fmt.Errorf("%s is a symbolic link of user %d in %s, a shared directory (sticky, world-writable) of user %d: not followed, as the kernel does not follow it (fs.protected_symlinks); remove it or name the file you mean", path, st.Uid, dir, d.Uid)
}

// missingDir is the error for a missing directory next with rest of the
// path still to resolve. It is not joined with rest as text: a ".." does
// not leave a missing directory, the lookup fails in it. Named as typed
// (no link, no ".."), the output's whole missing directory is named.
func missingDir(next, rest string, links int) error {
	missing := next
	if links == 0 && !strings.Contains("/"+rest+"/", "/../") {
		missing = filepath.Dir(filepath.Join(next, rest))
	}
	return fmt.Errorf("directory %s does not exist; create it first (mkdir -p %s)", missing, missing)
}

// lastPart reports whether rest, what is left of a path, names nothing
// more ("", "/", "./.").
func lastPart(rest string) bool {
	for _, p := range strings.Split(rest, "/") {
		if p != "" && p != "." {
			return false
		}
	}
	return true
}

// descriptorPath reports whether p (resolved) names a descriptor: /dev/fd/N,
// or /proc/PID/fd/N and /proc/PID/task/TID/fd/N of this process. Another
// process's descriptor is refused: its offset cannot be shared.
func descriptorPath(p string) (fd int, ok bool, err error) {
	dir, name := filepath.Split(p)
	n, err := strconv.Atoi(name)
	if err != nil || n < 0 {
		return -1, false, nil
	}
	dir = filepath.Clean(dir)
	if dir == "/dev/fd" {
		return n, true, nil
	}
	parts := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	if len(parts) < 3 || parts[0] != "proc" || parts[len(parts)-1] != "fd" {
		return -1, false, nil
	}
	if !(len(parts) == 3 || len(parts) == 5 && parts[2] == "task") {
		return -1, false, nil
	}
	switch parts[1] {
	case "self", "thread-self", strconv.Itoa(os.Getpid()):
		return n, true, nil
	}
	if _, err := strconv.Atoi(parts[1]); err != nil {
		return -1, false, nil
	}
	return -1, true, fmt.Errorf("it names descriptor %d of another process (%s); name the file itself", n, parts[1])
}
