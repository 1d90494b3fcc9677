package agent

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// ---- the overview ----

type indexView struct {
	pageMeta
	Query, GroupBy string
	Groupings      []option
	Total, Shown   int
	// Suggest is, for a search that matches no check, the search with a misspelt term
	// replaced by the nearest name a check has; SuggestURL runs it.
	Suggest, SuggestURL string
	// Hidden are the rows the page leaves out past overviewRows; All shows them.
	Hidden       int
	All          string
	Counts       []countView
	Overall      string
	OverallClass string
	Banners      []bannerView
	Groups       []*groupView
	Services     []*serviceView
	Events       []*eventView
	// Agents are the agents sharing the store (PostgreSQL); none for one agent on SQLite.
	Agents []memberView
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
	index          int // in the page's Groups: its rows' marker (RowsMark)
	// Hidden are the group's rows left out past overviewRows, HiddenFailing of them failing.
	Hidden, HiddenFailing int
}

type rowView struct {
	Name, Kind, Class, State string
	Services                 []string
	Last                     string
	LastAt                   time.Time
	Reason                   string
	Incident                 bool
	Muted                    string

	check *checks.Check
	// figures reads the row's labels, bars, uptime and average as it is written (nil: a
	// row with none); the page's shown rows share it.
	figures *rowFigures
}

// uptimeCell is an uptime figure; Title says why it is marked partial when it is.
type uptimeCell struct{ Text, Class, Title string }

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

// overviewRows is how many check rows the overview shows unless asked for all (?all=1):
// the failing first, then the others in their order, each group saying how many of its
// own it leaves out. A row is about 5 KB of HTML, most of it the day's bars; the page of
// 10,000 checks was 47 MB, 320 MB allocated and half a second of CPU to make, and more
// than a browser shows a reader, who searches or groups instead.
const overviewRows = 1000

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
	inhibited := a.inhibitions(rt, now)
	muted := a.mutes(rt, ov.Silences, inhibited, now)
	v.Banners = a.banners(rt, ov.Silences, inhibited, now)
	if note := historyNote(a.board.history(now)); note != "" {
		v.Banners = append(v.Banners, bannerView{Class: "history", Title: "Uptime in part", Text: "Figures in italics count " + note + "."})
	}

	rows := map[string]*rowView{}
	var passing, failing, other int
	for _, c := range rt.Order {
		row := a.row(rt, c, open[c.Name], muted)
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
		gv.index = len(v.Groups)
		v.Groups = append(v.Groups, gv)
	}
	v.Shown = len(shown)
	if v.Shown == 0 && v.Query != "" {
		if v.Suggest = didYouSearch(rt, v.Query); v.Suggest != "" {
			sq := cloneQuery(q)
			sq.Set("q", v.Suggest)
			v.SuggestURL = withQuery("/", sq)
		}
	}
	limit := overviewRows
	if all, _ := strconv.ParseBool(q.Get("all")); all { // ?all=0 or ?all=junk: the limit holds
		limit = math.MaxInt
	}
	v.Hidden = keepRows(v.Groups, limit)
	all := cloneQuery(q)
	all.Set("all", "1")
	v.All = withQuery("/", all) + "#checks"
	figures := a.rowFigures(now)
	for _, g := range v.Groups {
		for _, row := range g.Rows {
			row.figures = figures
		}
	}
	v.Services = a.serviceTimelines(rt, ov, muted, now)
	for _, e := range ov.Events {
		v.Events = append(v.Events, viewEvent(e))
	}
	if a.shared() {
		v.Agents, _ = a.memberViews(r.Context())
	}
	a.render(w, "index.html", v, began)
}

// didYouSearch is, for a search that matches no check, the search with each term found in
// nothing a check has replaced by the nearest name, service, kind or label there is ("wbe"
// by "web"); "" when no term is near one.
func didYouSearch(rt *Runtime, query string) string {
	vocab := map[string]bool{"failing": true}
	for _, c := range rt.Order {
		vocab[strings.ToLower(c.Name)], vocab[c.Kind] = true, true
		for k, v := range c.Config.Labels {
			vocab[strings.ToLower(k+"="+v)] = true
		}
	}
	for s := range rt.Config.Services {
		vocab[strings.ToLower(s)] = true
	}
	words := slices.Sorted(maps.Keys(vocab))
	terms := strings.Fields(strings.ToLower(query))
	changed := false
	for i, t := range terms {
		if slices.ContainsFunc(words, func(w string) bool { return strings.Contains(w, t) }) {
			continue
		}
		if n := configs.Nearest(t, words); n != "" {
			terms[i], changed = n, true
		}
	}
	if !changed {
		return ""
	}
	return strings.Join(terms, " ")
}

func cloneQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, vs := range q {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// keepRows keeps at most limit of the groups' rows, the failing ones first, then the
// others in the groups' order, and says in each group how many it left out; it returns
// how many in all. A check in two groups is a row in each.
func keepRows(groups []*groupView, limit int) int {
	failingRow := func(r *rowView) bool { return r.Class == "bad" || r.Class == "err" }
	kept := make([][]bool, len(groups))
	for i, g := range groups {
		kept[i] = make([]bool, len(g.Rows))
	}
	for _, failing := range []bool{true, false} {
		for i, g := range groups {
			for j, r := range g.Rows {
				if limit > 0 && failingRow(r) == failing {
					kept[i][j] = true
					limit--
				}
			}
		}
	}
	hidden := 0
	for i, g := range groups {
		rows := g.Rows[:0]
		for j, r := range g.Rows {
			if kept[i][j] {
				rows = append(rows, r)
				continue
			}
			g.Hidden++
			if failingRow(r) {
				g.HiddenFailing++
			}
		}
		g.Rows = rows
		hidden += g.Hidden
	}
	return hidden
}
