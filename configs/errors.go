package configs

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Error is one problem in a configuration: where it is, what is wrong and how to fix it.
type Error struct {
	File string // config file, or "" when the value came from elsewhere
	Line int    // 1-based line in File, 0 when unknown
	// Source names a non-file origin, such as "environment VIGIL_AGENT__LISTEN".
	Source string
	Path   string // key path, e.g. checks[2].request.method
	Msg    string // what is wrong
	Fix    string // what to do, may be empty
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Source != "":
		b.WriteString(e.Source)
		b.WriteString(": ")
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Errors is every problem found in one load, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// covers reports whether one of the errors is at path or above it.
func (es Errors) covers(path string) bool {
	for _, e := range es {
		if e.Path == "" || e.Path == path || strings.HasPrefix(path, e.Path+".") || strings.HasPrefix(path, e.Path+"[") {
			return true
		}
	}
	return false
}

// Merge joins problems found by several passes over one config into one list in file
// order. nil lists and non-Errors errors are welcome: an error that is not Errors is kept
// as one more problem.
func Merge(errs ...error) error {
	var out Errors
	for _, err := range errs {
		var es Errors
		switch {
		case err == nil:
		case errors.As(err, &es):
			for _, e := range es {
				if !slices.Contains(out, e) {
					out = append(out, e)
				}
			}
		default:
			out = append(out, &Error{Msg: err.Error()})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out.sorted()
}

// Problems returns what LoadPartial found wrong with the config (nil for a valid one).
func (c *Config) Problems() Errors { return c.problems }

// Broken reports whether a load problem lies at path or under it: building that part
// would only stumble on the same problem.
func (c *Config) Broken(path string) bool {
	for _, e := range c.problems {
		if e.Path == path || strings.HasPrefix(e.Path, path+".") || strings.HasPrefix(e.Path, path+"[") {
			return true
		}
	}
	return false
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Path < es[j].Path
	})
	return es
}

// Err builds an Error located at path in this configuration. Packages that validate parts
// of a config after loading (assertions, templates) report through it.
func (c *Config) Err(path, fix, format string, args ...any) *Error {
	e := &Error{File: c.File, Path: path, Msg: fmt.Sprintf(format, args...), Fix: fix}
	if c != nil {
		e.Line = c.lineOf(path)
		// A value an environment variable or a flag set is not the file's: naming the
		// file's nearest line sent people to a line that did not hold it.
		e.Source = c.sourceOf(path)
	}
	return e
}

// written says whether the file (or an override) holds path itself. A value a key took
// from another one (a request's timeout from its check's) is not: a bad one restates the
// other key's error, said there. Without a line index, everything counts as written.
func (c *Config) written(path string) bool {
	if c.lines == nil {
		return true
	}
	_, ok := c.lines[path]
	return ok || c.overrides[path] != ""
}

// sourceOf names the environment variable or flag the value at path came from: one that
// set path or a key above it, or one below it that made path a mapping, or that made a
// key above it the file does not have (VIGIL_NOTIFIERS__OPS__URL beside a notifier named
// "Ops"). "" when the value is the file's.
func (c *Config) sourceOf(path string) string {
	if len(c.overrides) == 0 {
		return ""
	}
	for p := path; p != ""; p = parentPath(p) {
		if src, ok := c.overrides[p]; ok {
			return src
		}
	}
	if c.lines == nil { // forgotten: no telling what the file has
		return ""
	}
	for p := path; p != ""; p = parentPath(p) {
		if _, inFile := c.lines[p]; inFile && p != path {
			break
		}
		for _, q := range slices.Sorted(maps.Keys(c.overrides)) {
			if strings.HasPrefix(q, p+".") {
				return c.overrides[q]
			}
		}
	}
	return ""
}

// ForgetLines drops the index of key paths to lines once the configuration is built into a
// running one: it is for the errors of loading and building, and at ten thousand checks it
// is megabytes. Errors made after it name the key path without a line.
func (c *Config) ForgetLines() { c.lines = nil }

// lineOf finds the line of path, or of its nearest ancestor the file has.
func (c *Config) lineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := c.lines[p]; ok {
			return l
		}
	}
	return 0
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }
