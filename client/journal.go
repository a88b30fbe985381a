package client

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/chain"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
)

// The journal persists what an upload has achieved, so an interrupted upload
// run again picks up where it stopped: the object it registered on chain,
// every verified receipt it collected, and which providers bound the object.
//
// An upload is keyed by its content, not by a path: the bag, the root CID and
// the chunk size (a different chunk size is a different DAG). Re-hashing a
// file on resume costs a fraction of the upload and proves the file did not
// change since; a key by path and mtime would miss a file that was copied and
// could be fooled by an edit within the same mtime.
//
// Layout (goleveldb, one database per state directory):
//
//	u/<bag>/<root>/<chunkSize>                      → uploadRecord (JSON)
//	r/<bag>/<root>/<chunkSize>/<index u32 BE><peer> → storepb.Receipt (protobuf)
//	b/<bag>/<root>/<chunkSize>/<peer>               → bind time (RFC 3339)
//
// A receipt is written as soon as it is verified, so a crash loses at most
// the chunks in flight; the providers answer those "already stored" on the
// next run, without their bytes being sent again.
type journal struct {
	db *leveldb.DB
	mu sync.Mutex // serialises record read-modify-write
}

// uploadKey names one upload in the journal.
type uploadKey struct {
	Bag       chain.BagID
	Root      cid.Cid
	ChunkSize int
}

func (k uploadKey) base() string {
	return k.Bag.String() + "/" + k.Root.String() + "/" + strconv.Itoa(k.ChunkSize)
}

func (k uploadKey) recordKey() []byte { return []byte("u/" + k.base()) }
func (k uploadKey) receiptPrefix() []byte {
	return []byte("r/" + k.base() + "/")
}
func (k uploadKey) bindPrefix() []byte { return []byte("b/" + k.base() + "/") }

func (k uploadKey) receiptKey(index int, p peer.ID) []byte {
	b := k.receiptPrefix()
	b = binary.BigEndian.AppendUint32(b, uint32(index))
	return append(b, p...)
}

// uploadRecord is the journal's record of one upload.
type uploadRecord struct {
	// Object is the registered object; valid when Registered.
	Object     chain.ObjectID `json:"object"`
	Registered bool           `json:"registered"`
	Size       int64          `json:"size"`
	Chunks     int            `json:"chunks"`
	Created    time.Time      `json:"created"`
}

// openJournal opens the journal in dir, or an in-memory one when dir is "".
func openJournal(dir string) (*journal, error) {
	var (
		db  *leveldb.DB
		err error
	)
	o := &opt.Options{BlockCacheCapacity: 1 << 20, WriteBuffer: 1 << 20}
	if dir == "" {
		db, err = leveldb.Open(storage.NewMemStorage(), o)
	} else {
		if err = os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("client: upload state directory: %w", err)
		}
		db, err = leveldb.OpenFile(dir, o)
		if lerrors.IsCorrupted(err) {
			db, err = leveldb.RecoverFile(dir, o)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("client: open upload state in %q (another process may be using it; one upload state directory serves one client at a time): %w", dir, err)
	}
	return &journal{db: db}, nil
}

func (j *journal) close() error { return j.db.Close() }

// record returns the upload's record, ok false when there is none.
func (j *journal) record(k uploadKey) (uploadRecord, bool, error) {
	var r uploadRecord
	b, err := j.db.Get(k.recordKey(), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("client: read upload state: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("client: decode upload state: %w", err)
	}
	return r, true, nil
}

// putRecord writes the upload's record durably.
func (j *journal) putRecord(k uploadKey, r uploadRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := j.db.Put(k.recordKey(), b, &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("client: write upload state: %w", err)
	}
	return nil
}

// addReceipt stores a verified receipt for chunk index from provider p.
// Receipts are not synced one by one (that would cost an fsync per chunk);
// leveldb's log makes them durable against a process crash, and the
// providers answer "already stored" for any lost to a power failure.
func (j *journal) addReceipt(k uploadKey, index int, p peer.ID, r *storepb.Receipt) error {
	b, err := proto.Marshal(r)
	if err != nil {
		return err
	}
	if err := j.db.Put(k.receiptKey(index, p), b, nil); err != nil {
		return fmt.Errorf("client: write receipt: %w", err)
	}
	return nil
}

// receipts calls fn with every stored receipt of the upload.
func (j *journal) receipts(k uploadKey, fn func(index int, p peer.ID, r *storepb.Receipt) error) error {
	prefix := k.receiptPrefix()
	it := j.db.NewIterator(util.BytesPrefix(prefix), nil)
	defer it.Release()
	for it.Next() {
		key := it.Key()[len(prefix):]
		if len(key) < 5 {
			continue
		}
		index := int(binary.BigEndian.Uint32(key[:4]))
		p, err := peer.IDFromBytes(key[4:])
		if err != nil {
			continue
		}
		r := new(storepb.Receipt)
		if err := proto.Unmarshal(it.Value(), r); err != nil {
			continue
		}
		if err := fn(index, p, r); err != nil {
			return err
		}
	}
	return it.Error()
}

// markBound records that provider p bound the object.
func (j *journal) markBound(k uploadKey, p peer.ID) error {
	key := append(k.bindPrefix(), p...)
	return j.db.Put(key, []byte(time.Now().UTC().Format(time.RFC3339)), nil)
}

// bound returns the providers that bound the object.
func (j *journal) bound(k uploadKey) (map[peer.ID]bool, error) {
	prefix := k.bindPrefix()
	it := j.db.NewIterator(util.BytesPrefix(prefix), nil)
	defer it.Release()
	out := map[peer.ID]bool{}
	for it.Next() {
		if p, err := peer.IDFromBytes(it.Key()[len(prefix):]); err == nil {
			out[p] = true
		}
	}
	return out, it.Error()
}

// forgetProgress drops the upload's receipts and binds, keeping the record:
// they were for an object that no longer exists on chain.
func (j *journal) forgetProgress(k uploadKey) error {
	b := new(leveldb.Batch)
	for _, prefix := range [][]byte{k.receiptPrefix(), k.bindPrefix()} {
		it := j.db.NewIterator(util.BytesPrefix(prefix), nil)
		for it.Next() {
			b.Delete(append([]byte(nil), it.Key()...))
		}
		it.Release()
		if err := it.Error(); err != nil {
			return err
		}
	}
	return j.db.Write(b, &opt.WriteOptions{Sync: true})
}

// forget drops everything about the upload: it is complete.
func (j *journal) forget(k uploadKey) error {
	if err := j.forgetProgress(k); err != nil {
		return err
	}
	return j.db.Delete(k.recordKey(), &opt.WriteOptions{Sync: true})
}
