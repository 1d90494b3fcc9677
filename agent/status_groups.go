package agent

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// openIncidents are the checks whose scheduled-monitoring incident is open.
func (a *Agent) openIncidents() map[string]bool {
	a.incView.RLock()
	defer a.incView.RUnlock()
	open := map[string]bool{}
	for n, in := range a.incidents {
		open[n] = in.Open
	}
	return open
}

// mutes says, by "check:NAME" and "service:NAME", what silences, maintenance windows or
// failed deploys (inhibit_checks) mute right now.
func (a *Agent) mutes(rt *Runtime, silences []*store.Silence, inhibited map[string]*inhibitionView, now time.Time) map[string]string {
	out := map[string]string{}
	for svc, in := range inhibited {
		out["service:"+svc] = "inhibited until " + in.until.UTC().Format("15:04Z") + " by deploy " + in.deploy.Version + "'s failure"
	}
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

func (a *Agent) banners(rt *Runtime, silences []*store.Silence, inhibited map[string]*inhibitionView, now time.Time) []bannerView {
	var out []bannerView
	for _, svc := range slices.Sorted(maps.Keys(inhibited)) {
		in := inhibited[svc]
		text := fmt.Sprintf("checks of service %s until %s (%s left), or until a deploy of it passes: deploy %s (%s) failed at %s", svc,
			in.until.UTC().Format("2006-01-02 15:04Z"), in.until.Sub(now).Round(time.Minute), in.deploy.Version, in.deploy.ID, in.deploy.DecidedAt.UTC().Format("15:04Z"))
		out = append(out, bannerView{Class: "silence", Title: "Inhibited", Text: text + ". Their incidents are recorded, and sent if still open then."})
	}
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

// row is a check's row as far as the counts and the search need it: its class and state,
// its services and its last run. The board's figures are added as the row is written
// (rowFigures).
func (a *Agent) row(rt *Runtime, c *checks.Check, incident bool, muted map[string]string) *rowView {
	row := &rowView{Name: c.Name, Kind: c.Kind, Services: rt.CheckServices[c.Name], Incident: incident, Class: "warn", State: "not run yet", check: c}
	row.Muted = mutedCheck(muted, c.Name, row.Services)
	if res := a.lastResult(c.Name); res != nil {
		row.Class, row.State = statusClass(string(res.Outcome)), string(res.Outcome)
		row.Last, row.LastAt = fmtDuration(res.Duration), res.Started
		if res.Outcome != checks.Pass {
			row.Reason = text.Ellipsis(res.Summary(), 300)
		}
	}
	return row
}

// rowFigures are the board's figures of the rows a page shows (the day's bars, the uptime
// cells, the day's average, and the labels): most of a row's bytes and time, read from the
// board as each row is written, into the one checkStats of the page. Held for every row
// until the page was done they were 1.4 MB at 1,000 rows, each page at once its own.
type rowFigures struct {
	board  *board
	now    time.Time
	labels *barLabels // the bars' times, the same for every row
	st     checkStats
}

func (a *Agent) rowFigures(now time.Time) *rowFigures {
	return &rowFigures{board: a.board, now: now,
		labels: newBarLabels(time.Unix(0, (now.UnixNano()/int64(barWidth)-barsShown+1)*int64(barWidth)))}
}

// of reads the row's figures into f.st, valid until the next row's are read.
func (f *rowFigures) of(row *rowView) (st *checkStats, uptime [3]uptimeCell, average string) {
	f.st, _ = f.board.stats(row.Name, f.now)
	return &f.st, uptimeCells(f.st), dayAverage(&f.st)
}

// dayAverage is the average duration of the last 24 h's runs as the pages print it; ""
// when there were none.
func dayAverage(st *checkStats) string {
	if st.Day.total() == 0 {
		return ""
	}
	return fmtMS(st.Day.avgMS())
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
	case store.StatusCancelled:
		return "cancelled " + took + " after it was registered"
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
	case "deploy_cancelled":
		v.Icon, v.Class, v.Title = "⊘", "muted", "deploy of "+e.Service+" cancelled"
	case "deploy_superseded":
		v.Icon, v.Class, v.Title = "↷", "muted", "deploy of "+e.Service+" superseded"
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
