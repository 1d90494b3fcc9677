package checks

// A query (PromQL, LogQL) that names the deploy it verifies.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// deployQuery is a promql check's query, or a logscan's Loki query. It may name the deploy
// a run verifies, {{ .Deploy.Version }} and the like, so that a verification judges the
// new version's series and lines: the old version's are there from the start, the new
// one's only a scrape or two after its pods start, and a query of them all passes on the
// old version's numbers until then (or blames the old pods' log lines on the deploy).
// Outside a deploy the fields are empty ({{ with .Deploy.Version }} leaves the matcher
// out).
type deployQuery struct {
	text string
	t    *template.Template // nil: the query has no template
	// readsWindow: the query reads {{ .Window }}, the time the run looks back over.
	readsWindow bool
}

// deployQueryFields names the deploy's fields a query's template can read, for load errors
// (a promql query can read .Window too).
const deployQueryFields = ".Deploy.ID, .Deploy.Service, .Deploy.Version, .Deploy.Environment and .Deploy.Commit"

// compileDeployQuery compiles q's template and renders it in a deploy and outside one, so
// that a field it names and does not have (.Deploy.Verison) is a load error.
func compileDeployQuery(q string) (*deployQuery, error) {
	t, err := compileTemplate("query", q)
	if err != nil {
		return nil, err
	}
	pq := &deployQuery{text: q, t: t}
	for _, d := range []*Deploy{{ID: "d-1", Service: "web", Version: "v1.2.3", Environment: "production", Commit: "0a1b2c3"}, nil} {
		if _, err := pq.render(d, time.Minute); err != nil {
			return nil, err
		}
	}
	pq.readsWindow = slices.Contains(templateFields(t), "Window")
	return pq, nil
}

// render is the query for a run of deploy d (nil outside a deploy) that looks back over
// window, {{ .Window }} (see promDuration).
func (q *deployQuery) render(d *Deploy, window time.Duration) (string, error) {
	if q.t == nil {
		return q.text, nil
	}
	var b strings.Builder
	data := deployQueryData{Deploy: deployFields{d}, Window: promDuration(window)}
	if err := q.t.Execute(&b, data); err != nil {
		msg := err.Error()
		if i := strings.Index(msg, "at <"); i >= 0 { // template: query:1:22: executing "query" at <.Deploy.X>: ...
			msg = msg[i:]
		}
		msg = strings.NewReplacer(" in type checks.deployFields", " of .Deploy", " in type checks.deployQueryData", "").Replace(msg)
		return "", fmt.Errorf("the query's template %s", msg)
	}
	return b.String(), nil
}

// promDuration writes d as a PromQL range: whole seconds when it is whole ("300s"), or
// else milliseconds, cut down, never up ("37250ms", at least "1ms"): a range a moment after
// the deploy must not reach back before it.
func promDuration(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms"
}

// deployQueryData is what a query's template reads.
type deployQueryData struct {
	Deploy deployFields
	Window string
}

// deployFields hands a template the deploy's fields, each checked where it is read: a value
// that could end the string it is put in, or stand for more than a value outside one, is
// an error, never a query of the attacker's making (a deploy's version comes from whoever
// may register one).
type deployFields struct{ d *Deploy }

func (p deployFields) ID() (string, error) {
	return p.field("id", func(d *Deploy) string { return d.ID })
}
func (p deployFields) Service() (string, error) {
	return p.field("service", func(d *Deploy) string { return d.Service })
}
func (p deployFields) Version() (string, error) {
	return p.field("version", func(d *Deploy) string { return d.Version })
}
func (p deployFields) Environment() (string, error) {
	return p.field("environment", func(d *Deploy) string { return d.Environment })
}
func (p deployFields) Commit() (string, error) {
	return p.field("commit", func(d *Deploy) string { return d.Commit })
}

func (p deployFields) field(name string, of func(*Deploy) string) (string, error) {
	if p.d == nil {
		return "", nil
	}
	v := of(p.d)
	for _, r := range v {
		if !querySafe(r) {
			return "", fmt.Errorf("the deploy's %s %q has %q in it, which a query cannot hold safely: a %s of letters, digits and . _ - + / : @ only", name, Trim(v, 80), r, name)
		}
	}
	return v, nil
}

// querySafe reports whether r may stand in a query as part of a deploy's field: in a label
// value between any of PromQL's quotes, or as a bare word, it can only be itself.
func querySafe(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+/:@", r)
}
