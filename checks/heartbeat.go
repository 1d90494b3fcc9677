package checks

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// Heartbeats is the agent's record of the beats jobs posted, by check name: in its store
// when it has one (BeatStore), where every agent sharing the store reads them and a restart
// loses none, in memory otherwise. A missed beat is judged over the time beats were taken
// without a break: a check waits one window for a beat after that time began (a job cannot
// be blamed for beats sent while no agent was there to take them). With a store, that is
// the time any agent sharing it was alive, so a restart of a few seconds, or of one agent of
// several, does not begin it again; in memory, the time since this record began. Safe for
// concurrent use.
type Heartbeats struct {
	now     func() time.Time
	started time.Time
	store   BeatStore

	mu    sync.Mutex
	beats map[string][]Beat // without a store: oldest first, at most heartbeatKeep
}

// BeatStore keeps the beats of every check, the newest heartbeatKeep of each.
type BeatStore interface {
	SaveBeat(ctx context.Context, check string, b Beat) error
	// Beats returns the check's beats at or after since, oldest first, and its last beat
	// (nil: none).
	Beats(ctx context.Context, check string, since time.Time) (recent []Beat, last *Beat, err error)
	// Taken is when, at now, the check's beats have been taken without a break, by any
	// agent sharing the store, told in the agent's clock.
	Taken(ctx context.Context, check string, now time.Time) (Taking, error)
}

// Span is a time a check's beats were taken without a break.
type Span struct{ From, Until time.Time }

// Taking is when a check's beats have been taken, by the agent's clock.
type Taking struct {
	// Since is when the current time without a break began (zero: no agent takes them now).
	Since time.Time
	// Before are earlier times without a break, newest first: those the store keeps to
	// judge a job by (the last that lasted a window; see store.BeatsTaking).
	Before []Span
}

// missed finds a window in which no beat came after from (the last beat; zero: none ever)
// while beats were taken without a break, now or before a break: the job's miss, proven.
// It returns the span the window lies in and when the window began; ok is false when
// there is none. A miss proven before a break stays one after it: a clean restart, or an
// outage, does not give a job already overdue another window.
func (t Taking) missed(from time.Time, window time.Duration, now time.Time) (in Span, start time.Time, ok bool) {
	spans := t.Before
	if !t.Since.IsZero() {
		spans = append([]Span{{From: t.Since, Until: now}}, spans...)
	}
	for _, sp := range spans {
		start := sp.From
		if from.After(start) {
			start = from
		}
		if sp.Until.Sub(start) >= window {
			return sp, start, true
		}
	}
	return Span{}, time.Time{}, false
}

// NewHeartbeats starts a record of beats in st (nil: in memory); now is the agent's clock.
func NewHeartbeats(now func() time.Time, st BeatStore) *Heartbeats {
	return &Heartbeats{now: now, started: now(), store: st, beats: map[string][]Beat{}}
}

// Record keeps a beat for the check named name, stamped with the clock's time. An error is
// the store's: the beat is not kept.
func (h *Heartbeats) Record(ctx context.Context, name string, b Beat) (Beat, error) {
	b.At = h.now()
	if b.Status == "" {
		b.Status = "ok"
	}
	if h.store != nil {
		return b, h.store.SaveBeat(ctx, name, b)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	list := append(h.beats[name], b)
	if len(list) > heartbeatKeep {
		list = append([]Beat(nil), list[len(list)-heartbeatKeep:]...)
	}
	h.beats[name] = list
	return b, nil
}

// since returns the check's beats at or after t, oldest first, and its last beat ever.
func (h *Heartbeats) since(ctx context.Context, name string, t time.Time) (recent []Beat, last *Beat, err error) {
	if h.store != nil {
		return h.store.Beats(ctx, name, t)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	list := h.beats[name]
	if len(list) == 0 {
		return nil, nil, nil
	}
	l := list[len(list)-1]
	for i := len(list) - 1; i >= 0 && !list[i].At.Before(t); i-- {
		recent = append(recent, list[i])
	}
	slices.Reverse(recent)
	return recent, &l, nil
}

// taken is when, at now, the check's beats have been taken without a break.
func (h *Heartbeats) taken(ctx context.Context, name string, now time.Time) (Taking, error) {
	if h.store != nil {
		return h.store.Taken(ctx, name, now)
	}
	return Taking{Since: h.started}, nil
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
func (h *Heartbeat) Probe(ctx context.Context, run *Run) error {
	if h.book == nil {
		return errNoAgent
	}
	now := h.book.now()
	from := now.Add(-h.window)
	if run.Deploy != nil && run.Deploy.StartedAt.Before(from) {
		from = run.Deploy.StartedAt
	}
	beats, last, err := h.book.since(ctx, h.name, from)
	if err != nil {
		return fmt.Errorf("reading the check's beats from the store: %w", err)
	}
	recent := beats[beatsFrom(beats, now.Add(-h.window)):]
	run.Vars["beats"] = len(recent)
	run.Vars["deploy_version_beats"] = 0
	tk, err := h.book.taken(ctx, h.name, now)
	if err != nil {
		return fmt.Errorf("reading since when the check's beats were taken from the store: %w", err)
	}
	up, since := time.Duration(0), now
	if !tk.Since.IsZero() {
		up, since = now.Sub(tk.Since), tk.Since
	}
	sinceText := since.UTC().Format(time.RFC3339)
	var lastAt time.Time
	if last != nil {
		lastAt = last.At
	}
	span, start, proven := tk.missed(lastAt, h.window, now)
	if last == nil {
		run.Unmeasured("no beat received yet", "since_last_s", "last_version", "last_status")
		if !proven {
			return Inconclusivef("no beat yet: beats have been expected since %s (%s ago) and the window is %s",
				sinceText, up.Round(time.Second), h.window)
		}
		run.Failf("no beat since %s, when beats began to be expected (%s ago, window %s): is the job running, and posting to /api/v1/heartbeats/%s?",
			start.UTC().Format(time.RFC3339), now.Sub(start).Round(time.Second), h.window, h.name)
		return nil
	}
	ago := now.Sub(last.At)
	run.Vars["since_last_s"] = ago.Seconds()
	run.Vars["last_version"] = last.Version
	run.Vars["last_status"] = last.Status
	run.Transcript.Printf("last beat %s ago (%s, version %q, status %s); %d in the last %s; beats taken without a break since %s", ago.Round(time.Second),
		last.At.UTC().Format(time.RFC3339), last.Version, last.Status, len(recent), h.window, sinceText)
	switch {
	case ago > h.window && !proven:
		// Beats posted while no agent was there to take them were lost, not missed by the job.
		return Inconclusivef("no beat for %s (window %s), but beats have been taken without a break only since %s (%s ago): waiting a window for one",
			ago.Round(time.Second), h.window, sinceText, up.Round(time.Second))
	case ago > h.window:
		taken := "since " + span.From.UTC().Format(time.RFC3339)
		if !span.Until.Equal(now) {
			taken = "from " + span.From.UTC().Format(time.RFC3339) + " to " + span.Until.UTC().Format(time.RFC3339)
		}
		run.Failf("no beat for %s (window %s); the last at %s, one was due by %s (beats expected without a break %s)",
			ago.Round(time.Second), h.window, last.At.UTC().Format(time.RFC3339), start.Add(h.window).UTC().Format(time.RFC3339), taken)
	case last.Status == "fail":
		run.Failf("the last beat (%s ago) reported a failure: %s", ago.Round(time.Second), Trim(orDash(last.Message), 300))
	}
	if run.Deploy != nil {
		if err := h.judgeDeploy(run, beats[beatsFrom(beats, run.Deploy.StartedAt):], now); err != nil && len(run.failures) == 0 {
			return err
		}
	}
	return nil
}

// beatsFrom is the index of the first of beats (oldest first) at or after t.
func beatsFrom(beats []Beat, t time.Time) int {
	i, _ := slices.BinarySearchFunc(beats, t, func(b Beat, t time.Time) int { return b.At.Compare(t) }) // the earliest
	return i
}

// judgeDeploy counts the beats from the deploy's version since it began (fromDeploy). With
// require_deploy_version, none yet is inconclusive (returned) until a window has passed
// since the deploy, and a failure after.
func (h *Heartbeat) judgeDeploy(run *Run, fromDeploy []Beat, now time.Time) error {
	d := run.Deploy
	n, apart := 0, ""
	for _, b := range fromDeploy {
		if sameVersion(b.Version, d.Version) { // a job that says 1.4.0+g3f2a1c runs the deploy's v1.4.0
			n++
			if b.Version != d.Version {
				apart = b.Version
			}
		}
	}
	run.Vars["deploy_version_beats"] = n
	if apart != "" {
		run.Transcript.Printf("beats from version %s%s, counted as the deploy's", Trim(apart, 100), apartNote(apart, d.Version))
	}
	if !h.requireDeploy || n > 0 {
		return nil
	}
	waited := now.Sub(d.StartedAt)
	if waited < h.window {
		return NotServedf("no beat from version %s yet: the deploy began %s ago and the window is %s",
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
