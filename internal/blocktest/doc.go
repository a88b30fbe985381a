// Package blocktest damages blocks where a provider's block store keeps
// them on disk, for tests of what finds and repairs damage (scrub, audits,
// fetch, quarantine). It finds the bytes with Store.Locate, so tests need
// not know whether a block lives in a pack record or a legacy block file.
//
//	blocktest.Overwrite(t, store, c, func(b []byte) { b[0] ^= 1 })
package blocktest
