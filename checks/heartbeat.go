package checks

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/vigil-monitor/vigil/configs"
)

// heartbeatVars are the heartbeat kind's variables.
var heartbeatVars = types.Map{
	"since_last_s":         types.Float64,
	"beats":                types.Int,
	"last_version":         types.String,
	"last_status":          types.String,
	"deploy_version_beats": types.Int,
}

// heartbeatKeep bounds the beats kept per check: enough to count a window's beats for jobs
// that beat every few seconds, and no more, whatever a client posts.
const heartbeatKeep = 256

// Beat is one heartbeat a job posted.
type Beat struct {
	At      time.Time `json:"at"`
	Version string    `json:"version,omitempty"`
	// Status is "ok", or "fail" when the job reports its own failure.
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Heartbeats is the agent's record of the beats jobs posted, by check name, in memory:
// after a restart a check waits one window for a beat before it fails (a job cannot be
// blamed for beats sent to an agent that was not running). Safe for concurrent use.
type Heartbeats struct {
	now     func() time.Time
	started time.Time

	mu    sync.Mutex
	beats map[string][]Beat // oldest first, at most heartbeatKeep
}

// NewHeartbeats starts an empty record; now is the agent's clock.
func NewHeartbeats(now func() time.Time) *Heartbeats {
	return &Heartbeats{now: now, started: now(), beats: map[string][]Beat{}}
}

// Record keeps a beat for the check named name, stamped with the clock's time.
func (h *Heartbeats) Record(name string, b Beat) Beat {
	b.At = h.now()
	if b.Status == "" {
		b.Status = "ok"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	list := append(h.beats[name], b)
	if len(list) > heartbeatKeep {
		list = append([]Beat(nil), list[len(list)-heartbeatKeep:]...)
	}
	h.beats[name] = list
	return b
}

// since returns the check's beats at or after t, oldest first, and its last beat ever.
func (h *Heartbeats) since(name string, t time.Time) (recent []Beat, last *Beat) {
	h.mu.Lock()
	defer h.mu.Unlock()
	list := h.beats[name]
	if len(list) == 0 {
		return nil, nil
	}
	l := list[len(list)-1]
	for i := len(list) - 1; i >= 0 && !list[i].At.Before(t); i-- {
		recent = append(recent, list[i])
	}
	for i, j := 0, len(recent)-1; i < j; i, j = i+1, j-1 {
		recent[i], recent[j] = recent[j], recent[i]
	}
	return recent, &l
}

// Heartbeat is the heartbeat kind: it reads the beats the agent received for this check.
// It measures nothing over the network, so there is no connection to keep fresh.
type Heartbeat struct {
	name          string
	window        time.Duration
	requireDeploy bool
	book          *Heartbeats
}

// errNoAgent: a heartbeat check outside the agent has no beats to read.
var errNoAgent = errors.New("heartbeat checks read beats the agent received (POST /api/v1/heartbeats/{name}); run them in vigil agent")

// Probe implements Prober.
func (h *Heartbeat) Probe(_ context.Context, run *Run) error {
	if h.book == nil {
		return errNoAgent
	}
	now := h.book.now()
	recent, last := h.book.since(h.name, now.Add(-h.window))
	run.Vars["beats"] = len(recent)
	run.Vars["deploy_version_beats"] = 0
	if last == nil {
		up := now.Sub(h.book.started)
		run.Unmeasured("no beat received yet", "since_last_s", "last_version", "last_status")
		if up < h.window {
			return Inconclusivef("no beat yet: the agent started %s ago and the window is %s", up.Round(time.Second), h.window)
		}
		run.Failf("no beat in the %s since the agent started (window %s): is the job running, and posting to /api/v1/heartbeats/%s?",
			up.Round(time.Second), h.window, h.name)
		return nil
	}
	ago := now.Sub(last.At)
	run.Vars["since_last_s"] = ago.Seconds()
	run.Vars["last_version"] = last.Version
	run.Vars["last_status"] = last.Status
	run.Transcript.Printf("last beat %s ago (%s, version %q, status %s); %d in the last %s", ago.Round(time.Second),
		last.At.UTC().Format(time.RFC3339), last.Version, last.Status, len(recent), h.window)
	switch {
	case ago > h.window:
		run.Failf("no beat for %s (window %s); the last at %s", ago.Round(time.Second), h.window, last.At.UTC().Format(time.RFC3339))
	case last.Status == "fail":
		run.Failf("the last beat (%s ago) reported a failure: %s", ago.Round(time.Second), Trim(orDash(last.Message), 300))
	}
	if run.Deploy != nil {
		if err := h.judgeDeploy(run, now); err != nil && len(run.failures) == 0 {
			return err
		}
	}
	return nil
}

// judgeDeploy counts the beats from the deploy's version since it began. With
// require_deploy_version, none yet is inconclusive (returned) until a window has passed
// since the deploy, and a failure after.
func (h *Heartbeat) judgeDeploy(run *Run, now time.Time) error {
	d := run.Deploy
	fromDeploy, _ := h.book.since(h.name, d.StartedAt)
	n := 0
	for _, b := range fromDeploy {
		if b.Version == d.Version {
			n++
		}
	}
	run.Vars["deploy_version_beats"] = n
	if !h.requireDeploy || n > 0 {
		return nil
	}
	waited := now.Sub(d.StartedAt)
	if waited < h.window {
		return Inconclusivef("no beat from version %s yet: the deploy began %s ago and the window is %s",
			d.Version, waited.Round(time.Second), h.window)
	}
	run.Failf("no beat from version %s in the %s since the deploy (window %s)", d.Version, waited.Round(time.Second), h.window)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// heartbeatKind registers the heartbeat kind (kinds.go).
type heartbeatKind struct{}

func (heartbeatKind) vars() types.Map { return heartbeatVars }

// Instrument implements Instrumented: when each heartbeat check last saw a beat.
func (heartbeatKind) Instrument(in Instruments) *Recorder {
	seen := promauto.With(in.Reg).NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_heartbeat_last_seen_seconds",
		Help: "Seconds since a heartbeat check's last beat, as its last run saw it."}, []string{"check"})
	return &Recorder{Vecs: vecs(seen), Observe: func(r *Result) {
		if v, ok := r.Vars["since_last_s"].(float64); ok {
			seen.WithLabelValues(r.Check).Set(v)
		}
	}}
}

func (heartbeatKind) build(b *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.HeartbeatSpec)
	return &Heartbeat{name: c.Name, window: s.Window, requireDeploy: s.RequireDeployVersion, book: b.deps.Heartbeats}
}
