package configs

// The secrets a redactor searches for, and the ones a run learns on top of the config's.

import (
	"encoding/json"
	"html"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Redactor masks credentials in text and values. The zero value and nil mask by place only;
// Config.Redactor adds the config's secret values. It is immutable and safe for concurrent
// use; With returns a new one that also knows a run's secrets.
//
// A redactor made with With from the config's (a run's: a cookie, a token from a login)
// holds only what the run learned, and the config's as its base. Made whole, it would
// search every form of every secret of the config again and build a Replacer of them all
// for each run that learns one: 15 µs a run for a config of ten secrets, 0.4 ms for one of
// three hundred, more than the rest of an HTTP check (BenchmarkRedactorLearns). A text
// with none of the run's own secrets in it is masked by the base, as the whole would mask
// it (the whole's other values match nowhere in it); a text with one is masked by the
// whole, made once, when the first such text comes.
type Redactor struct {
	secrets []string          // every searched form of every secret, longest first; the run's own when base is set
	rep     *strings.Replacer // replaces secrets with Masked; nil on a run's (base set)
	known   map[string]bool   // the secrets whose forms are in secrets, as they were given
	forms   map[string]bool   // secrets as a set; nil on a run's

	base      *Redactor // the config's, for a run's; nil otherwise
	wholeOnce sync.Once
	wholeR    *Redactor // base and the run's secrets in one, made when first needed

	names     sync.Map     // map key -> nameVerdict, on the config's (see name)
	nameCount atomic.Int64 // keys stored in names, or tried to be
}

// maxOwnForms is how many forms a run's redactor holds before it is made whole instead: each
// is searched for apart in every text masked.
const maxOwnForms = 64

// NewRedactor returns a redactor that masks these values (and their URL-, JSON- and
// HTML-escaped forms) wherever they appear, on top of masking by place. Values shorter than
// MinSecretLen are ignored.
func NewRedactor(secrets ...string) *Redactor { return (*Redactor)(nil).With(secrets...) }

// With returns a redactor that also masks secrets; r itself when it knows them all. A run
// calls it with the credentials it sent, which are mostly the config's: those cost a look-up
// each. What is new is held apart from the config's (see Redactor).
func (r *Redactor) With(secrets ...string) *Redactor {
	if r == nil {
		known := map[string]bool{}
		var list []string
		seen := map[string]bool{}
		for _, s := range secrets {
			if len(s) >= MinSecretLen {
				known[s] = true
				list = appendForms(list, seen, nil, s)
			}
		}
		return whole(list, known)
	}
	if !r.learns(secrets) {
		return r
	}
	base, own := r, []string(nil)
	known := map[string]bool{}
	if r.base != nil {
		base, own = r.base, r.secrets
		for s := range r.known {
			known[s] = true
		}
	}
	list := slices.Clone(own)
	seen := make(map[string]bool, len(own)+6*len(secrets))
	for _, f := range own {
		seen[f] = true
	}
	for _, s := range secrets {
		if len(s) >= MinSecretLen && !base.known[s] && !known[s] {
			known[s] = true
			list = appendForms(list, seen, base.forms, s)
		}
	}
	if len(list) == len(own) { // every form was searched for already
		return r
	}
	sort.SliceStable(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	run := &Redactor{secrets: list, known: known, base: base}
	if len(list) > maxOwnForms {
		return run.whole()
	}
	return run
}

// appendForms appends to list the forms of secret that neither seen nor held holds, and
// marks them seen: the value, and the value URL-, HTML- and JSON-escaped.
func appendForms(list []string, seen, held map[string]bool, secret string) []string {
	add := func(s string) {
		if len(s) >= MinSecretLen && !seen[s] && !held[s] && s != Masked {
			seen[s] = true
			list = append(list, s)
		}
	}
	add(secret)
	add(url.QueryEscape(secret))
	add(url.PathEscape(secret))
	add(html.EscapeString(secret))
	if b, err := json.Marshal(secret); err == nil {
		add(string(b[1 : len(b)-1]))
	}
	// JSON inside a JSON string, as a stored body quoted in a transcript line.
	if b, err := json.Marshal(strings.ReplaceAll(secret, `"`, `\"`)); err == nil {
		add(string(b[1 : len(b)-1]))
	}
	return list
}

// whole returns a redactor searching for every form in list, longest first (a Replacer
// tries its values in the order given, so where two match at one place the longer wins).
func whole(list []string, known map[string]bool) *Redactor {
	sort.SliceStable(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	forms := make(map[string]bool, len(list))
	pairs := make([]string, 0, 2*len(list))
	for _, s := range list {
		forms[s] = true
		pairs = append(pairs, s, Masked)
	}
	r := &Redactor{secrets: list, known: known, forms: forms}
	if len(pairs) > 0 {
		r.rep = strings.NewReplacer(pairs...)
	}
	return r
}

// learns reports whether secrets hold one r does not know.
func (r *Redactor) learns(secrets []string) bool {
	for _, s := range secrets {
		if len(s) >= MinSecretLen && !r.knows(s) {
			return true
		}
	}
	return false
}

// whole is a run's redactor made into one with its base; r itself when it has no base.
func (r *Redactor) whole() *Redactor {
	if r.base == nil {
		return r
	}
	r.wholeOnce.Do(func() {
		list := append(slices.Clone(r.base.secrets), r.secrets...)
		known := make(map[string]bool, len(r.base.known)+len(r.known))
		for _, m := range []map[string]bool{r.base.known, r.known} {
			for s := range m {
				known[s] = true
			}
		}
		r.wholeR = whole(list, known)
	})
	return r.wholeR
}

// replaceOwn masks s as the whole would, without making it unless it must. The run's own
// secrets are found where the whole would find them, and the text between them is masked by
// the base: the same text, unless a secret of the base's overlaps one of the run's, where
// the whole would choose between the two. So where a secret of the base's shows within
// reach of one of the run's (its longest form either side), the whole masks s, made once.
// A failing session check's transcript has its cookie in it: masked by the whole it cost
// 0.4-0.8 ms to make at three hundred config secrets, each failing run.
func (r *Redactor) replaceOwn(s string) string {
	var next [maxOwnForms]int
	var out strings.Builder
	reach, done := 0, 0
	if r.base.rep != nil {
		reach = len(r.base.secrets[0]) - 1
	}
	for i := 0; i < len(s); {
		k, start := r.nextOwn(s, i, &next)
		if k < 0 {
			break
		}
		end := start + len(r.secrets[k])
		if reach > 0 && matches(r.base.rep, s[max(0, start-reach):min(len(s), end+reach)]) {
			return replaceBy(r.whole().rep, s)
		}
		if out.Len() == 0 {
			out.Grow(len(s))
		}
		writeReplaced(&out, r.base.rep, s[done:start])
		out.WriteString(Masked)
		done, i = end, end
	}
	if done == 0 {
		return replaceBy(r.base.rep, s)
	}
	writeReplaced(&out, r.base.rep, s[done:])
	return out.String()
}

// nextOwn is the first of the run's own forms found in s at or after i, and where: the
// earliest, and of those found there the longest (the order the whole's Replacer tries them
// in); -1 when there is none. next keeps what the last search for each form found: its
// place plus one, -1 for nowhere, 0 before the first search.
func (r *Redactor) nextOwn(s string, i int, next *[maxOwnForms]int) (k, start int) {
	k, start = -1, len(s)
	for j, f := range r.secrets {
		if next[j] == 0 || next[j] > 0 && next[j]-1 < i {
			next[j] = -1
			if n := strings.Index(s[i:], f); n >= 0 {
				next[j] = i + n + 1
			}
		}
		if next[j] > 0 && next[j]-1 < start {
			k, start = j, next[j]-1
		}
	}
	return k, start
}

// matches reports whether rep replaces anything in s.
func matches(rep *strings.Replacer, s string) bool {
	w := replaced{src: s, stop: true}
	_, err := rep.WriteString(&w, s)
	return err != nil
}

// writeReplaced writes s to b with rep's values replaced.
func writeReplaced(b *strings.Builder, rep *strings.Replacer, s string) {
	if rep == nil {
		b.WriteString(s)
		return
	}
	_, _ = rep.WriteString(b, s) // a Builder never fails
}

// knows reports whether r masks secret wherever it appears.
func (r *Redactor) knows(secret string) bool {
	return r != nil && (r.known[secret] || r.base != nil && r.base.known[secret])
}

// margin is how much text past a cut must be redacted with what comes before it, so that
// the cut never splits a secret (or a "name": "value" pair) and shows its start.
func (r *Redactor) margin() int {
	longest := 0
	for ; r != nil; r = r.base {
		if len(r.secrets) > 0 {
			longest = max(longest, len(r.secrets[0]))
		}
	}
	return 128 + longest
}

// Len is how many searched forms of secrets the redactor knows.
func (r *Redactor) Len() int {
	n := 0
	for ; r != nil; r = r.base {
		n += len(r.secrets)
	}
	return n
}
