package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// runTopic runs satchel with args and returns stdout, stderr and the exit code.
func runTopic(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestTopicEncode(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--size", "low", "--duration", "medium", "--availability", "high", "--speed", "high"}, "0f01020303\n"},
		{[]string{"--size", "3", "--duration", "0x03", "--availability", "1", "--speed", "0x01"}, "0f03030101\n"},
		{[]string{"--size=HIGH", "--duration=High", "--availability=2", "--speed=low", "--prefix=contract"}, "0f03030201\n"},
		{[]string{"--size", "1", "--duration", "1", "--availability", "1", "--speed", "1", "--prefix", "0x0f"}, "0f01010101\n"},
	}
	for _, tt := range tests {
		out, errOut, code := runTopic(t, append([]string{"topic", "encode"}, tt.args...)...)
		if code != 0 || out != tt.want {
			t.Errorf("encode %v: exit %d, stdout %q, stderr %q; want %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

func TestTopicEncodeErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{nil, "missing --size, --duration, --availability, --speed; give each criterion a descriptor: low, medium or high"},
		{[]string{"--size", "low", "--duration", "low", "--availability", "low"}, "missing --speed;"},
		{[]string{"--size", "4", "--duration", "low", "--availability", "low", "--speed", "low"},
			`invalid argument "4" for "--size" flag: descriptor "4": want low (0x01), medium (0x02) or high (0x03)`},
		{[]string{"--size", "0x00", "--duration", "low", "--availability", "low", "--speed", "low"}, `descriptor "0x00"`},
		{[]string{"--size", "low", "--duration", "low", "--availability", "low", "--speed", "fast"}, `descriptor "fast"`},
		{[]string{"--size", "low", "--duration", "low", "--availability", "low", "--speed", "low", "--prefix", "0x0e"},
			`prefix "0x0e": want one of contract (0x0f)`},
		{[]string{"--size", "low", "--duration", "low", "--availability", "low", "--speed", "low", "extra"}, `unknown command "extra"`},
	}
	for _, tt := range tests {
		out, errOut, code := runTopic(t, append([]string{"topic", "encode"}, tt.args...)...)
		if code == 0 || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("encode %v: exit %d, stdout %q, stderr %q; want a failure naming %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

func TestTopicDecode(t *testing.T) {
	out, errOut, code := runTopic(t, "topic", "decode", "0f03030101")
	want := `topic 0f03030101, prefix contract (0x0f)
CRITERION     DESCRIPTOR  OPCODE  RANGE
size          high        0x03    16-32 MB
duration      high        0x03    90-270 days
availability  low         0x01    0-50%
speed         low         0x01    0-6 Mbps
`
	if code != 0 || out != want {
		t.Errorf("decode: exit %d, stderr %q, stdout\n%s\nwant\n%s", code, errOut, out, want)
	}
}

// criterionDoc mirrors one criterion of the documented --json shape, so a
// renamed field fails here.
type criterionDoc struct {
	Descriptor string `json:"descriptor"`
	Opcode     int    `json:"opcode"`
	Range      struct {
		Min  float64 `json:"min"`
		Max  float64 `json:"max"`
		Unit string  `json:"unit"`
	} `json:"range"`
	Input string   `json:"input"`
	Value *float64 `json:"value"`
}

// decodeTopicJSON parses --json output into the topic and its criteria by name.
func decodeTopicJSON(t *testing.T, out string) (string, string, map[string]criterionDoc) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	var topic, prefix string
	crit := map[string]criterionDoc{}
	for k, v := range raw {
		var err error
		switch k {
		case "topic":
			err = json.Unmarshal(v, &topic)
		case "prefix":
			err = json.Unmarshal(v, &prefix)
		case "size", "duration", "availability", "speed":
			var c criterionDoc
			err = json.Unmarshal(v, &c)
			crit[k] = c
		default:
			t.Errorf("unexpected JSON key %q", k)
		}
		if err != nil {
			t.Fatalf("key %s: %v", k, err)
		}
	}
	if len(crit) != 4 {
		t.Errorf("JSON has criteria %v, want all four", crit)
	}
	return topic, prefix, crit
}

func TestTopicDecodeJSON(t *testing.T) {
	for _, args := range [][]string{
		{"--json", "topic", "decode", "0F03030101"}, // upper case is accepted, printed lower
		{"topic", "decode", "--json", "0f03030101"},
	} {
		out, errOut, code := runTopic(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
		topic, prefix, crit := decodeTopicJSON(t, out)
		if topic != "0f03030101" || prefix != "contract" {
			t.Errorf("%v: topic %q prefix %q", args, topic, prefix)
		}
		want := map[string]struct {
			desc     string
			op       int
			min, max float64
			unit     string
		}{
			"size":         {"high", 3, 16, 32, "MB"},
			"duration":     {"high", 3, 90, 270, "days"},
			"availability": {"low", 1, 0, 50, "%"},
			"speed":        {"low", 1, 0, 6, "Mbps"},
		}
		for name, w := range want {
			c := crit[name]
			if c.Descriptor != w.desc || c.Opcode != w.op || c.Range.Min != w.min || c.Range.Max != w.max || c.Range.Unit != w.unit {
				t.Errorf("%v: %s = %+v, want %+v", args, name, c, w)
			}
			if c.Input != "" || c.Value != nil {
				t.Errorf("%v: %s has classify fields %q %v", args, name, c.Input, c.Value)
			}
		}
	}
}

func TestTopicDecodeErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"0f0102030"}, `error: topic "0f0102030": odd length 9, want 10 hex digits`},
		{[]string{"0x0f010203"}, `"x" at offset 1 is not a hex digit`},
		{[]string{"0e01020303"}, "unknown prefix 0x0e at byte 0"},
		{[]string{"0f01020304"}, "speed descriptor 0x04 at byte 4"},
		{[]string{"0f00020303"}, "size descriptor 0x00 at byte 1"},
		{nil, "accepts 1 arg(s), received 0"},
		{[]string{"0f01020303", "0f01020303"}, "accepts 1 arg(s), received 2"},
	}
	for _, tt := range tests {
		out, errOut, code := runTopic(t, append([]string{"topic", "decode"}, tt.args...)...)
		if code == 0 || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("decode %v: exit %d, stdout %q, stderr %q; want a failure naming %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

func TestTopicClassify(t *testing.T) {
	tests := []struct {
		size, duration, availability, speed string
		want                                string
	}{
		{"5MiB", "60d", "99%", "20Mbps", "0f01020303"},
		{"30MB", "365d", "10", "1Mbps", "0f03030101"},
		// Boundaries belong to the lower descriptor; MB is decimal.
		{"8MB", "30d", "50%", "6Mbps", "0f01010101"},
		{"8000001B", "720h1ns", "50.001%", "6000001bps", "0f02020202"},
		{"8MiB", "90 days", "80 %", "12 mbps", "0f02020202"},
		// Above the top of High is still High; 100% is valid.
		{"1GiB", "1000d", "100%", "1Gbps", "0f03030303"},
		{"0", "0s", "0", "0bps", "0f01010101"},
		{"7.5 MB", "1d12h", "99.9", "500Kbps", "0f01010301"},
		{"16000kB", "2160h", "80", "0.012Gbps", "0f02020202"},
	}
	for _, tt := range tests {
		args := []string{"topic", "classify", "--size", tt.size, "--duration", tt.duration,
			"--availability", tt.availability, "--speed", tt.speed}
		out, errOut, code := runTopic(t, args...)
		if code != 0 || out != tt.want+"\n" {
			t.Errorf("classify %v: exit %d, stdout %q, stderr %q; want %s", args[2:], code, out, errOut, tt.want)
		}
	}
}

func TestTopicClassifyJSON(t *testing.T) {
	out, errOut, code := runTopic(t, "topic", "classify", "--json",
		"--size", "5MiB", "--duration", "60d", "--availability", "99%", "--speed", "20Mbps")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	topic, _, crit := decodeTopicJSON(t, out)
	if topic != "0f01020303" {
		t.Errorf("topic = %q", topic)
	}
	want := map[string]struct {
		desc, input string
		value       float64
	}{
		"size":         {"low", "5MiB", 5.24288},
		"duration":     {"medium", "60d", 60},
		"availability": {"high", "99%", 99},
		"speed":        {"high", "20Mbps", 20},
	}
	for name, w := range want {
		c := crit[name]
		if c.Descriptor != w.desc || c.Input != w.input || c.Value == nil || *c.Value != w.value {
			t.Errorf("%s = %+v, want %+v", name, c, w)
		}
	}
}

func TestTopicClassifyErrors(t *testing.T) {
	good := map[string]string{"size": "5MiB", "duration": "60d", "availability": "99%", "speed": "20Mbps"}
	tests := []struct {
		flag, value string
		want        string
	}{
		{"size", "5XB", `invalid argument "5XB" for "--size" flag: want a size such as 5MiB or 12MB`},
		{"size", "-5MB", `invalid argument "-5MB" for "--size" flag`},
		{"size", "MB", `for "--size" flag`},
		{"size", "1e3MB", `for "--size" flag`},
		{"size", "99999999999GiB", "size 99999999999GiB is too large"},
		{"duration", "60", `invalid argument "60" for "--duration" flag: want a duration such as 60d`},
		{"duration", "60w", `for "--duration" flag`},
		{"duration", "1d-12h", `for "--duration" flag`},
		{"duration", "200000d", "is too long"},
		{"duration", "-1h", "duration -1h0m0s is negative"},
		{"availability", "101%", "availability 101% is above 100%, want a percentage from 0 to 100"},
		{"availability", "99‰", `for "--availability" flag: want a percentage`},
		{"availability", "NaN", `for "--availability" flag`},
		{"speed", "20", `invalid argument "20" for "--speed" flag: want a speed such as 20Mbps`},
		{"speed", "20MB/s", `for "--speed" flag`},
		{"speed", "Inf Mbps", `for "--speed" flag`},
	}
	for _, tt := range tests {
		args := []string{"topic", "classify"}
		for _, name := range criterionFlags {
			v := good[name]
			if name == tt.flag {
				v = tt.value
			}
			args = append(args, "--"+name+"="+v)
		}
		out, errOut, code := runTopic(t, args...)
		if code == 0 || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("classify --%s=%s: exit %d, stdout %q, stderr %q; want a failure naming %q",
				tt.flag, tt.value, code, out, errOut, tt.want)
		}
	}

	out, errOut, code := runTopic(t, "topic", "classify", "--size", "5MiB", "--speed", "20Mbps")
	if want := "missing --duration, --availability; give each criterion a value"; code == 0 || out != "" || !strings.Contains(errOut, want) {
		t.Errorf("classify without two flags: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
}

func TestTopicGroup(t *testing.T) {
	out, _, code := runTopic(t, "topic")
	if code != 0 || !strings.Contains(out, "encode") || !strings.Contains(out, "classify") {
		t.Errorf("topic: exit %d, stdout %q; want help listing the subcommands", code, out)
	}
	_, errOut, code := runTopic(t, "topic", "decod", "0f01020303")
	if code == 0 || !strings.Contains(errOut, `unknown command "decod" for "satchel topic"`) {
		t.Errorf("topic decod: exit %d, stderr %q; want an unknown-command failure", code, errOut)
	}
}

func TestParseUnits(t *testing.T) {
	sizes := map[string]uint64{
		"0": 0, "1": 1, "1B": 1, "1.5kB": 1500, "1KB": 1000, "5MiB": 5 << 20, "5 mib": 5 << 20,
		"12MB": 12_000_000, "2GB": 2_000_000_000, "1GiB": 1 << 30, "1KiB": 1024, " 3 MB ": 3_000_000,
	}
	for s, want := range sizes {
		if got, err := parseSize(s); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	const day = 24 * time.Hour
	durations := map[string]time.Duration{
		"60d": 60 * day, "1.5d": 36 * time.Hour, "1d12h": 36 * time.Hour, "2 days": 2 * day, "1day": day,
		"36h": 36 * time.Hour, "90m": 90 * time.Minute, "30s": 30 * time.Second, "1h30m": 90 * time.Minute, "0": 0,
	}
	for s, want := range durations {
		if got, err := parseDays(s); err != nil || got != want {
			t.Errorf("parseDays(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	percents := map[string]float64{"99%": 99, "99": 99, "99.9 %": 99.9, "0": 0, "100%": 100}
	for s, want := range percents {
		if got, err := parsePercent(s); err != nil || got != want {
			t.Errorf("parsePercent(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	speeds := map[string]float64{"20Mbps": 20, "20 mbps": 20, "1Gbps": 1000, "500Kbps": 0.5, "6000000bps": 6, "12000000bps": 12, "12000kbps": 12, "32000000bps": 32}
	for s, want := range speeds {
		if got, err := parseMbps(s); err != nil || got != want {
			t.Errorf("parseMbps(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
}
