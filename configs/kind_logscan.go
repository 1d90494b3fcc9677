package configs

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// KindLogscan counts lines matching a pattern among those written since the deploy.
const KindLogscan = "logscan"

// LogscanSpec is the logscan kind: count regex matches in logs written since the deploy.
type LogscanSpec struct {
	Source   LogSource `koanf:"source"`
	Pattern  string    `koanf:"pattern"`
	Patterns []string  `koanf:"patterns"`
	// Exclude leaves out lines the patterns match that are not the fault's: vigil's own
	// probe requests in an access log, a known noisy line.
	Exclude []string      `koanf:"exclude"`
	Window  time.Duration `koanf:"window"`
	// Samples is how many matching lines a run keeps as evidence: nil is 5, 0 keeps none
	// (lines may hold what must not reach a chat channel).
	Samples *int `koanf:"samples"`
	// MaxBytes caps the log bytes one run reads (files) or downloads (url); past it the
	// run notes what it skipped instead of reading without bound.
	MaxBytes int64 `koanf:"max_bytes"`

	compiled []*regexp.Regexp // Pattern then Patterns, compiled by validation
	excluded []*regexp.Regexp // Exclude, compiled by validation
}

// LogSource is a file glob or a Loki-style query_range API.
type LogSource struct {
	File    string            `koanf:"file"`
	URL     string            `koanf:"url"`
	Query   string            `koanf:"query"`
	Headers map[string]string `koanf:"headers"`
	Auth    Auth              `koanf:"auth"`
}

// logscanMaxBytes is the default per-run read cap of a logscan check.
const logscanMaxBytes = 64 << 20

// Regexps returns pattern and patterns, compiled when the config was validated.
func (l *LogscanSpec) Regexps() []*regexp.Regexp { return l.compiled }

// ExcludeRegexps returns exclude, compiled when the config was validated.
func (l *LogscanSpec) ExcludeRegexps() []*regexp.Regexp { return l.excluded }

func (l *LogscanSpec) applyDefaults(c *Config, _ *Check) {
	setDur(&l.Window, 5*time.Minute)
	if l.Samples == nil {
		l.Samples = new(int)
		*l.Samples = 5
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = logscanMaxBytes
	}
	if f := l.Source.File; f != "" && !filepath.IsAbs(f) {
		l.Source.File = filepath.Join(c.Dir, f)
	}
}

func (l *LogscanSpec) validate(v *validator, _ *Check, p string) {
	l.Source.validate(v, p)
	pats := l.Patterns
	if l.Pattern != "" {
		pats = append([]string{l.Pattern}, pats...)
	}
	if len(pats) == 0 {
		v.errf(p+".pattern", "set pattern (a regex) or patterns (a list)", "missing")
	}
	seen := map[string]bool{}
	l.compiled = l.compiled[:0]
	compile := func(path, src string) {
		if re := v.regexp(path, src); re != nil {
			l.compiled = append(l.compiled, re)
		}
	}
	if l.Pattern != "" {
		compile(p+".pattern", l.Pattern)
	}
	for i, re := range l.Patterns {
		ip := indexPath(p+".patterns", i)
		compile(ip, re)
		if seen[re] || re == l.Pattern {
			v.errf(ip, "remove the duplicate", "pattern %q is listed twice", re)
		}
		seen[re] = true
	}
	l.excluded = l.excluded[:0]
	for i, src := range l.Exclude {
		ip := indexPath(p+".exclude", i)
		if re := v.regexp(ip, src); re != nil {
			l.excluded = append(l.excluded, re)
		}
		if src == l.Pattern || slices.Contains(l.Patterns, src) {
			v.errf(ip, "remove it, or the pattern: a line it matches would never count", "%q is also a pattern", src)
		}
	}
	if l.Window < time.Second {
		v.errf(p+".window", "use 1s or more, e.g. 5m", "%s is too short", l.Window)
	}
	if n := *l.Samples; n < 0 || n > 100 {
		v.errf(p+".samples", "use 0 to 100 (0 keeps no line)", "%d is out of range", n)
	}
	if l.MaxBytes < 4096 {
		v.errf(p+".max_bytes", fmt.Sprintf("use at least 4096, e.g. %d (the default)", logscanMaxBytes), "%d is too small", l.MaxBytes)
	}
}

// validate checks the source of the logscan check at p.
func (src LogSource) validate(v *validator, p string) {
	switch {
	case src.File == "" && src.URL == "":
		v.errf(p+".source", "set source.file (a glob) or source.url (a Loki query_range API)", "no source")
	case src.File != "" && src.URL != "":
		v.errf(p+".source", "set either file or url", "both file and url are set")
	case src.File != "":
		if _, err := filepath.Match(src.File, ""); err != nil {
			v.errf(p+".source.file", "write a shell glob such as /var/log/app/*.log", "bad glob: %v", err)
		}
		for _, k := range []struct {
			key string
			set bool
		}{{"query", src.Query != ""}, {"headers", len(src.Headers) > 0}, {"auth", src.Auth.Username != "" || src.Auth.Bearer.IsSet()}} {
			if k.set {
				v.errf(p+".source."+k.key, "remove it: it only applies to a url (Loki) source", "not used with a file source")
			}
		}
	case src.URL != "":
		v.url(p+".source.url", src.URL)
		switch q := strings.TrimSpace(src.Query); {
		case q == "":
			v.errf(p+".source.query", `write a LogQL stream selector such as {app="web"}`, "a url source needs a query")
		case !strings.HasPrefix(q, "{"):
			v.errf(p+".source.query", `write a log query that starts with a stream selector, such as {app="web"} |= "error"; metric queries (rate, count_over_time) return no lines`,
				"%q is not a log query", q)
		}
		v.auth(p+".source.auth", src.Auth)
	}
}
