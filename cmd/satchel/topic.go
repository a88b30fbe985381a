package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/internal/units"
	"github.com/satchel-net/satchel/topics"
)

func init() { registerGroup(newTopicCmd) }

func newTopicCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Encode, decode and classify storage contract topics",
		Long: `A contract topic says what a storage contract needs (size, duration,
availability and speed, each low, medium or high) as the hex string nodes
publish and subscribe to, such as 0f01020303.`,
		// A RunE and NoArgs make a mistyped subcommand an error; without them
		// cobra would print help and exit 0.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newTopicEncodeCmd(app), newTopicDecodeCmd(app), newTopicClassifyCmd(app))
	return cmd
}

var criterionFlags = []string{"size", "duration", "availability", "speed"}

func newTopicEncodeCmd(app *App) *cobra.Command {
	prefix := newFlag("contract", topics.PrefixContract, topics.ParsePrefix, "prefix")
	desc := map[string]*valueFlag[topics.Descriptor]{}
	cmd := &cobra.Command{
		Use:   "encode --size LEVEL --duration LEVEL --availability LEVEL --speed LEVEL",
		Short: "Print the topic for a descriptor of each criterion",
		Example: `  satchel topic encode --size low --duration medium --availability high --speed high
  satchel topic encode --size 3 --duration 0x03 --availability 1 --speed 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "give each criterion a descriptor: low, medium or high"); err != nil {
				return err
			}
			t := topics.Topic{
				Prefix:       prefix.value,
				Size:         desc["size"].value,
				Duration:     desc["duration"].value,
				Availability: desc["availability"].value,
				Speed:        desc["speed"].value,
			}
			return printTopic(app, t, nil)
		},
	}
	for _, name := range criterionFlags {
		desc[name] = newFlag("", topics.Descriptor(0), topics.ParseDescriptor, "level")
		cmd.Flags().Var(desc[name], name, name+" descriptor: low, medium or high (or 1, 2, 3) (required)")
	}
	cmd.Flags().Var(prefix, "prefix", "publication prefix")
	return cmd
}

func newTopicDecodeCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:     "decode TOPIC",
		Short:   "Print the criteria, descriptors and ranges of a topic",
		Example: "  satchel topic decode 0f03030101",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := topics.Parse(args[0])
			if err != nil {
				return err
			}
			v := newTopicJSON(t, nil)
			return app.Printer().Print(v, func(w io.Writer) error {
				fmt.Fprintf(w, "topic %s, prefix %s (0x%02x)\n", t, t.Prefix, uint8(t.Prefix))
				rows := make([][]string, 0, len(topics.Criteria()))
				for _, c := range topics.Criteria() {
					d := t.Descriptor(c)
					rows = append(rows, []string{c.String(), d.String(), fmt.Sprintf("0x%02x", uint8(d)), d.Range(c).String()})
				}
				return Table(w, []string{"CRITERION", "DESCRIPTOR", "OPCODE", "RANGE"}, rows)
			})
		},
	}
}

func newTopicClassifyCmd(app *App) *cobra.Command {
	size := newFlag("", uint64(0), parseSize, "size")
	duration := newFlag("", time.Duration(0), parseDays, "duration")
	availability := newFlag("", 0.0, parsePercent, "percent")
	speed := newFlag("", 0.0, parseMbps, "speed")
	cmd := &cobra.Command{
		Use:   "classify --size SIZE --duration DURATION --availability PERCENT --speed SPEED",
		Short: "Print the topic for concrete contract requirements",
		Long: `Classify grades concrete requirements on the topic matrix and prints the topic.
A value on a boundary takes the lower descriptor (exactly 8MB is low), MB is
10^6 bytes (8MiB is medium), a day is 24h, and values above the top of high
(32MB, 270d, 99%, 32Mbps) are high. Availability may not exceed 100%.`,
		Example: "  satchel topic classify --size 5MiB --duration 60d --availability 99% --speed 20Mbps",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "give each criterion a value, such as --size 5MiB --duration 60d --availability 99% --speed 20Mbps"); err != nil {
				return err
			}
			r := topics.Requirements{
				SizeBytes:    size.value,
				Duration:     duration.value,
				Availability: availability.value,
				SpeedMbps:    speed.value,
			}
			t, err := topics.Classify(r)
			if err != nil {
				return err
			}
			return printTopic(app, t, &classified{r, map[topics.Criterion]string{
				topics.Size:         size.raw,
				topics.Duration:     duration.raw,
				topics.Availability: availability.raw,
				topics.Speed:        speed.raw,
			}})
		},
	}
	cmd.Flags().Var(size, "size", "size of the data, such as 5MiB or 12MB ("+units.Names+") (required)")
	cmd.Flags().Var(duration, "duration", "how long to store it: d, h, m, s or a Go duration, such as 60d or 1d12h (required)")
	cmd.Flags().Var(availability, "availability", "required uptime in percent, such as 99% (required)")
	cmd.Flags().Var(speed, "speed", "retrieval speed: bps, Kbps, Mbps or Gbps, such as 20Mbps (required)")
	return cmd
}

// classified is what classify knows beyond the topic, for --json.
type classified struct {
	req   topics.Requirements
	input map[topics.Criterion]string
}

// printTopic prints the topic alone, so scripts can capture it, or with
// --json the topic and each criterion in full.
func printTopic(app *App, t topics.Topic, c *classified) error {
	return app.Printer().Print(newTopicJSON(t, c), func(w io.Writer) error {
		_, err := fmt.Fprintln(w, t)
		return err
	})
}

// topicJSON is the --json shape of a topic, shared by encode, decode and
// classify so a script reads one schema.
type topicJSON struct {
	Topic        string        `json:"topic"`
	Prefix       string        `json:"prefix"`
	Size         criterionJSON `json:"size"`
	Duration     criterionJSON `json:"duration"`
	Availability criterionJSON `json:"availability"`
	Speed        criterionJSON `json:"speed"`
}

type criterionJSON struct {
	Descriptor string       `json:"descriptor"`
	Opcode     uint8        `json:"opcode"`
	Range      topics.Range `json:"range"`
	// Input and Value are set by classify: the value as given, and in the
	// range's unit.
	Input string   `json:"input,omitempty"`
	Value *float64 `json:"value,omitempty"`
}

func newTopicJSON(t topics.Topic, c *classified) topicJSON {
	crit := func(k topics.Criterion) criterionJSON {
		d := t.Descriptor(k)
		v := criterionJSON{Descriptor: d.String(), Opcode: uint8(d), Range: d.Range(k)}
		if c != nil {
			val := c.req.Value(k)
			v.Input, v.Value = c.input[k], &val
		}
		return v
	}
	return topicJSON{
		Topic:        t.String(),
		Prefix:       t.Prefix.String(),
		Size:         crit(topics.Size),
		Duration:     crit(topics.Duration),
		Availability: crit(topics.Availability),
		Speed:        crit(topics.Speed),
	}
}

// requireFlags names every missing criterion flag at once, so one run shows
// all that is missing, followed by what to do.
func requireFlags(cmd *cobra.Command, hint string) error {
	var missing []string
	for _, name := range criterionFlags {
		if !cmd.Flags().Changed(name) {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("missing %s; %s", strings.Join(missing, ", "), hint)
}

// valueFlag is a flag parsed by a function, keeping the text as given so
// --json can echo it and help can show the default.
type valueFlag[T any] struct {
	raw   string
	value T
	parse func(string) (T, error)
	typ   string
}

func newFlag[T any](raw string, value T, parse func(string) (T, error), typ string) *valueFlag[T] {
	return &valueFlag[T]{raw: raw, value: value, parse: parse, typ: typ}
}

func (f *valueFlag[T]) Set(s string) error {
	v, err := f.parse(s)
	if err != nil {
		return err
	}
	f.raw, f.value = s, v
	return nil
}

func (f *valueFlag[T]) String() string { return f.raw }
func (f *valueFlag[T]) Type() string   { return f.typ }

// splitQuantity splits "5MiB" or "5 MiB" into its number and unit. The number
// is plain decimal with an optional fraction: signs, exponents, Inf and NaN
// are refused here, since no requirement is written that way.
func splitQuantity(s string) (float64, string, bool) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && ('0' <= s[i] && s[i] <= '9' || s[i] == '.') {
		i++
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, "", false
	}
	return v, strings.TrimSpace(s[i:]), true
}

// parseSize reads --size with units.ParseBytes ("5MiB", "12MB", "12 mb").
func parseSize(s string) (uint64, error) {
	n, err := units.ParseBytes(s)
	switch {
	case errors.Is(err, units.ErrRange):
		return 0, fmt.Errorf("size %s is too large", s)
	case err != nil:
		return 0, fmt.Errorf("want a size such as 5MiB or 12MB; units: %s", units.Names)
	}
	return n, nil
}

// parseDays reads a duration in days ("60d", "1.5 days"), days and a Go
// duration ("1d12h"), or a Go duration alone ("36h", "90m").
func parseDays(s string) (time.Duration, error) {
	bad := fmt.Errorf("want a duration such as 60d, 1d12h, 36h or 90m")
	v, unit, ok := splitQuantity(s)
	if !ok || !strings.HasPrefix(unit, "d") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return 0, bad
		}
		return d, nil
	}
	var rest time.Duration
	switch unit {
	case "d", "day", "days":
	default:
		var err error
		if rest, err = time.ParseDuration(unit[1:]); err != nil || rest < 0 {
			return 0, bad
		}
	}
	total := v*float64(24*time.Hour) + float64(rest)
	if total >= math.MaxInt64 { // float64(MaxInt64) is 2^63, one past the largest
		return 0, fmt.Errorf("duration %s is too long; the longest is %.0f days", s, float64(math.MaxInt64)/float64(24*time.Hour))
	}
	return time.Duration(total), nil
}

// parsePercent reads "99%" or "99". Whether the value is a percentage at all
// (0 to 100) is the topics package's call, so the rule lives in one place.
func parsePercent(s string) (float64, error) {
	v, unit, ok := splitQuantity(s)
	if !ok || (unit != "" && unit != "%") {
		return 0, fmt.Errorf("want a percentage such as 99%% or 99.9")
	}
	return v, nil
}

// speedUnits are bits per second per unit. They are matched case-blind as
// people write "mbps" too, and a unit is required: a bare number could mean
// bits or megabits.
var speedUnits = map[string]float64{"bps": 1, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9}

func parseMbps(s string) (float64, error) {
	v, unit, ok := splitQuantity(s)
	bits, known := speedUnits[strings.ToLower(unit)]
	if !ok || !known {
		return 0, fmt.Errorf("want a speed such as 20Mbps; units: bps, Kbps, Mbps, Gbps")
	}
	// Through bits, not a factor of 1e-6 that float64 cannot hold exactly,
	// so 12000000bps is exactly the 12 Mbps boundary.
	return v * bits / 1e6, nil
}
