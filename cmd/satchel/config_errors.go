package main

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// How yaml.v3 reports a key KnownFields refused, a value of the wrong type
// (a scalar where a mapping belongs among them) and a syntax error.
var (
	yamlUnknownField = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)
	yamlWrongType    = regexp.MustCompile(`^line (\d+): cannot unmarshal (\S+) ?(.*) into (\S+)$`)
	yamlSyntax       = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// configWant says what a config key holds, for keys whose Go type alone
// says too little. Durations have no day unit, hence the hours.
var configWant = map[string]string{
	"chain.trustingPeriod":  "a duration such as 168h (units h, m, s; 14 days is 336h)",
	"storage.deletionGrace": "a duration such as 24h (units h, m, s; 7 days is 168h)",
	"p2p.listen":            "a list of multiaddrs, one per line as `- /ip4/0.0.0.0/tcp/4001`",
	"p2p.bootstrap":         "a list of multiaddrs with /p2p/ peer IDs, one per line as `- /ip4/10.0.0.2/tcp/4001/p2p/12D3KooW...`",
	"chain.trustHeight":     "a block height (a whole number)",
}

// typeWant says what a value of Go type t is written as in YAML.
func typeWant(t string) string {
	switch t {
	case "time.Duration":
		return "a duration such as 24h"
	case "[]string":
		return "a list of strings"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "int", "int64", "uint64":
		return "a whole number"
	}
	return t
}

// configError rewrites yaml.v3's errors about the config file b into the
// user's terms: the line, the key path (chain.trustingPeriod, not
// time.Duration) and what the key wants. Errors it does not know pass
// through unchanged.
func configError(b []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return syntaxError(b, err)
	}
	sections := configSections(reflect.TypeFor[Config](), "", map[string]configSection{})
	values := configValues(b)
	msgs := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		msgs[i] = e
		if m := yamlUnknownField.FindStringSubmatch(e); m != nil {
			if sec, ok := sections[m[3]]; ok {
				where := "at the top level"
				if sec.path != "" {
					where = "in " + sec.path
				}
				msgs[i] = fmt.Sprintf("line %s: unknown key %q %s; the keys there are %s", m[1], m[2], where, strings.Join(sec.keys, ", "))
			}
		} else if m := yamlWrongType.FindStringSubmatch(e); m != nil {
			if sec, ok := sections[m[4]]; ok && sec.path != "" {
				msgs[i] = fmt.Sprintf("line %s: %s holds keys (%s), not %s", m[1], sec.path, strings.Join(sec.keys, ", "), m[3])
			} else if v, ok := values.at(m[1], m[2], m[3]); ok {
				want := configWant[v.path]
				if want == "" {
					want = typeWant(m[4])
				}
				msgs[i] = fmt.Sprintf("line %s: %s: want %s, got %s", m[1], v.path, want, v.got())
			}
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// syntaxError explains a YAML syntax error; a tab, which YAML does not allow
// for indenting, is the usual one.
func syntaxError(b []byte, err error) error {
	m := yamlSyntax.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(lines) && strings.Contains(lines[n-1], "\t") {
		return fmt.Errorf("line %s: not valid YAML: the line has a tab; YAML indents with spaces only (%s)", m[1], m[2])
	}
	return fmt.Errorf("line %s: not valid YAML: %s", m[1], m[2])
}

// configValue is one value in the config file and the key path it is at.
type configValue struct {
	path string
	node *yaml.Node
}

// got shows the value as the file has it.
func (v configValue) got() string {
	switch v.node.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	if v.node.Value == "" || strings.ContainsAny(v.node.Value, " \t\"") {
		return strconv.Quote(v.node.Value)
	}
	return v.node.Value
}

// lineValues are the values of a config file by line.
type lineValues map[int][]configValue

// configValues indexes the values of config file b by line; a file that
// does not parse gives none.
func configValues(b []byte) lineValues {
	var doc yaml.Node
	out := lineValues{}
	if yaml.Unmarshal(b, &doc) == nil {
		out.add("", &doc)
	}
	return out
}

// add records n, the value at path, and the values inside it.
func (lv lineValues) add(path string, n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			lv.add(path, c)
		}
		return
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if path != "" {
				key = path + "." + key
			}
			lv.add(key, n.Content[i+1])
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			lv.add(path, c) // an element's error names the list
		}
	}
	lv[n.Line] = append(lv[n.Line], configValue{path: path, node: n})
}

// at finds the value yaml.v3 reported at line: tag is its YAML tag (!!seq,
// !!map or a scalar's), shown the value as the error shows it (cut to 7
// characters and "..." when longer), which tells apart several values on
// one line.
func (lv lineValues) at(line, tag, shown string) (configValue, bool) {
	n, _ := strconv.Atoi(line)
	kind := yaml.ScalarNode
	switch tag {
	case "!!seq":
		kind = yaml.SequenceNode
	case "!!map":
		kind = yaml.MappingNode
	}
	shown = strings.TrimSuffix(strings.Trim(shown, "`"), "...")
	for _, v := range lv[n] {
		if v.path != "" && v.node.Kind == kind && strings.HasPrefix(v.node.Value, shown) {
			return v, true
		}
	}
	return configValue{}, false
}

// configSection is one mapping of the config file: where it is and its keys.
type configSection struct {
	path string
	keys []string
}

// configSections maps the Go type name of each struct in the config (as
// yaml.v3 names it) to its section.
func configSections(t reflect.Type, path string, out map[string]configSection) map[string]configSection {
	sec := configSection{path: path}
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "-" || !f.IsExported() {
			continue
		}
		if key == "" {
			key = strings.ToLower(f.Name)
		}
		sec.keys = append(sec.keys, key)
		if f.Type.Kind() == reflect.Struct {
			sub := key
			if path != "" {
				sub = path + "." + key
			}
			configSections(f.Type, sub, out)
		}
	}
	out[t.String()] = sec
	return out
}
