package agent

// Verifying a deploy in this location: its checks' rounds, the fail-fast rule after every
// run and the window's rules at its end (verdict.go) give this location's verdict, which
// verdict_record.go reports and combines with the other locations'.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// verification is one deploy being verified: its checks run verify.count rounds,
// verify.interval apart, the first verify.initial_delay after registration; a check's
// rounds never overlap.
type verification struct {
	deploy *store.Deploy
	// svc and checks are the config the window started under; a reload does not change
	// them, so a verdict does not depend on when a reload landed (README, "A reload does
	// not re-judge a deploy under way").
	svc    *configs.Service
	checks []*checks.Check
	start  time.Time
	cancel context.CancelFunc
	done   chan struct{} // closed when the verdict is recorded or the deploy superseded
	// session holds the verification's own connections: the new version is judged only
	// through connections opened after the deploy was registered.
	session *checks.HTTPClient
	// span is the verification's trace (a no-op when tracing is off).
	span trace.Span

	// baseline is each check's baseline in this location.
	baseline map[string]map[string]any

	mu      sync.Mutex
	decided bool
	tallies map[string]*tally
	ended   sync.Once
}

// decide marks v decided, by whatever ended it; false when something else already had.
func (v *verification) decide() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	already := v.decided
	v.decided = true
	return !already
}

// endVerification is the one way a verification ends, whatever ended it: its runs are
// cancelled, its connections closed, its waiters woken. It runs once.
func (a *Agent) endVerification(v *verification) {
	v.ended.Do(func() {
		if v.span != nil {
			v.span.End()
		}
		v.cancel()
		v.session.CloseIdle()
		a.mu.Lock()
		if a.verify[v.deploy.ID] == v {
			delete(a.verify, v.deploy.ID)
		}
		a.mu.Unlock()
		a.metrics.verifying.Dec()
		close(v.done)
	})
}

// startVerification verifies d in this location. The baseline is the one fixed at
// registration when the deploy was registered here, and otherwise this location's own,
// from the runs before the deploy: latencies differ from one location to another.
func (a *Agent) startVerification(ctx context.Context, d *store.Deploy, svc *configs.Service, list []*checks.Check, start time.Time) {
	for _, c := range list {
		c.MarkDeploy() // what the logs hold from here on was written after the deploy's time
	}
	baseline := d.Baseline
	if d.Location != "" && d.Location != a.location {
		baseline = a.baseline(ctx, list, svc, a.baselineAt(ctx, d.Service, d.ID, d.CreatedAt))
	}
	vctx, cancel := context.WithCancel(a.runCtx)
	v := &verification{deploy: d, svc: svc, checks: list, start: start, cancel: cancel, done: make(chan struct{}),
		tallies: map[string]*tally{}, session: a.opts.Deps.HTTP.NewSession(), baseline: baseline}
	for _, c := range list {
		v.tallies[c.Name] = &tally{answeredBefore: baseline[c.Name] != nil}
	}
	if start.After(d.CreatedAt) {
		a.readyBefore(ctx, v)
	}
	if svc.Verify.ReadySlowdown > 0 {
		a.usualStartups(ctx, v)
	}
	a.failingBefore(ctx, v)
	a.mu.Lock()
	a.verify[d.ID] = v
	a.mu.Unlock()
	a.metrics.verifying.Inc()
	a.verifyWG.Add(1)
	tracer := a.opts.Tracing.Tracer("agent")
	vctx, v.span = tracer.Start(vctx, "verify "+d.Service+" "+d.Version, trace.WithNewRoot(), trace.WithAttributes(
		attribute.String("deploy.id", d.ID), attribute.String("deploy.service", d.Service), attribute.String("deploy.version", d.Version),
		attribute.String("deploy.environment", d.Environment), attribute.String("deploy.commit", d.Commit),
		attribute.Int("vigil.verify.count", svc.Verify.Count), attribute.Int("vigil.checks", len(list)),
		attribute.String("vigil.location", a.location)))
	go func() {
		defer a.verifyWG.Done()
		defer cancel()
		a.runVerification(checks.WithSession(vctx, v.session), v)
	}()
}

// ready is how long after the deploy's registration every check had passed once in this
// verification (the slowest check's first pass), and false while one has not. v.mu is held.
func (v *verification) ready() (time.Duration, bool) {
	var ready time.Duration
	for _, c := range v.checks {
		t := v.tallies[c.Name]
		if t == nil || t.readyAfter == 0 {
			return 0, false
		}
		ready = max(ready, t.readyAfter)
	}
	return ready, len(v.checks) > 0
}

// readyBefore marks the checks that passed in this location before the verification
// started again (a restart cut it off): their window starts again, but the new version was
// ready for them then, and verify.ready_within must not find it "not ready" now.
func (a *Agent) readyBefore(ctx context.Context, v *verification) {
	runs, err := a.store.DeployRuns(ctx, v.deploy.ID)
	if err != nil {
		a.log.Warn("reading a resumed deploy's runs failed; ready_within counts from its new window's runs", "deploy", v.deploy.ID, "error", err)
		return
	}
	for _, r := range runs {
		t := v.tallies[r.Check]
		if t == nil || t.readyAfter > 0 || r.Location != a.location || r.Outcome != string(checks.Pass) {
			continue
		}
		t.readyAfter = max(r.Started.Add(r.Duration).Sub(v.deploy.CreatedAt), time.Nanosecond)
	}
}

// failingBefore marks the checks that were failing when the deploy was registered: an
// incident open since before it, and a newest run in this location before it that failed
// (verdict.go: such a check failing the same way after the deploy is not the deploy's),
// outside the spans of rollouts called off before it (baseline.go), when the service's deploys are registered before their rollouts
// (verify.registered_before_rollout) and its newest verdict before this one did not fail.
func (a *Agent) failingBefore(ctx context.Context, v *verification) {
	// Only a pipeline that registers its deploys before the rollout says a run before the
	// registration is not already the new version's.
	if !v.svc.Verify.RegisteredBeforeRollout {
		return
	}
	// After a failed deploy with nothing passed since, the outage may be that deploy's,
	// and the version that passed before it the remedy: every failure counts.
	list, err := a.store.ServiceDeploys(ctx, v.deploy.Service, 20)
	if err != nil || failedBefore(list, v.deploy.CreatedAt) != nil {
		return
	}
	open := map[string]time.Time{}
	a.incView.RLock()
	for _, c := range v.checks {
		if in := a.incidents[c.Name]; in != nil && in.Open && in.OpenedAt.Before(v.deploy.CreatedAt) {
			open[c.Name] = in.OpenedAt
		}
	}
	a.incView.RUnlock()
	// The runs of a rollout called off before this deploy are not "before" it: a failure of
	// the aborted version must not excuse the same failure of the next.
	skip := calledOff(list, v.deploy.CreatedAt, rollbackTime(v.svc.Verify))
	for name, since := range open {
		r, err := a.newestRunBefore(ctx, name, v.deploy.CreatedAt, skip)
		if err != nil {
			a.log.Warn("reading a failing check's last run before the deploy failed; its failures count as the deploy's", "check", name, "error", err)
			continue
		}
		if r != nil && r.Outcome == string(checks.Fail) {
			v.tallies[name].before = newFailingBefore(r.Reasons, since)
		}
	}
}

func (a *Agent) runVerification(ctx context.Context, v *verification) {
	d := v.deploy
	info := &checks.Deploy{ID: d.ID, Service: d.Service, Version: d.Version, Environment: d.Environment,
		Commit: d.Commit, StartedAt: d.CreatedAt}
	first := v.start.Add(v.svc.Verify.InitialDelay)
	var wg sync.WaitGroup
	for _, c := range v.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < v.svc.Verify.Count; round++ {
				at := first.Add(time.Duration(round) * v.svc.Verify.Interval)
				if !a.sleepUntil(ctx, at) {
					return
				}
				in := checks.Input{Deploy: info, Baseline: v.baseline[c.Name], Since: d.CreatedAt, MeasuredSince: a.measuredSince(c.Name)}
				rctx, rspan := a.opts.Tracing.Tracer("agent").Start(ctx, fmt.Sprintf("round %d %s", round+1, c.Name),
					trace.WithAttributes(attribute.Int("vigil.round", round+1), attribute.String("vigil.check", c.Name)))
				res, ok := a.round(rctx, c, in, d.ID, v.svc.Verify) // verify_visitors.go
				rspan.End()
				if !ok {
					return // cut short by a verdict, a newer deploy or shutdown: it is not a result
				}
				sr := toStoreRun(res, d.ID)
				// The run ended before any cancellation: it is a measurement, kept even if
				// the verification was decided in the meantime.
				if err := a.writer.saveNow(context.WithoutCancel(ctx), sr); err != nil {
					a.log.Error("saving a verification run failed", "deploy", d.ID, "check", c.Name, "error", err)
				}
				a.report(v, c, res, sr.ID, at.Sub(d.CreatedAt))
			}
		}()
	}
	wg.Wait()
	select {
	case <-a.stopping:
		return // shutting down: the deploy stays verifying and resumes after a restart
	default:
	}
	if ctx.Err() != nil {
		return
	}
	v.mu.Lock()
	if v.decided {
		v.mu.Unlock()
		return
	}
	v.decided = true
	order := make([]string, len(v.checks))
	for i, c := range v.checks {
		order[i] = c.Name
	}
	status, reason := windowVerdict(order, v.tallies, v.svc.Verify, v.svc.Verify.Count)
	v.mu.Unlock()
	a.finishLocation(v, status, reason)
}

// sleepUntil waits on the agent's clock; false when ctx ended first.
func (a *Agent) sleepUntil(ctx context.Context, at time.Time) bool {
	d := at.Sub(a.clock.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := a.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-a.stopping:
		return false
	case <-t.C():
		return true
	}
}

// report counts one run, of the round due sinceDeploy after the deploy's registration, and
// fails the deploy the moment failed runs exceed failure_limit (fail fast, as Argo
// Rollouts does) or a check is not ready by verify.ready_within or ready_slowdown.
// Inconclusive and errored runs wait for the window's end (verdict.go).
func (a *Agent) report(v *verification, c *checks.Check, res *checks.Result, runID int64, sinceDeploy time.Duration) {
	v.mu.Lock()
	if v.decided {
		v.mu.Unlock()
		return
	}
	t := v.tallies[c.Name]
	if r, same := t.before.asBefore(res); same {
		res = r
		t.asBefore++
	}
	t.add(res, runID)
	if res.Outcome == checks.Pass && t.readyAfter == 0 {
		t.readyAfter = max(a.clock.Now().Sub(v.deploy.CreatedAt), time.Nanosecond)
	}
	status, reason := failFast(c.Name, t, v.svc.Verify, res)
	if status == "" {
		status, reason = notReady(c.Name, t, v.svc.Verify, sinceDeploy, res)
	}
	if status != "" {
		v.decided = true
	}
	v.mu.Unlock()
	if status != "" {
		a.finishLocation(v, status, reason)
	}
}
