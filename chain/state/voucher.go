package state

import (
	"fmt"
	"strings"

	"github.com/satchel-net/satchel/chain"
)

// voucherRoom checks that a storage bucket's voucher has room for objects
// more objects of size more bytes, each limit on its own, and names the
// limit that was hit: a bucket whose size limit is used up is full by size,
// whatever its object count. A limit lowered below the current use leaves
// the bucket full by that limit only.
func voucherRoom(bag chain.BagID, id chain.StorageBucketID, v chain.Voucher, objects, size uint64) error {
	byObjects := objects > 0 && (v.ObjectsUsed+objects < v.ObjectsUsed || v.ObjectsUsed+objects > v.ObjectsLimit)
	bySize := size > 0 && (v.SizeUsed+size < v.SizeUsed || v.SizeUsed+size > v.SizeLimit)
	var hit, why, limits []string
	if byObjects {
		hit = append(hit, "objects")
		why = append(why, fmt.Sprintf("%d of %d objects used, %d more asked", v.ObjectsUsed, v.ObjectsLimit, objects))
		limits = append(limits, "objects limit")
	}
	if bySize {
		hit = append(hit, "size")
		why = append(why, fmt.Sprintf("%s of %s used, %s more asked", sizeText(v.SizeUsed), sizeText(v.SizeLimit), sizeText(size)))
		limits = append(limits, "size limit")
	}
	if len(hit) == 0 {
		return nil
	}
	return chain.Errorf(chain.ErrBucketFull, "bag %s: storage bucket %d is full by %s (%s); ask the storage lead to raise its %s",
		bag, id, strings.Join(hit, " and by "), strings.Join(why, "; "), strings.Join(limits, " and "))
}

// sizeText writes a byte count with one decimal in the largest binary unit
// that keeps it at least 1: "70 B", "1.0 KiB", "50.0 MiB".
func sizeText(n uint64) string {
	const k = 1024
	if n < k {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n)/k, 0
	for i < len(units)-1 && v >= k-0.05 {
		v /= k
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
