//go:build !linux

package blockstore

// oDirect is zero where direct I/O is not used: files go through the page
// cache.
const oDirect = 0
