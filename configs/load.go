package configs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	envprovider "github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
	yamlv3 "go.yaml.in/yaml/v3"
)

// envPrefix starts every environment variable that overrides a config key. Nesting uses a
// double underscore: VIGIL_AGENT__LISTEN sets agent.listen.
const envPrefix = "VIGIL_"

// Options are the non-file inputs of a load.
type Options struct {
	// Environ is the environment, as os.Environ returns it; nil means os.Environ().
	Environ []string
	// Flags, when set, override keys: FlagKeys maps a flag name to the key path it sets.
	// Only flags the user changed apply.
	Flags    *pflag.FlagSet
	FlagKeys map[string]string
	// ChecksOnly loads the config to run its checks once (vigil run): the agent's, the
	// store's and the notifiers' secrets may be unset, and a listen address without a token
	// is no error, since none of them is used. A pipeline step then needs the checks'
	// secrets alone, not Slack's token or the API's.
	ChecksOnly bool
}

// unusedWhenChecksOnly says whether a key path is one Options.ChecksOnly does not use.
func unusedWhenChecksOnly(path string) bool {
	for _, p := range []string{"agent.", "store.", "notifiers.", "tracing."} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func (o Options) lookupEnv(name string) (string, bool) {
	env := o.Environ
	if env == nil {
		env = os.Environ()
	}
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// Load reads, defaults and validates the config file at path. Any problem is an error and
// no config.
func Load(path string, opts Options) (*Config, error) {
	cfg, err := LoadPartial(path, opts)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadPartial is Load that goes on past the first kind of problem, so that one pass reports
// them all: a key that does not decode does not stop the validation of everything else.
// With problems it returns their Errors AND the config as far as it decoded (nil only
// when the file cannot be read or is not YAML); cfg.Broken tells which parts to skip
// when building it, which is how `vigil validate` and the agent report, in one list, what
// loading and building find.
func LoadPartial(path string, opts Options) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		fix := "check the path, or pass -c FILE"
		if errors.Is(err, fs.ErrNotExist) {
			fix = "create it (see configs/examples/) or pass -c FILE"
		}
		return nil, Errors{{File: path, Msg: "cannot read config: " + unwrapPathErr(err), Fix: fix}}
	}
	return parsePartial(path, data, opts)
}

// maxConfigSize is the largest config file read: a config of 10,000 checks is a few
// megabytes. Past it, the file is not a config (-c /dev/zero, a log file by mistake).
const maxConfigSize = 64 << 20

// readConfig reads the file at path, at most maxConfigSize bytes. Not only regular files:
// -c /dev/stdin and a shell's <(...) are pipes.
func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err == nil && len(data) > maxConfigSize {
		err = &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("the file is over %d MiB, far more than a config", maxConfigSize>>20)}
	}
	return data, err
}

func unwrapPathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse is Load for bytes already read; name is the file name used in errors and the
// folder relative paths resolve against.
func Parse(name string, data []byte, opts Options) (*Config, error) {
	cfg, err := parsePartial(name, data, opts)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// parsePartial is LoadPartial for bytes already read.
func parsePartial(name string, data []byte, opts Options) (*Config, error) {
	cfg := &Config{File: name, Dir: filepath.Dir(name)}
	if abs, err := filepath.Abs(cfg.Dir); err == nil {
		cfg.Dir = abs
	}

	k := koanf.New(".")
	if err := k.Load(bytesProvider(data), yaml.Parser()); err != nil {
		return nil, Errors{yamlError(name, data, err)}
	}
	lines, err := lineIndex(data)
	if err != nil {
		return nil, Errors{yamlError(name, data, err)}
	}
	cfg.lines = lines
	if len(k.Keys()) == 0 {
		// Never a config to run: caught mid-write (an editor or a tool that truncates, then
		// writes), a reload to it would drop every check, incident and notifier, and a
		// rollback due to one of them with it.
		return nil, Errors{{File: name, Msg: "the file has no settings (empty, or only comments)",
			Fix: "write the config (see configs/examples/); a reload of an empty file keeps the config in force"}}
	}

	// Environment and flags are layered over the file. Only VIGIL_SECTION__KEY variables
	// are overrides; VIGIL_CONFIG, VIGIL_BROWSER and VIGIL_API_TOKEN are not keys. One
	// that names a key with a single underscore (VIGIL_AGENT_LISTEN) is an error: it set
	// nothing, and its operator meant it to.
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	cfg.overrides = map[string]string{}
	var misnamed Errors
	ep := envprovider.Provider(".", envprovider.Opt{
		Prefix:      envPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(key, value string) (string, any) {
			rest := strings.TrimPrefix(key, envPrefix)
			if !strings.Contains(rest, "__") {
				if path := singleUnderscoreKey(key); path != "" && !(opts.ChecksOnly && unusedWhenChecksOnly(path)) {
					want := envPrefix + strings.ToUpper(strings.Replace(path, ".", "__", -1))
					misnamed = append(misnamed, &Error{Source: "environment " + key, Path: path,
						Msg: "this variable sets nothing: an override has two underscores between section and key",
						Fix: fmt.Sprintf("set %s (two underscores between section and key), or unset %s", want, key)})
				}
				return "", nil
			}
			path := strings.ToLower(strings.ReplaceAll(rest, "__", "."))
			cfg.overrides[path] = "environment " + key
			return path, value
		},
	})
	if err := k.Load(ep, nil); err != nil {
		return nil, Errors{{Source: "environment", Msg: err.Error()}}
	}
	if opts.Flags != nil {
		fp := posflag.ProviderWithFlag(opts.Flags, ".", nil, func(f *pflag.Flag) (string, any) {
			key, ok := opts.FlagKeys[f.Name]
			if !ok || !f.Changed {
				return "", nil
			}
			cfg.overrides[key] = "flag --" + f.Name
			return key, posflag.FlagVal(opts.Flags, f)
		})
		if err := k.Load(fp, nil); err != nil {
			return nil, Errors{{Source: "flags", Msg: err.Error()}}
		}
	}
	unset, nested := map[string][]string{}, map[string]string{}
	raw := expandMap("", k.Raw(), opts, unset, nested, func(path, name, value string) {
		if SensitiveName(name) || SensitiveName(lastKey(path)) {
			cfg.expandedSecrets = append(cfg.expandedSecrets, value)
		}
	})

	if opts.ChecksOnly {
		for path := range unset {
			if unusedWhenChecksOnly(path) {
				delete(unset, path)
			}
		}
	}
	d := &decoder{unset: unset}
	d.where = func(path string) (string, int, string) {
		if src := cfg.sourceOf(path); src != "" {
			return "", 0, src
		}
		return name, cfg.lineOf(path), ""
	}
	for _, path := range slices.Sorted(maps.Keys(nested)) {
		d.errorf(path, fmt.Sprintf("write the default out in full, or set %s", nested[path]),
			"the default of ${%s:-...} holds another ${...}; vigil expands one level", nested[path])
	}
	d.decode("", raw, reflect.ValueOf(cfg).Elem())
	cfg.zeros = d.zeros
	// Validation goes on over what did decode; its findings under a key that did not
	// decode would only restate that problem.
	cfg.applyDefaults()
	problems := append(d.errs, misnamed...)
	cfg.checksOnly = opts.ChecksOnly
	cfg.unsetVars = unset
	for _, e := range cfg.validate() {
		if !d.errs.covers(e.Path) && !(opts.ChecksOnly && unusedWhenChecksOnly(e.Path)) {
			problems = append(problems, namingUnsetVariable(e, unset[e.Path]))
		}
	}
	if len(problems) > 0 {
		cfg.problems = problems.sorted()
		return cfg, cfg.problems
	}
	cfg.redactor = NewRedactor(cfg.secretValues()...)
	return cfg, nil
}

// namingUnsetVariable says that a value broke its rule because a ${VAR} in it is not set:
// "url: ${TEAMS_WEBHOOK_URL}" with the variable unset was "missing; set the Workflows
// webhook URL", which sent the reader to a file that already sets it.
func namingUnsetVariable(e *Error, names []string) *Error {
	if len(names) == 0 {
		return e
	}
	fix := "export " + names[0] + " before starting vigil"
	if e.Fix != "" {
		fix += ", or " + e.Fix
	}
	return &Error{File: e.File, Line: e.Line, Source: e.Source, Path: e.Path, Fix: fix,
		Msg: fmt.Sprintf("uses ${%s}, which is not set in the environment (%s)", names[0], e.Msg)}
}

// lastKey is the last key of a path: "password" of checks[0].request.auth.password.
func lastKey(path string) string {
	if i := strings.LastIndexAny(path, ".]"); i >= 0 {
		return path[i+1:]
	}
	return path
}

var (
	yamlLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlDuplicate = regexp.MustCompile(`^line (\d+): (mapping key .* already defined at line \d+)`)
)

func yamlError(file string, data []byte, err error) *Error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if tab := tabIndented(data, line); tab > 0 {
			// The parser's words ("found character that cannot start any token") do not
			// say tab, and an editor shows a tab as spaces.
			return &Error{File: file, Line: tab, Msg: "invalid YAML: this line is indented with a tab",
				Fix: "indent with spaces: YAML does not allow tabs in indentation"}
		}
		return &Error{File: file, Line: line, Msg: "invalid YAML: " + m[2], Fix: "check indentation and quoting from this line on"}
	}
	if m := yamlDuplicate.FindStringSubmatch(msg); m != nil {
		// Said without a line and a fix, it read as a problem of the whole file.
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: "invalid YAML: " + m[2],
			Fix: "a key may appear once in a mapping: remove one of the two, or merge them"}
	}
	if strings.Contains(msg, "cannot unmarshal") {
		return &Error{File: file, Msg: "the top level must be a mapping of sections (agent, checks, services, ...)", Fix: "see configs/examples/"}
	}
	if strings.Contains(msg, "excessive aliasing") || errors.Is(err, errTooManyKeys) {
		return &Error{File: file, Msg: "invalid YAML: " + msg,
			Fix: "the file's anchors and aliases (&name, *name) expand to more values than a config holds: write the repeated parts out, or share them through defaults"}
	}
	return &Error{File: file, Msg: "invalid YAML: " + msg}
}

// tabIndented returns the line, of the one the parser named and the next (it names one
// or the other), whose indentation holds a tab; 0 when neither does.
func tabIndented(data []byte, line int) int {
	lines := strings.Split(string(data), "\n")
	for _, n := range []int{line, line + 1} {
		if n < 1 || n > len(lines) {
			continue
		}
		text := lines[n-1]
		indent := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
		if strings.Contains(indent, "\t") && strings.TrimSpace(text) != "" {
			return n
		}
	}
	return 0
}

// maxKeys is the most key paths a config may expand to, its aliases followed: 10,000
// checks of 50 keys each, twice over. A file past it is refused, not indexed: a few lines
// of nested aliases (a "billion laughs") expand to billions.
const maxKeys = 1 << 20

var errTooManyKeys = fmt.Errorf("the document expands to more than %d keys", maxKeys)

// lineIndex maps every key path in the YAML document to its line.
func lineIndex(data []byte) (map[string]int, error) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	lines := map[string]int{}
	visited := 0
	var walk func(path string, n *yamlv3.Node)
	walk = func(path string, n *yamlv3.Node) {
		if visited++; visited > maxKeys {
			return
		}
		switch n.Kind {
		case yamlv3.DocumentNode:
			for _, c := range n.Content {
				walk(path, c)
			}
		case yamlv3.AliasNode:
			if n.Alias != nil {
				walk(path, n.Alias)
			}
		case yamlv3.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key, val := n.Content[i], n.Content[i+1]
				if key.Tag == "!!merge" {
					walk(path, val)
					continue
				}
				p := joinPath(path, key.Value)
				lines[p] = key.Line
				walk(p, val)
			}
		case yamlv3.SequenceNode:
			for i, c := range n.Content {
				p := indexPath(path, i)
				lines[p] = c.Line
				walk(p, c)
			}
		}
	}
	walk("", &doc)
	if visited > maxKeys {
		return nil, errTooManyKeys
	}
	return lines, nil
}

// envRef matches ${NAME} and ${NAME:-default}; $${ is a literal ${.
var envRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// expandMap replaces ${VAR} in every string of v. A variable's value is used as it is: a
// ${...} in it is not expanded again. A reference to an unset variable with no
// default expands to "" and is recorded under its key path in unset, so secrets can fail;
// a default that holds another ${...} is recorded in nested, with its variable's name.
// expanded receives every value put in, with its key path and variable name.
func expandMap(path string, v any, opts Options, unset map[string][]string, nested map[string]string, expanded func(path, name, value string)) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			x[k] = expandMap(joinPath(path, k), val, opts, unset, nested, expanded)
		}
		return x
	case []any:
		for i, val := range x {
			x[i] = expandMap(indexPath(path, i), val, opts, unset, nested, expanded)
		}
		return x
	case string:
		if !strings.Contains(x, "${") {
			return x
		}
		return envRef.ReplaceAllStringFunc(x, func(ref string) string {
			if ref == "$${" {
				return "${"
			}
			m := envRef.FindStringSubmatch(ref)
			if strings.Contains(m[2], "${") {
				// ${A:-${B}} reads as A with the default "${B", then a stray "}": a header
				// or a body carried that text.
				nested[path] = m[1]
				return ""
			}
			if val, ok := opts.lookupEnv(m[1]); ok && val != "" {
				expanded(path, m[1], val)
				return val
			}
			if strings.Contains(ref, ":-") {
				expanded(path, m[1], m[2])
				return m[2]
			}
			unset[path] = append(unset[path], m[1])
			return ""
		})
	}
	return v
}

// bytesProvider is a koanf.Provider over bytes already read.
type bytesProvider []byte

func (b bytesProvider) ReadBytes() ([]byte, error) { return b, nil }
func (b bytesProvider) Read() (map[string]any, error) {
	return nil, errors.New("bytesProvider: use ReadBytes")
}
