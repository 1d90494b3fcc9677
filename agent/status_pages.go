package agent

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

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
	Streak                           string // the incident rule and this location's streak on it
	Muted                            string
	Untold                           string // what muted the open incident's opening, while nobody was told
	LastAt                           time.Time
	Uptime                           [3]uptimeCell
	Latency                          string
	Bars                             template.HTML
	History                          string // while the uptime figures count part of their window
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
		a.unknownCheckPage(w, r, rt, r.PathValue("name"))
		return
	}
	now := a.clock.Now()
	v := &checkPageView{pageMeta: a.meta(r, c.Name, true), Name: c.Name, Kind: c.Kind, Every: c.Config.Every.String(),
		Timeout: c.Timeout.String(), Services: rt.CheckServices[c.Name], Labels: labelList(c.Config.Labels), Class: "warn", State: "not run yet"}
	v.Owners, v.Runbook = a.contacts(rt, c)
	v.Incident = a.openIncidents()[c.Name]
	a.incView.RLock()
	var cl *store.CheckLocation
	if in := a.incidents[c.Name]; in != nil && in.Open {
		v.Untold = in.Muted
	}
	if s := a.streaks[c.Name]; s != nil {
		copied := *s
		cl = &copied
	}
	a.incView.RUnlock()
	v.Streak = streakNote(c.Config, cl)
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
	inhibited := map[string]*inhibitionView{}
	for _, svc := range v.Services {
		if in := a.inhibition(rt, svc, now); in != nil {
			inhibited[svc] = in
		}
	}
	v.Muted = mutedCheck(a.mutes(rt, page.Silences, inhibited, now), c.Name, v.Services)
	st, _ := a.board.stats(c.Name, now)
	v.Bars = uptimeBars(&st, nil)
	v.Uptime = uptimeCells(st)
	v.History = historyNote(st)
	v.Latency = dayAverage(&st)
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
	Deploy *store.Deploy
	Class  string
	Took   string
	Passed string
	// Ready is how long after registration every check had passed once ("" until then).
	Ready string
	Links []store.Link
	// RolledBack is the failed deploy this one put the service back from (its rollback_of).
	RolledBack *store.Deploy
	// Blocked says what a preflight of this failed deploy's version answers now ("" when
	// it is clear: a later deploy of the version passed).
	Blocked string
	Checks  []*deployCheckView
	// Locations are the verdicts each agent reported for its location, then, while the
	// deploy verifies, the agents the verdict still waits for (see "Running several agents").
	Locations []*store.LocationReport
	Events    []*eventView
	Refresh   bool
}

type deployCheckView struct {
	*DeployCheck
	Class      string
	RunID      int64
	Screenshot string
	// Ready is how long after the deploy the check first passed ("" until it has), and
	// Usual how long it usually takes ("" until known).
	Ready, Usual string
}

func (a *Agent) deployPage(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	d, err := a.store.Deploy(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		a.pageError(w, r, http.StatusNotFound, fmt.Sprintf("no such deploy %q: it may be %s, mistyped, or from an agent with another store",
			text.Ellipsis(r.PathValue("id"), 80), a.pastRetention()), nil)
		return
	} else if err != nil {
		a.storeFailedPage(w, r, "deploy", r.PathValue("id"), err)
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
		if dc.ReadyMS != nil {
			cv.Ready = (time.Duration(*dc.ReadyMS) * time.Millisecond).String()
		}
		if dc.UsualReadyMS != nil {
			cv.Usual = (time.Duration(*dc.UsualReadyMS) * time.Millisecond).String()
		}
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
	if ms := readyMS(list); ms != nil {
		v.Ready = (time.Duration(*ms) * time.Millisecond).String()
	}
	if v.Links, err = a.store.DeployLinks(r.Context(), d.ID); err != nil {
		a.log.Warn("reading a deploy's links failed", "deploy", d.ID, "error", err)
	}
	if d.RollbackOf != "" {
		if v.RolledBack, err = a.store.Deploy(r.Context(), d.RollbackOf); err != nil {
			a.log.Warn("reading the deploy a rollback rolled back failed", "deploy", d.ID, "rollback_of", d.RollbackOf, "error", err)
		}
	}
	if d.Status == store.StatusFailed {
		if p, err := a.Preflight(r.Context(), d.Service, d.Version); err == nil && !p.Clear {
			for _, n := range p.Blocked {
				if n.Rule == "version_failed" {
					v.Blocked = fmt.Sprintf("a pipeline's preflight of %s %s is blocked until a deploy of it passes (vigil preflight --service %s --version %s)",
						d.Service, d.Version, d.Service, d.Version)
				}
			}
		}
	}
	if v.Locations, err = a.store.LocationReports(r.Context(), d.ID); err != nil {
		a.log.Warn("reading a deploy's location reports failed", "deploy", d.ID, "error", err)
	}
	if d.Status == store.StatusVerifying {
		v.Locations = append(v.Locations, a.pendingAgents(r.Context(), d, v.Locations)...)
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

// pendingAgents are the agents a verifying deploy's verdict still waits for, as rows
// beside the reports: verifying, not reported yet.
func (a *Agent) pendingAgents(ctx context.Context, d *store.Deploy, reports []*store.LocationReport) []*store.LocationReport {
	awaited, err := a.awaitedAgents(ctx, d)
	if err != nil {
		a.log.Warn("reading the agents a deploy waits for failed", "deploy", d.ID, "error", err)
		return nil
	}
	var out []*store.LocationReport
	for _, loc := range sortedKeys(awaited) {
		if len(d.Locations) > 0 && !slices.Contains(d.Locations, loc) {
			continue
		}
		for _, name := range awaited[loc] {
			if !slices.ContainsFunc(reports, func(r *store.LocationReport) bool { return r.Agent == name }) {
				out = append(out, &store.LocationReport{DeployID: d.ID, Location: loc, Agent: name, Status: store.StatusVerifying,
					Reason: "not reported yet: the verdict waits for it"})
			}
		}
	}
	return out
}
