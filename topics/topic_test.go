package topics

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		topic Topic
		hex   string
		bytes []byte
	}{
		{New(Low, Medium, High, High), "0f01020303", []byte{0x0f, 0x01, 0x02, 0x03, 0x03}},
		{New(High, High, Low, Low), "0f03030101", []byte{0x0f, 0x03, 0x03, 0x01, 0x01}},
		{New(Low, Low, Low, Low), "0f01010101", []byte{0x0f, 0x01, 0x01, 0x01, 0x01}},
		{Topic{PrefixContract, Medium, Low, High, Medium}, "0f02010302", []byte{0x0f, 0x02, 0x01, 0x03, 0x02}},
	}
	for _, tt := range tests {
		if got := tt.topic.String(); got != tt.hex {
			t.Errorf("%+v.String() = %q, want %q", tt.topic, got, tt.hex)
		}
		if got := tt.topic.Bytes(); !bytes.Equal(got, tt.bytes) {
			t.Errorf("%+v.Bytes() = %x, want %x", tt.topic, got, tt.bytes)
		}
		if got, err := Parse(tt.hex); err != nil || got != tt.topic {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.hex, got, err, tt.topic)
		}
		if got, err := Parse(strings.ToUpper(tt.hex)); err != nil || got != tt.topic {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", strings.ToUpper(tt.hex), got, err, tt.topic)
		}
		if got, err := FromBytes(tt.bytes); err != nil || got != tt.topic {
			t.Errorf("FromBytes(%x) = %+v, %v; want %+v", tt.bytes, got, err, tt.topic)
		}
		if err := tt.topic.Validate(); err != nil {
			t.Errorf("%+v.Validate() = %v", tt.topic, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		kind error
		msg  string
	}{
		{"", ErrLength, `topic "": length 0, want 10 hex digits`},
		{"0f0102030", ErrLength, `topic "0f0102030": odd length 9, want 10 hex digits`},
		{"0f010203", ErrLength, `topic "0f010203": length 8, want 10 hex digits`},
		{"0f0102030303", ErrLength, `topic "0f0102030303": length 12, want 10 hex digits`},
		{"0x0f010203", ErrHex, `topic "0x0f010203": "x" at offset 1 is not a hex digit`},
		{"0f01020303 ", ErrHex, `topic "0f01020303 ": " " at offset 10 is not a hex digit`},
		{"0f0102030g", ErrHex, `topic "0f0102030g": "g" at offset 9 is not a hex digit`},
		{"0f0102é303", ErrHex, `topic "0f0102é303": "é" at offset 6 is not a hex digit`},
		{"0f\xff1020303", ErrHex, `topic "0f\xff1020303": "\xff" at offset 2 is not a hex digit`},
		{"0e01020303", ErrPrefix, `topic "0e01020303": unknown prefix 0x0e at byte 0, want contract (0x0f)`},
		{"0001020303", ErrPrefix, `topic "0001020303": unknown prefix 0x00 at byte 0, want contract (0x0f)`},
		{"0f00020303", ErrDescriptor, `topic "0f00020303": size descriptor 0x00 at byte 1, want low (0x01), medium (0x02) or high (0x03)`},
		{"0f01040303", ErrDescriptor, `topic "0f01040303": duration descriptor 0x04 at byte 2, want low (0x01), medium (0x02) or high (0x03)`},
		{"0f010200ff", ErrDescriptor, `topic "0f010200ff": availability descriptor 0x00 at byte 3, want low (0x01), medium (0x02) or high (0x03)`},
		{"0f010203FF", ErrDescriptor, `topic "0f010203FF": speed descriptor 0xff at byte 4, want low (0x01), medium (0x02) or high (0x03)`},
		{strings.Repeat("0f", 100), ErrLength, `topic "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f...": length 200, want 10 hex digits`},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if !errors.Is(err, tt.kind) {
			t.Errorf("Parse(%q) error = %v, want %v", tt.in, err, tt.kind)
			continue
		}
		if err.Error() != tt.msg {
			t.Errorf("Parse(%q) error\n got %s\nwant %s", tt.in, err, tt.msg)
		}
		if got != (Topic{}) {
			t.Errorf("Parse(%q) = %+v with an error, want the zero Topic", tt.in, got)
		}
	}
}

func TestFromBytesErrors(t *testing.T) {
	tests := []struct {
		in   []byte
		kind error
		msg  string
	}{
		{nil, ErrLength, "topic 0x: length 0 bytes, want 5"},
		{[]byte{0x0f, 1, 2, 3}, ErrLength, "topic 0x0f010203: length 4 bytes, want 5"},
		{[]byte{0x0f, 1, 2, 3, 3, 3}, ErrLength, "topic 0x0f0102030303: length 6 bytes, want 5"},
		{[]byte{0xff, 1, 2, 3, 3}, ErrPrefix, "topic 0xff01020303: unknown prefix 0xff at byte 0, want contract (0x0f)"},
		{[]byte{0x0f, 1, 2, 3, 0}, ErrDescriptor, "topic 0x0f01020300: speed descriptor 0x00 at byte 4, want low (0x01), medium (0x02) or high (0x03)"},
	}
	for _, tt := range tests {
		_, err := FromBytes(tt.in)
		if !errors.Is(err, tt.kind) {
			t.Errorf("FromBytes(%x) error = %v, want %v", tt.in, err, tt.kind)
			continue
		}
		if err.Error() != tt.msg {
			t.Errorf("FromBytes(%x) error\n got %s\nwant %s", tt.in, err, tt.msg)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		topic Topic
		kind  error
	}{
		{Topic{}, ErrPrefix},
		{Topic{Prefix: PrefixContract}, ErrDescriptor},
		{New(Low, Low, Low, 0), ErrDescriptor},
		{New(Low, Low, Low, High+1), ErrDescriptor},
		{Topic{0x10, Low, Low, Low, Low}, ErrPrefix},
	}
	for _, tt := range tests {
		if err := tt.topic.Validate(); !errors.Is(err, tt.kind) {
			t.Errorf("%+v.Validate() = %v, want %v", tt.topic, err, tt.kind)
		}
		if _, err := tt.topic.MarshalText(); !errors.Is(err, tt.kind) {
			t.Errorf("%+v.MarshalText() error = %v, want %v", tt.topic, err, tt.kind)
		}
	}
}

func TestTopicJSON(t *testing.T) {
	type doc struct {
		Topic Topic `json:"topic"`
	}
	b, err := json.Marshal(doc{New(Low, Medium, High, High)})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"topic":"0f01020303"}` {
		t.Errorf("json.Marshal = %s", b)
	}
	var d doc
	if err := json.Unmarshal([]byte(`{"topic":"0F03030101"}`), &d); err != nil {
		t.Fatal(err)
	}
	if want := New(High, High, Low, Low); d.Topic != want {
		t.Errorf("json.Unmarshal = %+v, want %+v", d.Topic, want)
	}
	if err := json.Unmarshal([]byte(`{"topic":"0f03030100"}`), &d); !errors.Is(err, ErrDescriptor) {
		t.Errorf("json.Unmarshal of a bad topic: error = %v, want ErrDescriptor", err)
	}
	if _, err := json.Marshal(doc{}); !errors.Is(err, ErrPrefix) {
		t.Errorf("json.Marshal of the zero topic: error = %v, want ErrPrefix", err)
	}
}

func TestPrefix(t *testing.T) {
	if !PrefixContract.Known() || PrefixContract.String() != "contract" {
		t.Errorf("PrefixContract: Known() = %v, String() = %q", PrefixContract.Known(), PrefixContract)
	}
	if Prefix(0x0e).Known() || Prefix(0x0e).String() != "Prefix(0x0e)" {
		t.Errorf("Prefix(0x0e): Known() = %v, String() = %q", Prefix(0x0e).Known(), Prefix(0x0e))
	}
	for _, s := range []string{"contract", "CONTRACT", "0x0f", "0x0F", "15"} {
		if p, err := ParsePrefix(s); err != nil || p != PrefixContract {
			t.Errorf("ParsePrefix(%q) = %v, %v; want contract", s, p, err)
		}
	}
	for _, s := range []string{"", "contracts", "0x0e", "0x100", "-1"} {
		_, err := ParsePrefix(s)
		if !errors.Is(err, ErrPrefix) {
			t.Errorf("ParsePrefix(%q) error = %v, want ErrPrefix", s, err)
		}
	}
	_, err := ParsePrefix("storage")
	if want := `prefix "storage": want one of contract (0x0f)`; err == nil || err.Error() != want {
		t.Errorf("ParsePrefix(storage) error = %v, want %s", err, want)
	}
}

func TestTopicDescriptor(t *testing.T) {
	tp := Topic{PrefixContract, Low, Medium, High, Low}
	want := map[Criterion]Descriptor{Size: Low, Duration: Medium, Availability: High, Speed: Low, 0: 0, Speed + 1: 0}
	for c, d := range want {
		if got := tp.Descriptor(c); got != d {
			t.Errorf("Descriptor(%v) = %v, want %v", c, got, d)
		}
	}
	// The byte a criterion's descriptor sits at is the criterion's value.
	b := tp.Bytes()
	for _, c := range Criteria() {
		if Descriptor(b[c]) != tp.Descriptor(c) {
			t.Errorf("byte %d = %#x, want %v's descriptor %v", c, b[c], c, tp.Descriptor(c))
		}
	}
}

// TestPrefixReserved checks that the audit prefix is reserved: named, not
// usable, and refused with a message that says why, while contract topics
// and their messages are unchanged.
func TestPrefixReserved(t *testing.T) {
	if PrefixAudit.Known() || !PrefixAudit.Reserved() || PrefixAudit.String() != "audit" {
		t.Errorf("PrefixAudit: Known() = %v, Reserved() = %v, String() = %q; want false, true, audit",
			PrefixAudit.Known(), PrefixAudit.Reserved(), PrefixAudit)
	}
	if PrefixContract.Reserved() || Prefix(0x0e).Reserved() {
		t.Error("contract or unknown prefix reported as reserved")
	}
	_, err := Parse("0a01020303")
	want := `topic "0a01020303": prefix 0x0a at byte 0 is reserved for audit publications and has no topic format yet; want contract (0x0f)`
	if !errors.Is(err, ErrPrefix) || err == nil || err.Error() != want {
		t.Errorf("Parse(0a01020303) error = %v, want %s", err, want)
	}
	if _, err := FromBytes([]byte{0x0a, 1, 1, 1, 1}); !errors.Is(err, ErrPrefix) {
		t.Errorf("FromBytes(0a...) error = %v, want ErrPrefix", err)
	}
	for _, s := range []string{"audit", "AUDIT", "0x0a", "10"} {
		_, err := ParsePrefix(s)
		if !errors.Is(err, ErrPrefix) || !strings.Contains(err.Error(), "reserved for audit") {
			t.Errorf("ParsePrefix(%q) error = %v, want ErrPrefix naming the reservation", s, err)
		}
	}
	if err := (Topic{PrefixAudit, Low, Low, Low, Low}).Validate(); !errors.Is(err, ErrPrefix) {
		t.Errorf("Validate of an audit topic: %v, want ErrPrefix", err)
	}
	if tp, err := Parse("0f01020303"); err != nil || tp != New(Low, Medium, High, High) {
		t.Errorf("Parse(0f01020303) = %v, %v", tp, err)
	}
}
