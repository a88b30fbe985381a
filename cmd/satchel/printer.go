package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Printer is the one way commands write results: human text by default, JSON
// with --json. Commands hand it data; they never format JSON themselves.
type Printer struct {
	w    io.Writer
	json bool
}

// JSONMode reports whether output is JSON.
func (p *Printer) JSONMode() bool { return p.json }

// Print writes v as indented JSON in JSON mode, or calls human otherwise.
func (p *Printer) Print(v any, human func(w io.Writer) error) error {
	if p.json {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return human(p.w)
}

// Line prints a single value: the value itself in text mode and {key: value}
// as JSON.
func (p *Printer) Line(key string, value any) error {
	return p.Print(map[string]any{key: value}, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, value)
		return err
	})
}

// Table prints rows under a header in aligned columns (text mode only helper).
func Table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
