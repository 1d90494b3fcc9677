package agent

// The watch: how an agent takes up the deploys it did not register. At start it finds the
// deploys a restart left verifying; where agents share a PostgreSQL store it looks again
// every agent.heartbeat (at most every second), for deploys registered through other
// agents, for verifications superseded elsewhere, and for deploys whose locations it
// waits for. Every location verifies on its own window and reports; whoever reports or
// looks last decides (verdict_record.go), under the store's lock on the deploy.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// watchEvery is how often the watch looks: the heartbeat, at most a second.
func (a *Agent) watchEvery() time.Duration {
	return min(a.Runtime().Config.Agent.Heartbeat, time.Second)
}

// watchLoop looks at the store's verifying deploys until ctx ends. An agent alone on its
// store (SQLite) registers every deploy itself and needs no watch after the first look.
func (a *Agent) watchLoop(ctx context.Context) {
	if !a.shared() {
		return
	}
	for {
		t := a.clock.NewTimer(a.watchEvery())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		a.watchDeploys(ctx)
	}
}

// watchDeploys takes one look at the deploys being verified.
func (a *Agent) watchDeploys(ctx context.Context) {
	pending, err := a.store.Deploys(ctx, store.StatusVerifying, 1000)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("could not list the deploys being verified; looking again soon", "error", err)
		}
		return
	}
	verifying := map[string]bool{}
	for _, d := range pending {
		verifying[d.ID] = true
	}
	a.stopDecidedElsewhere(verifying)
	for _, d := range pending {
		if ctx.Err() != nil {
			return
		}
		a.takeUp(ctx, d)
	}
	a.decideWaiting(ctx, verifying)
}

// stopDecidedElsewhere ends the verifications here of deploys no longer verifying:
// superseded through another agent, or decided by the quorum without this location.
func (a *Agent) stopDecidedElsewhere(verifying map[string]bool) {
	a.mu.Lock()
	var stop []*verification
	for id, v := range a.verify {
		if !verifying[id] {
			stop = append(stop, v)
		}
	}
	a.mu.Unlock()
	for _, v := range stop {
		if v.decide() {
			a.log.Info("deploy decided or superseded elsewhere; its verification here stops", "deploy", v.deploy.ID)
			a.endVerification(v)
		}
	}
}

// takeUp starts verifying d here when this location is expected to and this agent has not
// reported, or waits for the other locations when it has.
func (a *Agent) takeUp(ctx context.Context, d *store.Deploy) {
	a.registerMu.Lock()
	defer a.registerMu.Unlock()
	a.mu.Lock()
	_, running := a.verify[d.ID]
	_, waiting := a.waiting[d.ID]
	a.mu.Unlock()
	if running || waiting {
		return
	}
	if len(d.Locations) > 0 && !slices.Contains(d.Locations, a.location) {
		return
	}
	reports, err := a.store.LocationReports(ctx, d.ID)
	if err != nil {
		a.log.Warn("reading a deploy's reports failed; looking again soon", "deploy", d.ID, "error", err)
		return
	}
	for _, r := range reports {
		if r.Agent == a.name { // another agent of this location reporting does not stand for this one
			a.awaitLocations(d, a.clock.Now())
			return
		}
	}
	rt := a.Runtime()
	now := a.clock.Now()
	svc := rt.Config.Services[d.Service]
	if svc == nil {
		v := &verification{deploy: d, cancel: func() {}, done: make(chan struct{}), tallies: map[string]*tally{}}
		a.metrics.verifying.Inc()
		a.finishLocation(v, store.StatusInconclusive, fmt.Sprintf("service %q is not in the config of location %s", d.Service, a.location))
		return
	}
	if d.Location == a.location {
		a.log.Info("resuming a verification cut off by a restart; its window starts again", "deploy", d.ID, "service", d.Service)
	} else {
		a.log.Info("verifying a deploy registered in another location", "deploy", d.ID, "service", d.Service, "registered_in", d.Location)
	}
	a.startVerification(ctx, d, svc, rt.serviceChecks(d.Service), now)
}

// waitingDeploy is a deploy this location reported on, waiting for the others until until.
type waitingDeploy struct {
	deploy *store.Deploy
	until  time.Time
}

// awaitLocations remembers that this location reported on d and waits for the others,
// until the quorum's wait is over.
func (a *Agent) awaitLocations(d *store.Deploy, from time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.waiting[d.ID]; !ok {
		a.waiting[d.ID] = waitingDeploy{deploy: d, until: from.Add(a.quorumWait(d.Service))}
	}
}

// decideWaiting asks the store to decide each deploy this location waits on: with the
// reports there are once the wait is over, else only if the quorum is already met.
func (a *Agent) decideWaiting(ctx context.Context, verifying map[string]bool) {
	a.mu.Lock()
	due := map[string]bool{}
	deploys := map[string]*store.Deploy{}
	now := a.clock.Now()
	for id, w := range a.waiting {
		if !verifying[id] {
			delete(a.waiting, id)
			continue
		}
		due[id], deploys[id] = !now.Before(w.until), w.deploy
	}
	a.mu.Unlock()
	for id, final := range due {
		if ctx.Err() != nil {
			return
		}
		awaited, err := a.awaitedAgents(ctx, deploys[id])
		var d *store.Deploy
		var decided bool
		if err == nil {
			d, decided, err = a.store.ReportLocation(ctx, id, nil, a.decider(final, a.verdictContext(deploys[id], nil), awaited))
		}
		if err != nil {
			a.log.Warn("deciding a deploy waiting for its locations failed; trying again soon", "deploy", id, "error", err)
			continue
		}
		if decided {
			a.announce(d, 0)
		}
		if d.Status != store.StatusVerifying {
			a.mu.Lock()
			delete(a.waiting, id)
			a.mu.Unlock()
		}
	}
}
