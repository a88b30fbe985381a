// Package blockstore keeps a storage provider's blocks — chunk bytes and the
// interior dag-pb nodes of data objects — in append-only pack files on disk,
// with goleveldb as the index only (block → size and place, object →
// manifest, bag → objects, object and upload-session references to blocks,
// the quarantine, which packs are sealed). goleveldb writes 1 MiB values at
// a few tens of MB/s; a pack takes them at disk speed, so no block byte ever
// goes into the index.
//
// Layout of a store directory:
//
//	packs/<n>.pack         the blocks, in records; n is 8 digits, counting up
//	blocks/<shard>/<cid>   one file per block, from stores written before packs
//	tmp/                   temp files of such stores (emptied on Open)
//	quarantine/<cid>       the bytes of corrupt blocks, set aside
//	index/                 goleveldb
//	CLEAN                  present only while the store is closed cleanly
//	packs/UNPUNCHED        present once a deleted block's bytes were left in its pack
//
// A pack is a run of records, each starting 4 KiB-aligned: a 4 KiB header
// (magic, format version, the CID, the size, a CRC-32C of the data and one
// of the header) and then the block's bytes padded to 4 KiB, written in one
// pwrite from one aligned buffer, with direct I/O where the file system
// allows it (see fileio.go), so a block's data is aligned for direct reads
// too. Writers reserve their record's place under a short lock and write
// outside it; the pack is rotated at 1 GiB. With direct I/O the pack being
// written is allocated (fallocate) up to 64 MiB ahead of its records, so
// concurrent writes go to the device together rather than one at a time as
// file-extending writes do (packalloc.go), never into the last
// max(64 MiB, 1 %) of the file system's free space, and no record is
// written into its last 64 MiB, kept for the index (headroom.go: a Put
// there fails with ENOSPC; an index that ran out of space anyway is mended
// once the space is back, indexmend.go); Close and rotation cut
// the allocated tail off, and after a crash the scan cuts it off as a torn
// tail. Records are
// staged for their write on huge pages where the system gives them
// (staging.go). A block's index entry names its
// pack and offset. Stores written before packs keep their block files: an
// entry without a place is a file blocks/<shard>/<cid>, read, ranged,
// quarantined, deleted and recovered as before, so no migration is needed;
// new blocks always go to packs.
//
// Why packs rather than a file per block: on these machines' ext4 creating
// a file costs ~0.8 ms (its openat skips recently freed inodes), and each
// block also took an fsync, a rename and a directory fsync. Measured with
// BenchmarkPut (4 writers, 1 MiB blocks, both layouts run alternately, load
// 1.9-4.9 on 2 shared cores), file per block stored 338-403 MB/s plain and
// 335-414 in a session at 1.9-2.4 CPU s/GiB, 0.49-0.67 of the raw disk
// (530-770 MB/s: the same bytes in one file, fdatasynced once, measured in
// the same run); packs 399-488 and 426-474 MB/s at 1.3-1.6 CPU s/GiB,
// 0.63-0.78 of it; with 16 writers in a session, file per block 460 MB/s
// (0.73), packs 532-533 (0.72-0.88). What is left is mostly the two
// flushes each Put waits for (the pack's, ~2.5 ms here, and the index's,
// ~1.5 ms), which more concurrent writers share.
// What a pack gives up is the unlink of a deleted block: its space is
// punched out of the pack instead (below).
//
// A Put verifies the bytes against the CID, appends the record and waits
// for an fdatasync of the pack (one covers every write finished before it
// started, so concurrent writers share it), and only then writes the index
// entry, synced: an indexed block is always whole on disk, and a block is
// held, durably, when Put returns. A new pack's name is made durable
// (packs/ fsynced) before any record in it is acknowledged. Every index
// write that adds a block or a reference (Put, session references,
// manifests) and every deletion is synced, and Close ends with a synced
// write before it leaves the CLEAN marker. A Put that loses a race with
// another Put of the same CID punches its own record out at once.
//
// A pack rotated out is marked sealed in the index once every write to it
// has finished (each indexed or punched out); Close seals the rest. A pack
// that took a record whose index write failed is never sealed, and Close
// then leaves the CLEAN marker out, so the next Open scans it. Open
// after an unclean shutdown scans only the packs not sealed: it skips the
// records the index names, reads the headers of the space between them,
// indexes a record the index lacks if its bytes verify against its CID (a
// crash between the pack's sync and the index write; held in a recovery
// session for RecoveredTTL unless an object claims it), punches out torn
// and garbage records and cuts off a torn tail. It drops index entries that
// point to a missing pack or past a pack's end (and scans such a pack too),
// and reconciles legacy block files as before. Open seals the packs there
// are; a pack in which the index names no live record is read first
// (scanDeadPacks: a record that verifies is indexed, kept after a clean
// stop) and unlinked only if nothing in it verifies — unless a freed record
// was ever left unpunched (packs/UNPUNCHED: a file system without holes, or
// a punch that failed), when such a pack may hold deleted blocks and is
// unlinked unread outside a reindex; the first write after
// it starts a new pack. Every Open drops index entries naming a pack that is
// not on disk (or space past its end, or not a record's start), and
// numbers new packs past every pack an entry or seal names. Open lists the
// packs once and walks the block index once, whatever it reconciles: the
// counts, each pack's live records, the entries to drop and the extents of
// the packs to scan come from the same pass. A store whose
// index/ (or its CURRENT) is missing while packs or block files are there
// has its index rebuilt from every record and file that verifies (kept,
// not put in the recovery session); so has one whose index goleveldb would
// open having silently lost entries (a journal chunk that fails its
// checksum other than in a torn tail, a damaged manifest: see
// indexcheck.go), marked REINDEX until done. Before changing anything, Open
// checks packs/ is the store's (identity.go) and refuses with
// ErrWrongPacks if not.
//
// The blocks one deletion frees go in one synced index write; then their
// records are punched out of their packs (fallocate PUNCH_HOLE, KEEP_SIZE:
// the range reads as zeros and takes no space), and a pack with no live
// record left that is not being written to is unlinked. Only the index
// write holds Puts back: a record is punched after its header is read back
// and found to name the block freed (a stale entry must not punch another
// block), and those reads run after the deletion lets Puts in again. Where punching
// holes is not supported (other systems than Linux, or a file system
// answering EOPNOTSUPP) a deleted block's space comes back only when its
// whole pack is dead; packs are not compacted.
//
// Every Get verifies the bytes again against the CID (the scrub and audits
// read through it); a block that no longer matches is quarantined (its bytes
// copied to quarantine/<cid>, its record punched out) and reported with
// ErrCorrupt so the node can fetch it again from a peer. Serving reads
// (GetFast, what the fetch protocol reads) check a CRC-32C kept in each
// block's index entry instead, which finds what disks do to bytes for a few
// percent of the hash's CPU: the receiver verifies the CID anyway. A block
// stored before the index kept CRCs is hashed on its first serving read and
// gets its CRC then; one failing the CRC is hashed, and quarantined when
// that fails too (see checksum.go). Locate tells where a block's bytes are,
// for operators and tests.
//
// Blocks are shared between objects (content addressing): DeleteObject only
// deletes the blocks no other object or open upload session references.
// Upload sessions hold the chunks of uploads whose object is not bound yet
// and expire on their own (ExpireSessions; ExpireSessionsWithin brings
// forward the expiry of sessions an object made redundant). Session adds
// are acknowledged once durable, their index writes grouped into one fsync
// (see commit.go). The recovery session is not one of them: an object that
// claims a recovered block takes it over, so the block goes when the object
// goes.
//
//	bs, err := blockstore.Open(filepath.Join(dataDir, "blocks"))
//	...
//	defer bs.Close()
//	err = bs.Put(c, data)          // durable when it returns
//	data, err := bs.Get(c)         // verified against c
//	data, err = bs.GetFast(c)      // checked against its CRC-32C, for serving
package blockstore
