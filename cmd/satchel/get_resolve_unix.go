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
)

// outputDest is where `satchel get -o` writes: a path with every symbolic
// link resolved (its last part may not exist yet), or a descriptor of this
// process (fd ≥ 0) when the path names one, such as /dev/stderr or
// /dev/fd/3.
type outputDest struct {
	path string
	fd   int
}

// maxLinks is how many symbolic links resolveOutput follows, as Linux does.
const maxLinks = 40

// resolveOutput resolves path one part at a time, following symbolic links,
// and stops at /dev/fd/N or /proc/PID/fd/N: those are magic links to the
// file a descriptor is open on, which must be written through the
// descriptor (at its offset, with its O_APPEND) and never replaced — a
// shell's `2>>app.log` would otherwise lose app.log. A dangling link
// resolves to its target, which is then written.
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
	for links := 0; rest != ""; {
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
			return outputDest{path: filepath.Join(next, rest), fd: -1}, nil
		}
		if err != nil {
			return outputDest{}, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
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
		rest = target + "/" + rest
	}
	return outputDest{path: resolved, fd: -1}, nil
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
