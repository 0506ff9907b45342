// Package config fills a daemon's flag.FlagSet from, in order of
// precedence: command-line flags, environment variables, a YAML file, and
// the flags' defaults.
//
// Flags are the single source of truth: every setting is a flag, its
// environment variable is RIFF_{COMPONENT}_{FLAG} (upper case, dashes
// become underscores: RIFF_EDGE_CACHE_BYTES), and
// its key in the YAML file is the flag name itself:
//
//	# configs/edge.yaml
//	listen: 127.0.0.1:8082
//	cache-bytes: 1GiB
//	origin: [http://origin-a:8081, http://origin-b:8081]
//
// Unknown keys, values of the wrong type and nested maps are errors that
// name the key and the file.
//
// There is deliberately no component-less form (RIFF_LISTEN): several
// daemons often share one environment, and a variable meant for one must
// never reconfigure another.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load parses args into fs and fills every flag not given on the command
// line from the environment and then from the file named by -config (or
// RIFF_{COMPONENT}_CONFIG). It defines the -config flag
// itself. On -h or --help it prints usage to fs.Output() and returns
// flag.ErrHelp.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string, component string) error {
	path := fs.String("config", "", "YAML config `file` (keys are flag names)")
	fs.Usage = func() { usage(fs, component) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 && !allowsArgs(fs) {
		return fmt.Errorf("%s: unexpected argument %q", component, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		name := EnvName(component, f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("environment %s=%q: %w", name, v, serr)
			return
		}
		set[f.Name] = true
	})
	if err != nil || *path == "" {
		return err
	}
	return loadFile(fs, *path, set)
}

// allowsArgs reports whether the flag set's owner declared that it takes
// positional arguments (by a usage suffix flag; see TakesArgs).
func allowsArgs(fs *flag.FlagSet) bool { return fs.Lookup(argsMarker) != nil }

const argsMarker = "\x00args"

// TakesArgs marks fs as accepting positional arguments after the flags
// (described by synopsis in the usage line, e.g. "INPUT OUTDIR"). Without
// it, Load refuses stray arguments, which usually are mistyped flags.
func TakesArgs(fs *flag.FlagSet, synopsis string) {
	fs.Var(argsValue(synopsis), argsMarker, "")
}

type argsValue string

func (a argsValue) String() string   { return string(a) }
func (a argsValue) Set(string) error { return errors.New("not settable") }

// EnvName returns the environment variable that sets flag name of
// component: RIFF_{COMPONENT}_{FLAG}.
func EnvName(component, name string) string {
	return strings.ToUpper(strings.ReplaceAll("riff_"+component+"_"+name, "-", "_"))
}

func loadFile(fs *flag.FlagSet, path string, set map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config %s: want a mapping of flag names to values", path)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		key := k.Value
		switch {
		case seen[key]:
			return fmt.Errorf("config %s:%d: key %q appears twice", path, k.Line, key)
		case key == "config" || key == argsMarker || fs.Lookup(key) == nil:
			return fmt.Errorf("config %s:%d: unknown key %q", path, k.Line, key)
		}
		seen[key] = true
		val, err := scalar(v)
		if err != nil {
			return fmt.Errorf("config %s:%d: key %q: %w", path, v.Line, key, err)
		}
		if set[key] {
			continue // a flag or the environment said otherwise
		}
		if err := fs.Set(key, val); err != nil {
			return fmt.Errorf("config %s:%d: key %q: %w", path, v.Line, key, err)
		}
	}
	return nil
}

// scalar renders a YAML value as the string a flag would take; a list of
// scalars becomes a comma-separated string.
func scalar(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", errors.New("list items must be plain values")
			}
			parts = append(parts, c.Value)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", errors.New("want a plain value or a list, not a mapping")
	}
}

func usage(fs *flag.FlagSet, component string) {
	w := fs.Output()
	synopsis := ""
	if f := fs.Lookup(argsMarker); f != nil {
		synopsis = " " + f.Value.String()
	}
	fmt.Fprintf(w, "Usage: riff %s [flags]%s\n\nFlags (precedence: flag > environment > -config file > default):\n", component, synopsis)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == argsMarker {
			return
		}
		name, use := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  -%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintf(w, "\n    \t%s", strings.ReplaceAll(use, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "\n    \tenv %s\n", EnvName(component, f.Name))
	})
}
