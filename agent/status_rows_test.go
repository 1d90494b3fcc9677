package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The overview of more checks than overviewRows shows that many rows, every failing check
// among them wherever it is in the config, says how many it left out and where, and shows
// them all when asked (?all). Real checks against a loopback target: 1,050 of them, the
// five last and one in the middle failing, in two services.
func TestOverviewShowsTheFailingFirst(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/fail") {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer target.Close()
	const n = overviewRows + 50
	failing := map[string]bool{"c0500": true}
	for i := n - 5; i < n; i++ {
		failing[fmt.Sprintf("c%04d", i)] = true
	}
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	for i := range n {
		name, path := fmt.Sprintf("c%04d", i), "/ok"
		if failing[name] {
			path = "/fail"
		}
		fmt.Fprintf(&cfg, "  - {name: %s, kind: http, every: 2s, timeout: 2s, retries: 0, request: {url: %q}, assert: [\"status == 200\"]}\n", name, target.URL+path)
	}
	cfg.WriteString("services:\n  first: {checks: [")
	for i := range n / 2 {
		fmt.Fprintf(&cfg, "c%04d, ", i)
	}
	cfg.WriteString("]}\n  second: {checks: [")
	for i := n / 2; i < n; i++ {
		fmt.Fprintf(&cfg, "c%04d, ", i)
	}
	cfg.WriteString("]}\n")
	l := launch(t, t.TempDir(), cfg.String(), Options{})
	defer func() {
		if err := l.stop(); err != nil {
			t.Error(err)
		}
	}()
	eventually(t, 2*time.Minute, "a run of every check", func() bool {
		for _, c := range l.a.Runtime().Order {
			if l.a.lastResult(c.Name) == nil {
				return false
			}
		}
		return true
	})

	page := func(path string) string {
		t.Helper()
		return getOK(t, l.url+path)
	}
	rowRe := regexp.MustCompile(`<tr class="check" data-check="(c[0-9]+)" data-status="([a-z ]+)"`)
	shownRows := func(body string) map[string]string {
		rows := map[string]string{}
		for _, m := range rowRe.FindAllStringSubmatch(body, -1) {
			rows[m[1]] = m[2]
		}
		return rows
	}

	body := page("/")
	rows := shownRows(body)
	if len(rows) != overviewRows {
		t.Fatalf("the overview shows %d rows, want %d", len(rows), overviewRows)
	}
	for name := range failing {
		if rows[name] != "fail" {
			t.Errorf("failing check %s: shown %q, want a fail row", name, rows[name])
		}
	}
	// The rows left out are the last passing ones of the config, in the second service.
	for i := n - 5 - 50; i < n-5; i++ {
		if name := fmt.Sprintf("c%04d", i); rows[name] != "" {
			t.Errorf("passing check %s is shown though later ones of the order are left out", name)
		}
	}
	for _, want := range []string{
		`<span id="left-out">50 rows left out, the failing shown first: search, group or <a href="/?all=1#checks">show all</a></span>`,
		`50 more checks not shown: search, or <a href="/?all=1#checks">show all</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the overview does not say %q", want)
		}
	}
	if strings.Count(body, `class="muted small more"`) != 1 {
		t.Error("a group that shows all of its rows says it left some out")
	}

	if all := shownRows(page("/?all=1")); len(all) != n {
		t.Errorf("?all=1 shows %d rows, want %d", len(all), n)
	}
	for _, q := range []string{"/?all=0", "/?all=junk", "/?all=", "/?all=%00%3Cscript%3E"} {
		if rows := shownRows(page(q)); len(rows) != overviewRows {
			t.Errorf("%s shows %d rows, want the limit's %d", q, len(rows), overviewRows)
		}
	}
	// A search narrows before the rows are counted: everything it finds is shown.
	if found := shownRows(page("/?q=failing")); len(found) != len(failing) {
		t.Errorf("searching for failing shows %d rows, want %d", len(found), len(failing))
	}
}

// keepRows keeps the failing rows first wherever they are, then the rest in order, and
// counts what each group leaves out, failing ones apart.
func TestKeepRows(t *testing.T) {
	r := func(class string) *rowView { return &rowView{Class: class} }
	a := &groupView{Rows: []*rowView{r("ok"), r("warn"), r("bad"), r("ok")}}
	b := &groupView{Rows: []*rowView{r("ok"), r("err"), r("bad")}}
	if hidden := keepRows([]*groupView{a, b}, 4); hidden != 3 {
		t.Fatalf("left out %d rows, want 3", hidden)
	}
	got := func(g *groupView) string {
		var s []string
		for _, r := range g.Rows {
			s = append(s, r.Class)
		}
		return fmt.Sprintf("%v, %d hidden, %d failing", s, g.Hidden, g.HiddenFailing)
	}
	if g := got(a); g != "[ok bad], 2 hidden, 0 failing" {
		t.Errorf("first group: %s", g)
	}
	if g := got(b); g != "[err bad], 1 hidden, 0 failing" {
		t.Errorf("second group: %s", g)
	}
	c := &groupView{Rows: []*rowView{r("bad"), r("bad"), r("ok")}}
	if hidden := keepRows([]*groupView{c}, 1); hidden != 2 || got(c) != "[bad], 2 hidden, 1 failing" {
		t.Errorf("more failing rows than the limit: %d left out, %s", hidden, got(c))
	}
	d := &groupView{Rows: []*rowView{r("ok"), r("bad")}}
	if hidden := keepRows([]*groupView{d}, 2); hidden != 0 || got(d) != "[ok bad], 0 hidden, 0 failing" {
		t.Errorf("rows within the limit: %d left out, %s", hidden, got(d))
	}
}
