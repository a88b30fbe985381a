package store

import (
	"testing"
	"time"
)

// capExpiry gives a streamed session's chunk at most its grant's end,
// truncated to the second the block store keeps (never rounded past the
// grant), and leaves an earlier expiry, or one with no grant bound, alone.
func TestCapExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	week, grant := now.Add(MaxSessionTTL), now.Add(time.Hour+300*time.Millisecond)
	for _, tc := range []struct {
		name         string
		asked, until time.Time
		want         time.Time
	}{
		{"a week under an hour's grant", week, grant, now.Add(time.Hour)},
		{"a minute under an hour's grant", now.Add(time.Minute), grant, now.Add(time.Minute)},
		{"no bound", week, time.Time{}, week},
	} {
		ex := &storeExchange{expiry: tc.asked, session: Session{Expiry: tc.asked}}
		capExpiry(ex, tc.until)
		if !ex.expiry.Equal(tc.want) || !ex.session.Expiry.Equal(tc.want) {
			t.Errorf("%s: expiry %v, session %v; want %v", tc.name, ex.expiry, ex.session.Expiry, tc.want)
		}
		if !tc.until.IsZero() && ex.session.Expiry.After(tc.until) {
			t.Errorf("%s: session expiry %v after the grant's end %v", tc.name, ex.session.Expiry, tc.until)
		}
	}
}
