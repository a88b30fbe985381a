package topics

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestCriteria(t *testing.T) {
	got := Criteria()
	want := []Criterion{Size, Duration, Availability, Speed}
	names := []string{"size", "duration", "availability", "speed"}
	if len(got) != len(want) {
		t.Fatalf("Criteria() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] || got[i].String() != names[i] || !got[i].Valid() {
			t.Errorf("Criteria()[%d] = %v (%d), want %s (%d)", i, got[i], got[i], names[i], want[i])
		}
	}
	got[0] = Speed
	if Criteria()[0] != Size {
		t.Error("changing the slice Criteria returned changed the encoding order")
	}
	if Criterion(0).Valid() || Criterion(5).String() != "Criterion(5)" {
		t.Errorf("Criterion(0).Valid() = true or Criterion(5) = %q", Criterion(5))
	}
}

func TestDescriptor(t *testing.T) {
	tests := []struct {
		d    Descriptor
		op   byte
		name string
	}{
		{Low, 0x01, "low"},
		{Medium, 0x02, "medium"},
		{High, 0x03, "high"},
	}
	for _, tt := range tests {
		if byte(tt.d) != tt.op || tt.d.String() != tt.name || !tt.d.Valid() {
			t.Errorf("%v: opcode %#x, name %q, valid %v; want %#x %q", tt.d, byte(tt.d), tt.d.String(), tt.d.Valid(), tt.op, tt.name)
		}
	}
	for _, d := range []Descriptor{0, 4, 0xff} {
		if d.Valid() {
			t.Errorf("Descriptor(%#x).Valid() = true", byte(d))
		}
		if _, err := d.MarshalText(); !errors.Is(err, ErrDescriptor) {
			t.Errorf("Descriptor(%#x).MarshalText() error = %v, want ErrDescriptor", byte(d), err)
		}
	}
	if got := Descriptor(4).String(); got != "Descriptor(0x04)" {
		t.Errorf("Descriptor(4).String() = %q", got)
	}
}

func TestParseDescriptor(t *testing.T) {
	good := map[string]Descriptor{
		"low": Low, "Medium": Medium, "HIGH": High,
		"1": Low, "2": Medium, "3": High,
		"0x01": Low, "0x2": Medium, "0X03": High, "01": Low,
	}
	for s, want := range good {
		if got, err := ParseDescriptor(s); err != nil || got != want {
			t.Errorf("ParseDescriptor(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "0", "4", "0x00", "0x04", "-1", "lo", "highest", "256", " low"} {
		if got, err := ParseDescriptor(s); !errors.Is(err, ErrDescriptor) {
			t.Errorf("ParseDescriptor(%q) = %v, %v; want ErrDescriptor", s, got, err)
		}
	}
	_, err := ParseDescriptor("4")
	if want := `descriptor "4": want low (0x01), medium (0x02) or high (0x03)`; err.Error() != want {
		t.Errorf("ParseDescriptor(4) error = %s, want %s", err, want)
	}

	var v struct{ D Descriptor }
	if err := json.Unmarshal([]byte(`{"D":"medium"}`), &v); err != nil || v.D != Medium {
		t.Errorf("json.Unmarshal medium = %v, %v", v.D, err)
	}
	if b, err := json.Marshal(v); err != nil || string(b) != `{"D":"medium"}` {
		t.Errorf("json.Marshal = %s, %v", b, err)
	}
}

// TestRange pins the seed's table, cell by cell.
func TestRange(t *testing.T) {
	want := map[Criterion][3]string{
		Size:         {"0-8 MB", "8-16 MB", "16-32 MB"},
		Duration:     {"0-30 days", "30-90 days", "90-270 days"},
		Availability: {"0-50%", "50-80%", "80-99%"},
		Speed:        {"0-6 Mbps", "6-12 Mbps", "12-32 Mbps"},
	}
	for c, row := range want {
		for i, d := range []Descriptor{Low, Medium, High} {
			if got := d.Range(c).String(); got != row[i] {
				t.Errorf("%v.Range(%v) = %q, want %q", d, c, got, row[i])
			}
		}
	}
	if got := Medium.Range(Size); got != (Range{Min: 8, Max: 16, Unit: "MB"}) {
		t.Errorf("Medium.Range(Size) = %+v", got)
	}
	for _, r := range []Range{Descriptor(0).Range(Size), Descriptor(4).Range(Speed), Low.Range(0), High.Range(5)} {
		if r != (Range{}) || r.String() != "" {
			t.Errorf("invalid range = %+v %q, want zero", r, r)
		}
	}
}
