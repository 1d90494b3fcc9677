package agent

// The incident state as this agent holds it: the checks' incidents and this location's
// streaks, loaded from the store, refreshed at heartbeats where agents share it, and read
// by the API, the status page and the metrics under incView, never waiting for a write.

import (
	"context"
	"maps"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// refreshStreaks takes the members read at a heartbeat and this location's streaks other
// agents keep: a streak is taken over from where its keeper left it, and one its keeper
// removed (the check left its config) is started afresh by this agent's next run.
func (a *Agent) refreshStreaks(ctx context.Context, members []*store.Member, now time.Time) {
	alive := map[string]bool{}
	for _, m := range members {
		if a.stateOf(m, now) == memberAlive {
			alive[m.Name] = true
		}
	}
	// The lock is held over the read (a streak written meanwhile would be overwritten by an
	// older one), so the read has a heartbeat's time at most: runs wait for it.
	rctx, cancel := context.WithTimeout(ctx, max(a.Runtime().Config.Agent.Heartbeat, time.Second))
	defer cancel()
	a.incMu.Lock()
	defer a.incMu.Unlock()
	a.incView.Lock()
	a.alive = alive
	a.incView.Unlock()
	others, err := a.store.KeptByOthers(rctx, a.location, a.name)
	if err != nil {
		a.log.Warn("reading the streaks other agents of this location keep failed", "error", err)
		return
	}
	a.incView.Lock()
	defer a.incView.Unlock()
	for name, cl := range a.streaks {
		if cl.Agent != a.name && others[name] == nil {
			delete(a.streaks, name)
		}
	}
	maps.Copy(a.streaks, others)
}

// setStreak sets this location's streak of check, or removes it (nil); incMu is held.
func (a *Agent) setStreak(check string, cl *store.CheckLocation) {
	a.incView.Lock()
	defer a.incView.Unlock()
	if cl == nil {
		delete(a.streaks, check)
		return
	}
	a.streaks[check] = cl
}

// streakCounts counts this location's streaks this agent keeps and those another agent
// keeps while this one stands by (vigil_streaks_kept, vigil_streaks_standing_by).
func (a *Agent) streakCounts() (kept, standingBy int) {
	a.incView.RLock()
	defer a.incView.RUnlock()
	for _, cl := range a.streaks {
		if cl.Agent == a.name {
			kept++
		} else {
			standingBy++
		}
	}
	return kept, standingBy
}

// loadIncidents reads the incidents and this location's streaks.
func (a *Agent) loadIncidents(ctx context.Context) {
	m, err := a.store.Incidents(ctx)
	if err != nil {
		a.log.Warn("could not load incident state", "error", err)
		return
	}
	streaks, err := a.store.CheckLocations(ctx, a.location)
	if err != nil {
		a.log.Warn("could not load this location's check streaks", "error", err)
		streaks = map[string]*store.CheckLocation{}
	}
	a.incMu.Lock()
	a.incView.Lock()
	a.incidents, a.streaks = m, streaks
	a.incView.Unlock()
	a.incMu.Unlock()
	if a.shared() {
		if members, err := a.store.Members(ctx); err == nil {
			a.refreshStreaks(ctx, members, a.clock.Now())
		}
	}
}

// refreshIncidents reads the incidents again: where agents share the store, another may
// have opened, reminded of or closed one.
func (a *Agent) refreshIncidents(ctx context.Context) {
	if !a.shared() {
		return
	}
	m, err := a.store.Incidents(ctx)
	if err != nil {
		return
	}
	a.incMu.Lock()
	a.incView.Lock()
	a.incidents = m
	a.incView.Unlock()
	a.incMu.Unlock()
}
