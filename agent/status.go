package agent

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"iter"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// The status page is server-rendered HTML with no script, so it keeps a strict
// Content-Security-Policy: the overview (every check with a day of uptime bars and its
// uptime over 1 h, 24 h and 7 d, grouped by service, label or kind, collapsible, with
// search; a deploy timeline per service; the events timeline; banners for silences and
// maintenance windows), a page per check (latency chart with deploys on it, its events and
// runs, badges), per deploy and per run (evidence, screenshots included). It is what Slack
// messages link to. Charts are SVG drawn here (charts.go); hover details are SVG titles;
// collapsing and search are links and a form, so they survive the auto-refresh.
//
// A view costs one query whatever the number of checks: uptime comes from the board in
// memory (board.go), the rest from one store query per page.

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"ago":       ago,
	"utc":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"ms":        fmtDuration,
	"isImage":   func(name string) bool { return strings.HasSuffix(name, ".png") },
	"status":    statusClass,
	"clip":      text.Ellipsis,
	"first":     firstReason,
	"buildTime": func() template.HTML { return buildMarker }, // replaced once the page is built
	"artifact": func(id int64, name string) string {
		return fmt.Sprintf("/runs/%d/artifacts/%s", id, url.PathEscape(name))
	},
}).ParseFS(templateFS, "templates/*.html"))

// ago is a time as "3 min ago" (the page shows the exact time on hover).
func ago(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return t.UTC().Format("Jan 2 15:04Z")
}

func firstReason(reasons []string) string {
	if len(reasons) == 0 {
		return ""
	}
	return reasons[0]
}

// pageMeta is what every page's layout reads.
type pageMeta struct {
	Title, Location, Version string
	Now                      time.Time
	// Refresh reloads the page every so many seconds (0: never); RefreshToggle is the URL
	// that turns it off or on.
	Refresh       int
	RefreshToggle string
	// Theme is the reader's choice from the theme cookie ("" follows the system).
	Theme string
	// Back is this page's path and query, for the theme links to come back to.
	Back string
}

const (
	themeCookie    = "vigil_theme"
	defaultRefresh = 30
	buildMarker    = "<!--vigil:build-time-->"
)

func (a *Agent) meta(r *http.Request, title string, refresh bool) pageMeta {
	m := pageMeta{Title: title, Location: a.location, Version: a.opts.Version, Now: a.clock.Now(),
		Back: r.URL.RequestURI()}
	if c, err := r.Cookie(themeCookie); err == nil && (c.Value == "light" || c.Value == "dark") {
		m.Theme = c.Value
	}
	q := r.URL.Query()
	if refresh {
		m.Refresh = defaultRefresh
		if q.Get("refresh") == "0" {
			m.Refresh = 0
			q.Del("refresh")
		} else {
			q.Set("refresh", "0")
		}
		m.RefreshToggle = withQuery(r.URL.Path, q)
	}
	return m
}

func withQuery(path string, q url.Values) string {
	if e := q.Encode(); e != "" {
		return path + "?" + e
	}
	return path
}

// render executes a page into a buffer (a failure answers 500, never half a page) and
// writes how long building it took where the layout asked for it. The overview's rows are
// not in the buffer: they are written as the page is sent (status_parts.go).
func (a *Agent) render(w http.ResponseWriter, name string, data any, began time.Time) {
	a.renderStatus(w, http.StatusOK, name, data, began)
}

// renderStatus is render answering status (an error page's: status_errors.go).
func (a *Agent) renderStatus(w http.ResponseWriter, status int, name string, data any, began time.Time) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
	// The buffer starts at the size this page had last time: a buffer doubling its way
	// there copies the page over and over.
	var b bytes.Buffer
	if n := a.pageSizes.hint(name); n > 0 {
		b.Grow(n + n/16) // the next one may be a little longer (a name, a figure): not doubled for it
	}
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		a.log.Error("rendering the status page failed", "page", name, "error", err)
		http.Error(w, "rendering failed", http.StatusInternalServerError)
		return
	}
	page := b.Bytes()
	a.pageSizes.set(name, len(page))
	if status != http.StatusOK {
		w.WriteHeader(status)
	}
	if g, ok := data.(rowGroups); ok { // the overview: its rows written as it is sent (status_parts.go)
		parts := pageParts(page, g.rowGroups(), began)
		if h, ok := w.(interface{ handOverParts(iter.Seq[[]byte]) bool }); ok && h.handOverParts(parts) {
			return // redactOutput's: it sends the parts
		}
		for part := range parts {
			_, _ = w.Write(part)
		}
		return
	}
	fillBuildTime(page, began)
	if h, ok := w.(interface{ handOver([]byte) bool }); ok && h.handOver(page) {
		return // redactOutput's buffer: the page is its own now
	}
	_, _ = w.Write(page)
}

// pageSizes are the sizes of the pages last rendered, by template, for render to size its
// buffer: a hint, never a limit.
type pageSizes struct {
	mu    sync.Mutex
	sizes map[string]int
}

func (p *pageSizes) hint(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sizes[name]
}

func (p *pageSizes) set(name string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sizes == nil {
		p.sizes = map[string]int{}
	}
	p.sizes[name] = n
}

// setTheme stores the reader's theme (light, dark, or auto: follow the system) in a cookie
// and goes back to the page it was chosen on.
func (a *Agent) setTheme(w http.ResponseWriter, r *http.Request) {
	mode := r.PathValue("mode")
	c := &http.Cookie{Name: themeCookie, Value: mode, Path: "/", MaxAge: 365 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	switch mode {
	case "light", "dark":
	case "auto":
		c.Value, c.MaxAge = "", -1
	default:
		a.pageError(w, r, http.StatusNotFound, fmt.Sprintf("the theme is light, dark or auto, not %q", text.Ellipsis(mode, 40)), nil)
		return
	}
	http.SetCookie(w, c)
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}

// localPath is back if it is a path on this agent, else "/". Browsers drop tabs and line
// breaks from a URL and read a backslash as a slash, so "/\t/evil.example" or "/\\evil" would
// lead to another host: a back holding any of them goes to "/".
func localPath(back string) string {
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || strings.ContainsFunc(back, func(r rune) bool {
		return r < 0x20 || r == 0x7f || r == '\\'
	}) {
		return "/"
	}
	if u, err := url.Parse(back); err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return back
}

// ---- a run ----

func (a *Agent) runFromPath(ctx context.Context, w http.ResponseWriter, r *http.Request) *store.RunRecord {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		a.pageError(w, r, http.StatusBadRequest, fmt.Sprintf("run ids are numbers, not %q", text.Ellipsis(r.PathValue("id"), 80)), nil)
		return nil
	}
	run, err := a.store.RunByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		a.pageError(w, r, http.StatusNotFound, fmt.Sprintf("no such run #%d: it may be %s, or from an agent with another store", id, a.pastRetention()), nil)
		return nil
	} else if err != nil {
		a.storeFailedPage(w, r, "run", r.PathValue("id"), err)
		return nil
	}
	return run
}

type runPageView struct {
	pageMeta
	Run      *store.RunRecord
	Class    string
	Vars     []kv
	TraceURL string
}

func (a *Agent) runPage(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	if run := a.runFromPath(r.Context(), w, r); run != nil {
		a.render(w, "run.html", &runPageView{pageMeta: a.meta(r, fmt.Sprintf("run #%d of %s", run.ID, run.Check), false), Run: run,
			Class: statusClass(run.Outcome), Vars: varList(run.Vars), TraceURL: a.opts.Tracing.TraceURL(run.TraceID)}, began)
	}
}

func (a *Agent) artifact(w http.ResponseWriter, r *http.Request) {
	run := a.runFromPath(r.Context(), w, r)
	if run == nil {
		return
	}
	art, err := a.store.ArtifactData(r.Context(), run.ID, r.PathValue("name"))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.storeFailedPage(w, r, "run", r.PathValue("id"), err)
		return
	} else if err != nil {
		a.pageError(w, r, http.StatusNotFound, fmt.Sprintf("run #%d has no evidence named %q", run.ID, text.Ellipsis(r.PathValue("name"), 80)), nil)
		return
	}
	// Never let stored evidence run as a page: text is shown as plain text, a binary
	// response body is a download.
	ct, disposition := art.ContentType, "inline"
	switch {
	case ct == "image/png":
	case strings.HasSuffix(art.Name, ".bin"):
		ct, disposition = "application/octet-stream", "attachment"
	default:
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("Content-Disposition", fmt.Sprintf("%s; filename=%q", disposition, art.Name))
	_, _ = w.Write(art.Data)
}

type kv struct{ Key, Value string }

// varList shows a run's variables sorted, each value as JSON cut to a readable length.
func varList(vars map[string]any) []kv {
	out := make([]kv, 0, len(vars))
	for k, v := range vars {
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte(fmt.Sprint(v))
		}
		out = append(out, kv{k, text.Ellipsis(string(b), 2000)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
