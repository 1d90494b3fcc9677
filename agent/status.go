package agent

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// The status page is server-rendered HTML with no script: checks with their last result
// and latency history, deploys and verdicts, runs with their evidence (screenshots
// included). It is what a Slack message links to.

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"ms":      func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) },
	"spark":   sparkline,
	"isImage": func(name string) bool { return strings.HasSuffix(name, ".png") },
}).ParseFS(templateFS, "templates/*.html"))

func (a *Agent) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
	var b strings.Builder
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		a.log.Error("rendering the status page failed", "page", name, "error", err)
		http.Error(w, "rendering failed", http.StatusInternalServerError)
		return
	}
	_, _ = fmt.Fprint(w, b.String())
}

type checkRow struct {
	Name, Kind, Services string
	Last                 *checks.Result
	Open                 bool
	History              []store.RunPoint
}

func (a *Agent) statusPage(w http.ResponseWriter, r *http.Request) {
	rt := a.Runtime()
	ctx := r.Context()
	now := a.clock.Now()
	a.incMu.Lock()
	open := map[string]bool{}
	for n, in := range a.incidents {
		open[n] = in.Open
	}
	a.incMu.Unlock()
	var rows []checkRow
	for _, c := range rt.Order {
		hist, _ := a.store.History(ctx, c.Name, now.Add(-24*time.Hour), 60)
		rows = append(rows, checkRow{Name: c.Name, Kind: c.Kind, Services: strings.Join(rt.CheckServices[c.Name], ", "),
			Last: a.lastResult(c.Name), Open: open[c.Name], History: hist})
	}
	deploys, _ := a.store.Deploys(ctx, "", 20)
	failures, _ := a.store.RecentFailures(ctx, 10)
	a.render(w, "index.html", map[string]any{"Location": rt.Config.Agent.Location, "Checks": rows, "Deploys": deploys,
		"Failures": failures, "Now": now, "Version": a.opts.Version})
}

func (a *Agent) checkPage(w http.ResponseWriter, r *http.Request) {
	rt := a.Runtime()
	c := rt.Checks[r.PathValue("name")]
	if c == nil {
		http.Error(w, "no such check", http.StatusNotFound)
		return
	}
	hist, _ := a.store.History(r.Context(), c.Name, a.clock.Now().Add(-7*24*time.Hour), 500)
	recent, _ := a.store.RecentRuns(r.Context(), c.Name, a.clock.Now().Add(time.Second), 30)
	a.render(w, "check.html", map[string]any{"Check": c, "Services": strings.Join(rt.CheckServices[c.Name], ", "),
		"History": hist, "Runs": recent})
}

func (a *Agent) deployPage(w http.ResponseWriter, r *http.Request) {
	d, err := a.store.Deploy(r.Context(), r.PathValue("id"))
	if err != nil {
		http.Error(w, "no such deploy", http.StatusNotFound)
		return
	}
	list, _ := a.DeployChecks(r.Context(), d)
	a.render(w, "deploy.html", map[string]any{"Deploy": d, "Checks": list})
}

func (a *Agent) runFromPath(ctx context.Context, w http.ResponseWriter, r *http.Request) *store.RunRecord {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "run ids are numbers", http.StatusBadRequest)
		return nil
	}
	run, err := a.store.RunByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "no such run (it may be past the retention period)", http.StatusNotFound)
		return nil
	} else if err != nil {
		http.Error(w, "reading the run failed", http.StatusInternalServerError)
		return nil
	}
	return run
}

func (a *Agent) runPage(w http.ResponseWriter, r *http.Request) {
	if run := a.runFromPath(r.Context(), w, r); run != nil {
		a.render(w, "run.html", map[string]any{"Run": run, "Vars": varList(run.Vars), "TraceURL": a.opts.Tracing.TraceURL(run.TraceID)})
	}
}

func (a *Agent) artifact(w http.ResponseWriter, r *http.Request) {
	run := a.runFromPath(r.Context(), w, r)
	if run == nil {
		return
	}
	art, err := a.store.ArtifactData(r.Context(), run.ID, r.PathValue("name"))
	if err != nil {
		http.Error(w, "no such artifact", http.StatusNotFound)
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

// sparkline draws run durations as an inline SVG bar chart; failing runs are red.
func sparkline(points []store.RunPoint) template.HTML {
	if len(points) == 0 {
		return ""
	}
	var maxD time.Duration
	for _, p := range points {
		maxD = max(maxD, p.Duration)
	}
	if maxD == 0 {
		maxD = 1
	}
	const h, bw = 24, 4
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" role="img" aria-label="latency history">`, len(points)*bw, h)
	for i, p := range points {
		bh := max(1, int(float64(h)*float64(p.Duration)/float64(maxD)))
		color := "#3a3"
		if p.Outcome != string(checks.Pass) {
			color = "#d33"
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s %s ms</title></rect>`,
			i*bw, h-bh, bw-1, bh, color, p.Outcome, strconv.FormatFloat(float64(p.Duration.Microseconds())/1000, 'f', 1, 64))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // only numbers and fixed outcome names go in
}
