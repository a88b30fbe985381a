//go:build !unix

package main

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

func dupDescriptor(path string, _ int) (*os.File, error) {
	return nil, errors.New("cannot write " + path + ": descriptors are not named by path here")
}

// dirWritable leaves the check to creating the file.
func dirWritable(string) bool { return true }

// checkWritable leaves the check to opening the file.
func checkWritable(string) error { return nil }

// inPlaceReason: a file is always replaced here.
func inPlaceReason(string, fs.FileInfo) string { return "" }

var errOwnerNotKept = errors.New("cannot keep the file's owner")

// keepOwner: owners are not kept here.
func keepOwner(*os.File, fs.FileInfo) error { return nil }

// lockTemp: no locks here; stale temporary files are left.
func lockTemp(*os.File) error { return nil }

// removeStale removes nothing where a live get's file cannot be told apart.
func removeStale(string, time.Time) {}
