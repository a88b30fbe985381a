package topics

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors returned by Parse, FromBytes, Validate, the Parse* helpers and the
// Classify functions. The messages a caller sees name the input and the fault;
// test for the kind with errors.Is.
var (
	// ErrLength means the topic has the wrong number of bytes or hex digits.
	ErrLength = errors.New("topics: wrong topic length")
	// ErrHex means the topic string holds something other than hex digits.
	ErrHex = errors.New("topics: topic is not hex")
	// ErrPrefix means the publication prefix is not a known one.
	ErrPrefix = errors.New("topics: unknown publication prefix")
	// ErrDescriptor means a criterion's opcode is not Low, Medium or High.
	ErrDescriptor = errors.New("topics: invalid descriptor")
	// ErrRequirement means a concrete requirement cannot be classified:
	// negative, not a number, or an availability above 100%.
	ErrRequirement = errors.New("topics: invalid requirement")
)

// topicError carries a complete message and still matches its sentinel with
// errors.Is, so the text need not repeat the sentinel's words.
type topicError struct {
	msg  string
	kind error
}

func (e *topicError) Error() string { return e.msg }
func (e *topicError) Unwrap() error { return e.kind }

// Prefix is the first byte of a topic: the namespace of its publication type.
type Prefix uint8

// Publication types. The prefix is a namespace: every publication type gets
// its own byte, so subscribers of one type never see another's messages.
const (
	// PrefixContract is the prefix of a storage contract publication: a
	// signed proposal published on the topic of its requirements.
	PrefixContract Prefix = 0x0f
)

// PrefixAudit (audit.go) is the prefix of audit result publications: signed
// outcomes of /satchel/audit/1.0.0 challenges, published on the one topic
// AuditTopic. It carries no requirement descriptors, so it is not Known to
// the contract topic format: Parse and ParsePrefix reject it with ErrPrefix
// and a message that names it. No other type may take the byte.

// prefixes is the set of publication types. The seed defines only
// contracts; another type is one constant above and one entry here, and
// Parse, ParsePrefix and String learn it from this table. A reserved entry
// has a name but no topic format yet. A slice rather than a map keeps error
// messages in a stable order.
var prefixes = []struct {
	p        Prefix
	name     string
	reserved bool
}{
	{PrefixContract, "contract", false},
	{PrefixAudit, "audit", true},
}

// Known reports whether p is a publication type with a topic format this
// package can encode and parse. A reserved prefix is not Known.
func (p Prefix) Known() bool {
	for _, k := range prefixes {
		if k.p == p {
			return !k.reserved
		}
	}
	return false
}

// Reserved reports whether p is set aside for a publication type whose topic
// format is not defined yet, such as PrefixAudit.
func (p Prefix) Reserved() bool {
	for _, k := range prefixes {
		if k.p == p {
			return k.reserved
		}
	}
	return false
}

// reservedNote returns, for a reserved prefix, a clause saying what it is
// kept for; otherwise "".
func reservedNote(p Prefix) string {
	if !p.Reserved() {
		return ""
	}
	return fmt.Sprintf(" is reserved for %s publications and has no topic format yet;", p)
}

// String returns the publication type's name, such as "contract" or
// "audit".
func (p Prefix) String() string {
	for _, k := range prefixes {
		if k.p == p {
			return k.name
		}
	}
	return fmt.Sprintf("Prefix(0x%02x)", uint8(p))
}

// knownPrefixes lists the known prefixes for error messages: "contract (0x0f)".
// Reserved prefixes are left out: they cannot be used yet.
func knownPrefixes() string {
	var s []string
	for _, k := range prefixes {
		if !k.reserved {
			s = append(s, fmt.Sprintf("%s (0x%02x)", k.name, uint8(k.p)))
		}
	}
	return strings.Join(s, ", ")
}

// ParsePrefix reads a known prefix by name ("contract", in any case) or as a
// Go integer literal ("0x0f", "15"). The error wraps ErrPrefix.
func ParsePrefix(s string) (Prefix, error) {
	var p Prefix
	found := false
	for _, k := range prefixes {
		if strings.EqualFold(s, k.name) {
			p, found = k.p, true
		}
	}
	if n, err := strconv.ParseUint(s, 0, 8); !found && err == nil {
		p, found = Prefix(n), true
	}
	if found && p.Known() {
		return p, nil
	}
	if found && p.Reserved() {
		return 0, &topicError{fmt.Sprintf("prefix %q (0x%02x)%s want one of %s", s, uint8(p), reservedNote(p), knownPrefixes()), ErrPrefix}
	}
	return 0, &topicError{fmt.Sprintf("prefix %q: want one of %s", s, knownPrefixes()), ErrPrefix}
}

// Encoded sizes of a topic.
const (
	// Len is the length of a topic in bytes: the prefix and four descriptors.
	Len = 5
	// HexLen is the length of a topic string in hex digits.
	HexLen = 2 * Len
)

// Topic is a contract topic: the publication prefix and the descriptor of
// each criterion, encoded as prefix|size|duration|availability|speed. Topics
// are comparable, so they can be map keys.
type Topic struct {
	Prefix       Prefix
	Size         Descriptor
	Duration     Descriptor
	Availability Descriptor
	Speed        Descriptor
}

// New returns the contract topic for the four descriptors, in the order the
// seed encodes them.
func New(size, duration, availability, speed Descriptor) Topic {
	return Topic{PrefixContract, size, duration, availability, speed}
}

// Descriptor returns t's descriptor for c, or 0 if c is not a criterion.
func (t Topic) Descriptor(c Criterion) Descriptor {
	switch c {
	case Size:
		return t.Size
	case Duration:
		return t.Duration
	case Availability:
		return t.Availability
	case Speed:
		return t.Speed
	}
	return 0
}

// Bytes returns the opcode sequence, such as [0x0f 0x01 0x02 0x03 0x03].
func (t Topic) Bytes() []byte {
	return []byte{byte(t.Prefix), byte(t.Size), byte(t.Duration), byte(t.Availability), byte(t.Speed)}
}

// String returns the topic as nodes publish and subscribe to it: the opcodes
// in lower-case hex, such as "0f01020303". It does not validate t; an invalid
// topic prints as its bytes and fails to Parse.
func (t Topic) String() string { return hex.EncodeToString(t.Bytes()) }

// Validate reports whether t has a known prefix and a valid descriptor for
// every criterion. The error wraps ErrPrefix or ErrDescriptor.
func (t Topic) Validate() error { return t.validate(strconv.Quote(t.String())) }

// validate checks t; name is how messages refer to the input.
func (t Topic) validate(name string) error {
	if t.Prefix.Reserved() {
		return &topicError{fmt.Sprintf("topic %s: prefix 0x%02x at byte 0%s want %s",
			name, uint8(t.Prefix), reservedNote(t.Prefix), knownPrefixes()), ErrPrefix}
	}
	if !t.Prefix.Known() {
		return &topicError{fmt.Sprintf("topic %s: unknown prefix 0x%02x at byte 0, want %s",
			name, uint8(t.Prefix), knownPrefixes()), ErrPrefix}
	}
	for _, c := range criteria {
		if d := t.Descriptor(c); !d.Valid() {
			return &topicError{fmt.Sprintf("topic %s: %s descriptor 0x%02x at byte %d, %s",
				name, c, uint8(d), uint8(c), wantDescriptor), ErrDescriptor}
		}
	}
	return nil
}

// MarshalText encodes t as its hex string, refusing an invalid topic so a bad
// one never reaches the wire or a JSON document.
func (t Topic) MarshalText() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return []byte(t.String()), nil
}

// UnmarshalText decodes a topic string as Parse does.
func (t *Topic) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Parse decodes a topic string such as "0f01020303". Upper-case hex digits are
// accepted, since hex is case-blind and peers may send either; String always
// gives lower case. Nothing else is: no "0x", no spaces.
//
// The error names the input and the fault, and wraps ErrHex, ErrLength,
// ErrPrefix or ErrDescriptor, checked in that order.
func Parse(s string) (Topic, error) {
	// Characters first: "0x0f01020303" is better told about its "x" than its length.
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			_, n := utf8.DecodeRuneInString(s[i:])
			return Topic{}, &topicError{fmt.Sprintf("topic %s: %q at offset %d is not a hex digit",
				quote(s), s[i:i+n], i), ErrHex}
		}
	}
	if len(s) != HexLen {
		odd := ""
		if len(s)%2 == 1 {
			odd = "odd "
		}
		return Topic{}, &topicError{fmt.Sprintf("topic %s: %slength %d, want %d hex digits",
			quote(s), odd, len(s), HexLen), ErrLength}
	}
	var b [Len]byte
	for i := range b {
		b[i] = unhex(s[2*i])<<4 | unhex(s[2*i+1])
	}
	return decode(b, quote(s))
}

// FromBytes decodes a topic from its opcode sequence. The error wraps
// ErrLength, ErrPrefix or ErrDescriptor.
func FromBytes(b []byte) (Topic, error) {
	if len(b) != Len {
		return Topic{}, &topicError{fmt.Sprintf("topic 0x%s: length %d bytes, want %d",
			truncate(hex.EncodeToString(b)), len(b), Len), ErrLength}
	}
	return decode([Len]byte(b), "0x"+hex.EncodeToString(b))
}

func decode(b [Len]byte, name string) (Topic, error) {
	t := Topic{Prefix(b[0]), Descriptor(b[1]), Descriptor(b[2]), Descriptor(b[3]), Descriptor(b[4])}
	if err := t.validate(name); err != nil {
		return Topic{}, err
	}
	return t, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex returns the value of a digit isHex accepted.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// maxQuoted bounds how much of a bad input an error repeats: topics arrive
// from the network, and a megabyte of junk should not become a log line.
const maxQuoted = 32

func quote(s string) string { return strconv.Quote(truncate(s)) }

func truncate(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}
