package agent

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
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
	m := pageMeta{Title: title, Location: a.Runtime().Config.Agent.Location, Version: a.opts.Version, Now: a.clock.Now(),
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
// writes how long building it took where the layout asked for it.
func (a *Agent) render(w http.ResponseWriter, name string, data any, began time.Time) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		a.log.Error("rendering the status page failed", "page", name, "error", err)
		http.Error(w, "rendering failed", http.StatusInternalServerError)
		return
	}
	took := strconv.FormatFloat(float64(time.Since(began).Microseconds())/1000, 'f', 1, 64) + " ms"
	out := bytes.Replace(b.Bytes(), []byte(buildMarker), []byte(took), 1)
	_, _ = w.Write(out)
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
		http.Error(w, "the theme is light, dark or auto", http.StatusNotFound)
		return
	}
	http.SetCookie(w, c)
	back := r.URL.Query().Get("back")
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || strings.HasPrefix(back, "/\\") {
		back = "/"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// ---- the overview ----

type indexView struct {
	pageMeta
	Query, GroupBy string
	Groupings      []option
	Total, Shown   int
	Counts         []countView
	Overall        string
	OverallClass   string
	Banners        []bannerView
	Groups         []*groupView
	Services       []*serviceView
	Events         []*eventView
}

type option struct {
	Value, Label string
	Selected     bool
	URL          string
}

type countView struct {
	N            int
	Label, Class string
}

type bannerView struct{ Class, Title, Text string }

type groupView struct {
	Name, Key      string
	Closed         bool
	Toggle         string
	Checks, Failed int
	Class          string
	Rows           []*rowView
}

type rowView struct {
	Name, Kind, Class, State string
	Labels                   []kv
	Services                 []string
	Bars                     template.HTML
	Uptime                   [3]uptimeCell // 1 h, 24 h, 7 d
	Latency, Last            string
	LastAt                   time.Time
	Reason                   string
	Incident                 bool
	Muted                    string
}

type uptimeCell struct{ Text, Class string }

type serviceView struct {
	Name    string
	Muted   string
	Deploys []*deployCard
}

type deployCard struct {
	ID, Version, Environment, Status, Class, Took string
	At                                            time.Time
	Check, Reason, Screenshot                     string
	RunID                                         int64
	Actions                                       []*eventView
	Links                                         []store.Link
}

type eventView struct {
	At                     time.Time
	Icon, Class, Title     string
	Text                   string
	Check, Service, Deploy string
	RunID                  int64
}

// overviewDeploys is how many deploys of each service the overview's timeline shows;
// overviewEvents how many events.
const (
	overviewDeploys = 6
	overviewEvents  = 40
)

func (a *Agent) statusPage(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	rt := a.Runtime()
	now := a.clock.Now()
	ov, err := a.store.Overview(r.Context(), now, overviewDeploys, overviewEvents)
	if err != nil {
		a.log.Warn("reading the status page's deploys and events failed", "error", err)
		ov = &store.Overview{}
	}
	v := &indexView{pageMeta: a.meta(r, "status", true)}
	v.Title = "vigil status"
	if v.Location != "" {
		v.Title += " · " + v.Location
	}
	q := r.URL.Query()
	v.Query = strings.TrimSpace(q.Get("q"))
	v.GroupBy = q.Get("group")
	v.Groupings = groupings(rt, r, &v.GroupBy)
	closed := map[string]bool{}
	for _, k := range strings.Split(q.Get("closed"), ",") {
		if k != "" {
			closed[k] = true
		}
	}
	open := a.openIncidents()
	muted := a.mutes(rt, ov.Silences, now)
	v.Banners = a.banners(rt, ov.Silences, now)

	rows := map[string]*rowView{}
	var passing, failing, other int
	labels := newBarLabels(time.Unix(0, (now.UnixNano()/int64(barWidth)-barsShown+1)*int64(barWidth)))
	for _, c := range rt.Order {
		row := a.row(rt, c, now, open[c.Name], muted, labels)
		rows[c.Name] = row
		switch row.Class {
		case "ok":
			passing++
		case "bad", "err":
			failing++
		default:
			other++
		}
	}
	v.Total = len(rt.Order)
	v.Counts = []countView{{passing, "passing", "ok"}, {failing, "failing", "bad"}, {other, "other", "warn"}}
	switch {
	case v.Total == 0:
		v.Overall, v.OverallClass = "No checks configured", "warn"
	case failing > 0:
		v.Overall, v.OverallClass = fmt.Sprintf("%d of %d checks failing", failing, v.Total), "bad"
	case passing == v.Total:
		v.Overall, v.OverallClass = "All checks passing", "ok"
	default:
		v.Overall, v.OverallClass = fmt.Sprintf("%d of %d checks passing", passing, v.Total), "warn"
	}

	terms := strings.Fields(strings.ToLower(v.Query))
	shown := map[string]bool{}
	for _, g := range groupChecks(rt, v.GroupBy) {
		gv := &groupView{Name: g.name, Key: g.key, Closed: closed[g.key]}
		for _, c := range g.checks {
			row := rows[c.Name]
			if !matches(terms, c, row, rt.CheckServices[c.Name]) {
				continue
			}
			shown[c.Name] = true
			gv.Checks++
			if row.Class == "bad" || row.Class == "err" {
				gv.Failed++
			}
			gv.Rows = append(gv.Rows, row)
		}
		if gv.Checks == 0 {
			continue
		}
		gv.Class = "ok"
		if gv.Failed > 0 {
			gv.Class = "bad"
		}
		toggle := cloneQuery(q)
		set := map[string]bool{}
		for k := range closed {
			set[k] = true
		}
		set[g.key] = !closed[g.key]
		var keys []string
		for k, on := range set {
			if on {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		toggle.Del("closed")
		if len(keys) > 0 {
			toggle.Set("closed", strings.Join(keys, ","))
		}
		gv.Toggle = withQuery("/", toggle) + "#g-" + g.key
		if gv.Closed {
			gv.Rows = nil
		}
		v.Groups = append(v.Groups, gv)
	}
	v.Shown = len(shown)
	v.Services = a.serviceTimelines(rt, ov, muted, now)
	for _, e := range ov.Events {
		v.Events = append(v.Events, viewEvent(e))
	}
	a.render(w, "index.html", v, began)
}

func cloneQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, vs := range q {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// openIncidents are the checks whose scheduled-monitoring incident is open.
func (a *Agent) openIncidents() map[string]bool {
	a.incMu.Lock()
	defer a.incMu.Unlock()
	open := map[string]bool{}
	for n, in := range a.incidents {
		open[n] = in.Open
	}
	return open
}

// mutes says, by "check:NAME" and "service:NAME", what silences or maintenance windows
// mute right now.
func (a *Agent) mutes(rt *Runtime, silences []*store.Silence, now time.Time) map[string]string {
	out := map[string]string{}
	for _, s := range silences {
		if s.Starts.After(now) {
			continue
		}
		why := "silenced until " + s.Ends.UTC().Format("15:04Z") + ": " + s.Reason
		if s.Check != "" {
			out["check:"+s.Check] = why
		} else {
			out["service:"+s.Service] = why
		}
	}
	for _, w := range rt.Maintenance.ActiveAll(now) {
		why := "maintenance " + w.Name + " until " + w.End.UTC().Format("15:04Z")
		if len(w.Checks) == 0 && len(w.Services) == 0 {
			out["*"] = why
		}
		for _, c := range w.Checks {
			out["check:"+c] = why
		}
		for _, s := range w.Services {
			out["service:"+s] = why
		}
	}
	return out
}

func mutedCheck(muted map[string]string, check string, services []string) string {
	if m := muted["check:"+check]; m != "" {
		return m
	}
	for _, s := range services {
		if m := muted["service:"+s]; m != "" {
			return m
		}
	}
	return muted["*"]
}

func (a *Agent) banners(rt *Runtime, silences []*store.Silence, now time.Time) []bannerView {
	var out []bannerView
	for _, w := range rt.Maintenance.ActiveAll(now) {
		scope := "everything"
		switch {
		case len(w.Services) > 0 && len(w.Checks) > 0:
			scope = "services " + strings.Join(w.Services, ", ") + " and checks " + strings.Join(w.Checks, ", ")
		case len(w.Services) > 0:
			scope = "services " + strings.Join(w.Services, ", ")
		case len(w.Checks) > 0:
			scope = "checks " + strings.Join(w.Checks, ", ")
		}
		text := fmt.Sprintf("%s until %s (%s left)", scope, w.End.UTC().Format("2006-01-02 15:04Z"), w.End.Sub(now).Round(time.Minute))
		if w.Reason != "" {
			text += ": " + w.Reason
		}
		out = append(out, bannerView{Class: "maint", Title: "Maintenance " + w.Name, Text: text + ". Failures are recorded, not sent."})
	}
	for _, s := range silences {
		if s.Starts.After(now) {
			continue
		}
		what := "service " + s.Service
		if s.Check != "" {
			what = "check " + s.Check
		}
		text := fmt.Sprintf("%s until %s (%s left): %s", what, s.Ends.UTC().Format("2006-01-02 15:04Z"), s.Ends.Sub(now).Round(time.Minute), s.Reason)
		if s.CreatedBy != "" {
			text += " — " + s.CreatedBy
		}
		out = append(out, bannerView{Class: "silence", Title: "Silenced", Text: text + ". Failures are recorded, not sent."})
	}
	return out
}

func (a *Agent) row(rt *Runtime, c *checks.Check, now time.Time, incident bool, muted map[string]string, labels *barLabels) *rowView {
	row := &rowView{Name: c.Name, Kind: c.Kind, Services: rt.CheckServices[c.Name], Incident: incident, Class: "warn", State: "not run yet"}
	row.Labels = labelList(c.Config.Labels)
	row.Muted = mutedCheck(muted, c.Name, row.Services)
	st, _ := a.board.stats(c.Name, now)
	row.Bars = uptimeBars(st, labels)
	for i, b := range []bucket{st.Hour, st.Day, st.Week} {
		row.Uptime[i].Text, row.Uptime[i].Class = uptime(b)
	}
	if n := st.Day.total(); n > 0 {
		row.Latency = fmtMS(st.Day.sumMS / float64(n))
	}
	if res := a.lastResult(c.Name); res != nil {
		row.Class, row.State = statusClass(string(res.Outcome)), string(res.Outcome)
		row.Last, row.LastAt = fmtDuration(res.Duration), res.Started
		if res.Outcome != checks.Pass {
			row.Reason = text.Ellipsis(res.Summary(), 300)
		}
	}
	return row
}

func labelList(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// matches reports whether a check has every search term in its name, kind, services,
// labels (key=value) or state.
func matches(terms []string, c *checks.Check, row *rowView, services []string) bool {
	if len(terms) == 0 {
		return true
	}
	hay := []string{strings.ToLower(c.Name), c.Kind, row.State}
	if row.Class == "bad" || row.Class == "err" {
		hay = append(hay, "failing")
	}
	for _, s := range services {
		hay = append(hay, strings.ToLower(s))
	}
	for k, v := range c.Config.Labels {
		hay = append(hay, strings.ToLower(k+"="+v))
	}
	for _, t := range terms {
		found := false
		for _, h := range hay {
			if strings.Contains(h, t) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

type checkGroup struct {
	name, key string
	checks    []*checks.Check
}

// groupings lists the ways to group checks: by service, by each label key the config
// uses, by kind, or not at all; it fixes *by to a valid one.
func groupings(rt *Runtime, r *http.Request, by *string) []option {
	values := []string{"service"}
	keys := map[string]bool{}
	for _, c := range rt.Order {
		for k := range c.Config.Labels {
			keys[k] = true
		}
	}
	var labelKeys []string
	for k := range keys {
		labelKeys = append(labelKeys, "label:"+k)
	}
	sort.Strings(labelKeys)
	values = append(values, labelKeys...)
	values = append(values, "kind", "none")
	valid := false
	for _, v := range values {
		valid = valid || v == *by
	}
	if !valid {
		*by = "service"
	}
	out := make([]option, 0, len(values))
	for _, v := range values {
		q := cloneQuery(r.URL.Query())
		q.Del("closed")
		q.Set("group", v)
		label := v
		if k, ok := strings.CutPrefix(v, "label:"); ok {
			label = "label " + k
		}
		out = append(out, option{Value: v, Label: label, Selected: v == *by, URL: withQuery("/", q)})
	}
	return out
}

// groupChecks puts the checks into groups; a check in several services is in each.
func groupChecks(rt *Runtime, by string) []checkGroup {
	var out []checkGroup
	inGroup := map[string]bool{}
	rest := func(name, key string) {
		g := checkGroup{name: name, key: key}
		for _, c := range rt.Order {
			if !inGroup[c.Name] {
				g.checks = append(g.checks, c)
			}
		}
		if len(g.checks) > 0 {
			out = append(out, g)
		}
	}
	switch {
	case by == "none":
		return []checkGroup{{name: "all checks", key: "all", checks: rt.Order}}
	case by == "kind":
		for _, k := range configs.Kinds() {
			g := checkGroup{name: k, key: "kind-" + k}
			for _, c := range rt.Order {
				if c.Kind == k {
					g.checks = append(g.checks, c)
				}
			}
			if len(g.checks) > 0 {
				out = append(out, g)
			}
		}
		return out
	case strings.HasPrefix(by, "label:"):
		key := strings.TrimPrefix(by, "label:")
		byValue := map[string][]*checks.Check{}
		for _, c := range rt.Order {
			if v, ok := c.Config.Labels[key]; ok {
				byValue[v] = append(byValue[v], c)
				inGroup[c.Name] = true
			}
		}
		var vals []string
		for v := range byValue {
			vals = append(vals, v)
		}
		sort.Strings(vals)
		for _, val := range vals {
			out = append(out, checkGroup{name: key + "=" + val, key: "l-" + slug(key+"-"+val), checks: byValue[val]})
		}
		rest("no "+key, "l-none")
		return out
	}
	var names []string
	for n := range rt.Config.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		list := rt.serviceChecks(n)
		for _, c := range list {
			inGroup[c.Name] = true
		}
		if len(list) > 0 {
			out = append(out, checkGroup{name: n, key: "s-" + slug(n), checks: list})
		}
	}
	rest("no service", "s-none")
	return out
}

// slug keeps a group key safe in a URL fragment and a query list.
func slug(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
		default:
			b.WriteString("_")
		}
	}
	return b.String()
}

func (a *Agent) serviceTimelines(rt *Runtime, ov *store.Overview, muted map[string]string, now time.Time) []*serviceView {
	by := map[string]*serviceView{}
	var out []*serviceView
	get := func(name string) *serviceView {
		if s := by[name]; s != nil {
			return s
		}
		s := &serviceView{Name: name, Muted: muted["service:"+name]}
		if s.Muted == "" {
			s.Muted = muted["*"]
		}
		by[name] = s
		out = append(out, s)
		return s
	}
	var names []string
	for n := range rt.Config.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		get(n)
	}
	for _, d := range ov.Deploys {
		get(d.Service).Deploys = append(get(d.Service).Deploys, deployCardOf(d, now))
	}
	return out
}

func deployCardOf(d *store.DeployEntry, now time.Time) *deployCard {
	c := &deployCard{ID: d.ID, Version: d.Version, Environment: d.Environment, Status: d.Status, Class: statusClass(d.Status),
		At: d.CreatedAt, Took: timeToVerdict(&d.Deploy, now), Links: d.Links}
	if f := d.FailedRun; f != nil {
		c.Check, c.Reason, c.RunID = f.Check, text.Ellipsis(firstReason(f.Reasons), 300), f.ID
		if f.Screenshot != "" {
			c.Screenshot = fmt.Sprintf("/runs/%d/artifacts/%s", f.ID, url.PathEscape(f.Screenshot))
		}
	}
	for _, e := range d.Events {
		if e.Kind == eventRollback || e.Kind == eventHalt {
			c.Actions = append(c.Actions, viewEvent(e))
		}
	}
	return c
}

// timeToVerdict says how long a deploy took to be decided: "failed 1.4 s after it was
// registered", "passed in 31 s", "verifying for 12 s".
func timeToVerdict(d *store.Deploy, now time.Time) string {
	if d.Status == store.StatusVerifying || d.DecidedAt.IsZero() {
		return "verifying for " + now.Sub(d.CreatedAt).Round(time.Second).String()
	}
	took := fmtDuration(d.DecidedAt.Sub(d.CreatedAt))
	switch d.Status {
	case store.StatusFailed:
		return "failed " + took + " after it was registered"
	case store.StatusPassed:
		return "passed in " + took
	case store.StatusSuperseded:
		return "superseded after " + took
	}
	return d.Status + " after " + took
}

// viewEvent is a timeline event as the page shows it.
func viewEvent(e *store.Event) *eventView {
	v := &eventView{At: e.At, Text: e.Summary, Check: e.Check, Service: e.Service, Deploy: e.DeployID, RunID: e.RunID}
	switch e.Kind {
	case "check_failed":
		v.Icon, v.Class, v.Title = "●", "bad", e.Check+" failing"
	case eventCheckReminder:
		v.Icon, v.Class, v.Title = "●", "bad", e.Check+" still failing"
	case "check_recovered":
		v.Icon, v.Class, v.Title = "✓", "ok", e.Check+" recovered"
	case eventCheckClosed:
		v.Icon, v.Class, v.Title = "–", "warn", e.Check+": incident closed"
	case "deploy_failed":
		v.Icon, v.Class, v.Title = "✗", "bad", "deploy of "+e.Service+" failed"
	case "deploy_passed":
		v.Icon, v.Class, v.Title = "✓", "ok", "deploy of "+e.Service+" passed"
	case "deploy_inconclusive":
		v.Icon, v.Class, v.Title = "?", "warn", "deploy of "+e.Service+" inconclusive"
	case eventRollback:
		v.Icon, v.Class, v.Title = "↩", "run", "rollback of "+e.Service
	case eventHalt:
		v.Icon, v.Class, v.Title = "⏸", "run", "halt of "+e.Service
	case eventSilenceAdded:
		v.Icon, v.Class, v.Title = "🔕", "warn", "silence"
	case eventSilenceRemoved:
		v.Icon, v.Class, v.Title = "🔔", "warn", "silence ended"
	default:
		v.Icon, v.Class, v.Title = "•", "warn", e.Kind
	}
	return v
}

// ---- a check ----

type checkPageView struct {
	pageMeta
	Name, Kind, Class, State, Reason string
	Every, Timeout                   string
	Services                         []string
	Labels                           []kv
	Owners                           []string
	Runbook                          string
	Incident                         bool
	Muted                            string
	LastAt                           time.Time
	Uptime                           [3]uptimeCell
	Latency                          string
	Bars                             template.HTML
	Range                            string
	Ranges                           []option
	Chart                            template.HTML
	Events                           []*eventView
	Runs                             []*store.RunBrief
	Badges                           []badgeSnippet
}

type badgeSnippet struct{ Name, Image, Markdown string }

// chartRanges are the check page's latency chart ranges.
var chartRanges = []struct {
	name string
	span time.Duration
}{{"1h", time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}}

const (
	chartColumns = 160
	recentRuns   = 30
	chartDots    = 300
	checkEvents  = 20
)

func (a *Agent) checkPage(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	rt := a.Runtime()
	c := rt.Checks[r.PathValue("name")]
	if c == nil {
		http.Error(w, "no such check", http.StatusNotFound)
		return
	}
	now := a.clock.Now()
	v := &checkPageView{pageMeta: a.meta(r, c.Name, true), Name: c.Name, Kind: c.Kind, Every: c.Config.Every.String(),
		Timeout: c.Timeout.String(), Services: rt.CheckServices[c.Name], Labels: labelList(c.Config.Labels), Class: "warn", State: "not run yet"}
	v.Owners, v.Runbook = a.contacts(rt, c)
	v.Incident = a.openIncidents()[c.Name]
	v.Range = r.URL.Query().Get("range")
	span := 24 * time.Hour
	found := false
	for _, cr := range chartRanges {
		q := cloneQuery(r.URL.Query())
		q.Set("range", cr.name)
		if cr.name == v.Range {
			span, found = cr.span, true
		}
		v.Ranges = append(v.Ranges, option{Value: cr.name, Label: cr.name, URL: withQuery(r.URL.Path, q)})
	}
	if !found {
		v.Range = "24h"
	}
	for i := range v.Ranges {
		v.Ranges[i].Selected = v.Ranges[i].Value == v.Range
	}
	from := now.Add(-span)
	page, err := a.store.CheckPage(r.Context(), store.CheckQuery{Check: c.Name, Services: v.Services, From: from, To: now,
		Columns: chartColumns, Recent: recentRuns, Failures: chartDots, Events: checkEvents})
	if err != nil {
		a.log.Warn("reading a check's page failed", "check", c.Name, "error", err)
		page = &store.CheckPage{}
	}
	v.Muted = mutedCheck(a.mutes(rt, page.Silences, now), c.Name, v.Services)
	st, _ := a.board.stats(c.Name, now)
	v.Bars = uptimeBars(st, nil)
	for i, b := range []bucket{st.Hour, st.Day, st.Week} {
		v.Uptime[i].Text, v.Uptime[i].Class = uptime(b)
	}
	if n := st.Day.total(); n > 0 {
		v.Latency = fmtMS(st.Day.sumMS / float64(n))
	}
	if res := a.lastResult(c.Name); res != nil {
		v.Class, v.State, v.LastAt = statusClass(string(res.Outcome)), string(res.Outcome), res.Started
		if res.Outcome != checks.Pass {
			v.Reason = res.Summary()
		}
	}
	v.Chart = latencyChart(latencyData{From: from, To: now, Columns: chartColumns, Cols: page.Columns, Failures: page.Failures, Deploys: page.Deploys})
	for _, e := range page.Events {
		v.Events = append(v.Events, viewEvent(e))
	}
	v.Runs = page.Recent
	base := a.baseURL() + "/badges/" + url.PathEscape(c.Name)
	for _, b := range []struct{ name, path string }{{"health", "/health.svg"}, {"uptime", "/uptime.svg?window=24h"}, {"response time", "/response.svg?window=24h"}} {
		v.Badges = append(v.Badges, badgeSnippet{Name: b.name, Image: "/badges/" + url.PathEscape(c.Name) + b.path,
			Markdown: fmt.Sprintf("[![%s](%s%s)](%s/checks/%s)", b.name, base, b.path, a.baseURL(), url.PathEscape(c.Name))})
	}
	v.Badges = append(v.Badges, badgeSnippet{Name: "Shields.io", Markdown: fmt.Sprintf("https://img.shields.io/endpoint?url=%s",
		url.QueryEscape(base+"/shields.json?metric=uptime&window=24h"))})
	a.render(w, "check.html", v, began)
}

// ---- a deploy ----

type deployPageView struct {
	pageMeta
	Deploy  *store.Deploy
	Class   string
	Took    string
	Passed  string
	Links   []store.Link
	Checks  []*deployCheckView
	Events  []*eventView
	Refresh bool
}

type deployCheckView struct {
	*DeployCheck
	Class      string
	RunID      int64
	Screenshot string
}

func (a *Agent) deployPage(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	d, err := a.store.Deploy(r.Context(), r.PathValue("id"))
	if err != nil {
		http.Error(w, "no such deploy", http.StatusNotFound)
		return
	}
	now := a.clock.Now()
	v := &deployPageView{pageMeta: a.meta(r, d.Service+" "+d.Version, d.Status == store.StatusVerifying), Deploy: d,
		Class: statusClass(d.Status), Took: timeToVerdict(d, now)}
	list, err := a.DeployChecks(r.Context(), d)
	if err != nil {
		a.log.Warn("reading a deploy's runs failed", "deploy", d.ID, "error", err)
	}
	passed := 0
	for _, dc := range list {
		cv := &deployCheckView{DeployCheck: dc, Class: statusClass(dc.LastOutcome)}
		switch {
		case dc.Runs == 0:
			cv.Class = "warn"
		case dc.Failed > 0:
			cv.Class = "bad"
		case dc.Passed == dc.Runs:
			passed++
		}
		if f := dc.failedRun; f != nil {
			cv.RunID = f.ID
			for _, art := range f.Artifacts {
				if art.ContentType == "image/png" {
					cv.Screenshot = fmt.Sprintf("/runs/%d/artifacts/%s", f.ID, url.PathEscape(art.Name))
					break
				}
			}
		}
		v.Checks = append(v.Checks, cv)
	}
	v.Passed = fmt.Sprintf("%d of %d checks passed", passed, len(list))
	if v.Links, err = a.store.DeployLinks(r.Context(), d.ID); err != nil {
		a.log.Warn("reading a deploy's links failed", "deploy", d.ID, "error", err)
	}
	events, err := a.store.DeployEvents(r.Context(), d.ID)
	if err != nil {
		a.log.Warn("reading a deploy's events failed", "deploy", d.ID, "error", err)
	}
	for _, e := range events {
		v.Events = append(v.Events, viewEvent(e))
	}
	a.render(w, "deploy.html", v, began)
}

// ---- a run ----

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
