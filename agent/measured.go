package agent

// Since when each check has measured what it measures now: a deploy's baseline takes only
// the runs from then (README, "Deploy verification"). A reload that points a check at
// another URL, method, body or spec leaves the runs before it measuring something else.

import (
	"context"
	"time"
)

// measured is what a check measures (its configs.Check.Fingerprint) and since when.
type measured struct {
	fingerprint string
	since       time.Time
}

// noteMeasured records, at the start and at each reload, since when each check of rt has
// measured what it measures: the store keeps it per check and location, so a restart
// with a changed check and agents sharing the store agree. A store that cannot say keeps
// the agent's own knowledge: a fingerprint it saw change since it started is a change from
// now, one it never saw is taken as it is.
func (a *Agent) noteMeasured(ctx context.Context, rt *Runtime) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a reload does not wait out a wedged store
	defer cancel()
	now := a.clock.Now()
	out := make(map[string]measured, len(rt.Order))
	a.mu.Lock()
	was := a.measured
	a.mu.Unlock()
	for _, cfg := range rt.Config.Checks {
		if cfg == nil || rt.Checks[cfg.Name] == nil {
			continue
		}
		fp := cfg.Fingerprint()
		m := measured{fingerprint: fp}
		since, err := a.store.MeasuredSince(ctx, "request/"+a.location+"/"+cfg.Name, fp, now)
		switch {
		case err == nil:
			m.since = since
		case was[cfg.Name].fingerprint == fp:
			m.since = was[cfg.Name].since
		case was[cfg.Name].fingerprint != "":
			m.since = now
		}
		if err != nil {
			a.log.Warn("recording what a check measures failed; its baseline is from this agent's own knowledge", "check", cfg.Name, "error", err)
		}
		if !m.since.IsZero() && !m.since.Equal(was[cfg.Name].since) {
			a.log.Info("a check measures something new; a deploy's baseline takes only its runs from then",
				"check", cfg.Name, "since", m.since.UTC().Format(time.RFC3339))
		}
		out[cfg.Name] = m
	}
	a.mu.Lock()
	a.measured = out
	a.mu.Unlock()
}

// measuredSince is since when check has measured what it measures now in this location:
// the zero time when as far as anyone knows it always has.
func (a *Agent) measuredSince(check string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.measured[check].since
}
