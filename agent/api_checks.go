package agent

// The checks resource of the HTTP API: every check with its last result, and a manual run.

import (
	"context"
	"net/http"
	"time"

	"github.com/vigil-monitor/vigil/checks"
)

// checkView is a check with its last result.
type checkView struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Services []string `json:"services,omitempty"`
	Every    string   `json:"every"`
	Incident bool     `json:"incident_open"`
	// Muted names the silence, maintenance window or inhibition (inhibit_checks) that muted
	// the open incident's opening, while nobody has been told of it.
	Muted   string        `json:"incident_muted,omitempty"`
	Last    *resultView   `json:"last,omitempty"`
	Notify  []string      `json:"notify,omitempty"`
	Timeout time.Duration `json:"-"`
}

type resultView struct {
	Outcome    string         `json:"outcome"`
	Reasons    []string       `json:"reasons,omitempty"`
	Started    time.Time      `json:"started"`
	DurationMS float64        `json:"duration_ms"`
	Attempts   int            `json:"attempts,omitempty"`
	Vars       map[string]any `json:"vars,omitempty"`
	Transcript []string       `json:"transcript,omitempty"`
	Artifacts  []string       `json:"artifacts,omitempty"`
	RunURL     string         `json:"run_url,omitempty"`
}

func viewResult(r *checks.Result, runURL string, full bool) *resultView {
	v := &resultView{Outcome: string(r.Outcome), Reasons: r.Reasons, Started: r.Started.UTC(),
		DurationMS: float64(r.Duration.Microseconds()) / 1000, Attempts: r.Attempts, RunURL: runURL}
	if full {
		v.Vars, v.Transcript = r.Vars, r.Transcript
	}
	for _, art := range r.Artifacts {
		v.Artifacts = append(v.Artifacts, art.Name)
	}
	return v
}

func (a *Agent) listChecks(w http.ResponseWriter, r *http.Request) {
	rt := a.Runtime()
	a.incView.RLock()
	open, muted := map[string]bool{}, map[string]string{}
	for n, in := range a.incidents {
		open[n] = in.Open
		if in.Open {
			muted[n] = in.Muted
		}
	}
	a.incView.RUnlock()
	out := make([]*checkView, 0, len(rt.Order))
	for _, c := range rt.Order {
		v := &checkView{Name: c.Name, Kind: c.Kind, Services: rt.CheckServices[c.Name], Every: c.Config.Every.String(),
			Incident: open[c.Name], Muted: muted[c.Name], Notify: c.Config.Notify}
		if res := a.lastResult(c.Name); res != nil {
			v.Last = viewResult(res, "", false)
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"checks": out})
}

func (a *Agent) runCheck(w http.ResponseWriter, r *http.Request) {
	rt := a.Runtime()
	name := r.PathValue("name")
	c := rt.Checks[name]
	if c == nil {
		writeError(w, http.StatusNotFound, "%s", unknownCheck(rt, name))
		return
	}
	if r.ContentLength > 0 {
		writeError(w, http.StatusBadRequest, "this endpoint takes no body: the check runs as configured")
		return
	}
	retries := time.Duration(*c.Config.Retries)
	a.extendWriteDeadline(w, (retries+1)*c.Timeout+retries*5*time.Second)
	release, ok := a.sched.Acquire(r.Context(), c)
	if !ok {
		return // the caller went away while the run waited for a slot
	}
	res, ok := a.execute(r.Context(), c, checks.Input{}, "")
	release()
	if !ok {
		return // the caller went away: a cancelled run is not a result
	}
	sr := toStoreRun(res, "")
	if err := a.writer.saveNow(context.WithoutCancel(r.Context()), sr); err != nil {
		a.log.Error("saving a manual run failed", "check", name, "error", err)
	}
	writeJSON(w, http.StatusOK, struct {
		Check string `json:"check"`
		*resultView
	}{name, viewResult(res, a.runURL(sr.ID), true)})
}
