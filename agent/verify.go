package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// DeployRequest is the body of POST /api/v1/deploys.
type DeployRequest struct {
	Service     string   `json:"service"`
	Services    []string `json:"services"`
	Version     string   `json:"version"`
	Environment string   `json:"environment"`
	Commit      string   `json:"commit"`
}

// verification is one deploy being verified: its checks run verify.count rounds,
// verify.interval apart, the first verify.initial_delay after registration; a check's
// rounds never overlap.
type verification struct {
	deploy *store.Deploy
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

	mu      sync.Mutex
	decided bool
	tallies map[string]*tally
	ended   sync.Once
}

// requestError is a problem with what a caller sent: it becomes a 4xx with this message.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

// StartDeploys registers a deploy of each named service and starts verifying it.
func (a *Agent) StartDeploys(ctx context.Context, req DeployRequest) ([]*store.Deploy, error) {
	select {
	case <-a.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	rt := a.Runtime()
	services := req.Services
	if req.Service != "" {
		services = append([]string{req.Service}, services...)
	}
	switch {
	case len(services) == 0:
		return nil, &requestError{400, `name the service: {"service":"web","version":"v2"}`}
	case strings.TrimSpace(req.Version) == "":
		return nil, &requestError{400, `version is required: {"service":"web","version":"v2"}`}
	case len(req.Version) > 200 || len(req.Environment) > 200 || len(req.Commit) > 200:
		return nil, &requestError{400, "version, environment and commit are at most 200 characters"}
	case len(services) > 50:
		return nil, &requestError{400, "at most 50 services per deploy"}
	}
	var known []string
	for n := range rt.Config.Services {
		known = append(known, n)
	}
	sort.Strings(known)
	seen := map[string]bool{}
	for _, s := range services {
		if _, ok := rt.Config.Services[s]; !ok {
			return nil, &requestError{422, fmt.Sprintf("unknown service %q; %s", s, configs.DidYouMean(s, known))}
		}
		if seen[s] {
			return nil, &requestError{400, fmt.Sprintf("service %q is named twice", s)}
		}
		seen[s] = true
	}
	// Scheduled runs not yet written would be missing from the baseline.
	a.writer.flush(ctx)
	var out []*store.Deploy
	for _, s := range services {
		d, err := a.createDeploy(ctx, rt, s, req)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

func newDeployID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

func (a *Agent) createDeploy(ctx context.Context, rt *Runtime, service string, req DeployRequest) (*store.Deploy, error) {
	svc := rt.Config.Services[service]
	list := rt.ServiceChecks(service)
	// Registrations are serialised: the store's "supersede the one verifying" and the
	// start of the new verification must happen in the same order for every deploy, or a
	// registration racing another could start verifying a deploy the store already
	// superseded.
	a.registerMu.Lock()
	defer a.registerMu.Unlock()
	now := a.clock.Now()
	d := &store.Deploy{ID: newDeployID(now), Service: service, Version: req.Version, Environment: req.Environment,
		Commit: req.Commit, CreatedAt: now, Status: store.StatusVerifying, Baseline: map[string]map[string]any{}}
	for _, c := range list {
		prev, err := a.store.RecentRuns(ctx, c.Name, now, 50)
		if err != nil {
			return nil, fmt.Errorf("reading the baseline of %s: %w", c.Name, err)
		}
		results := make([]*checks.Result, len(prev))
		for i, r := range prev {
			results[i] = fromStoreRun(r)
		}
		if b := c.Baseline(results, svc.Verify.BaselineRuns); b != nil {
			d.Baseline[c.Name] = b
		}
	}
	superseded, err := a.store.CreateDeploy(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("recording the deploy: %w", err)
	}
	for _, id := range superseded {
		a.stopVerification(id, service)
	}
	a.log.Info("deploy registered; verifying", "deploy", d.ID, "service", service, "version", d.Version,
		"rounds", svc.Verify.Count, "interval", svc.Verify.Interval, "initial_delay", svc.Verify.InitialDelay, "checks", len(list))
	a.startVerification(d, svc, list, now)
	if err := a.store.Enqueue(ctx, a.deployStarted(d, now)); err != nil {
		a.log.Warn("enqueueing deploy_started failed", "deploy", d.ID, "error", err)
	}
	a.signalOutbox()
	return d, nil
}

// stopVerification ends a superseded verification: its runs are cancelled (and not
// recorded) and its waiters see the superseded status.
func (a *Agent) stopVerification(id, service string) {
	a.metrics.verdicts.WithLabelValues(service, store.StatusSuperseded).Inc()
	a.mu.Lock()
	v := a.verify[id]
	a.mu.Unlock()
	if v == nil {
		return
	}
	v.mu.Lock()
	v.decided = true
	v.mu.Unlock()
	if v.span != nil {
		v.span.SetAttributes(attribute.String("vigil.verdict", store.StatusSuperseded))
	}
	a.endVerification(v)
	a.log.Info("deploy superseded", "deploy", id, "service", service)
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

func (a *Agent) startVerification(d *store.Deploy, svc *configs.Service, list []*checks.Check, start time.Time) {
	ctx, cancel := context.WithCancel(a.runCtx)
	v := &verification{deploy: d, svc: svc, checks: list, start: start, cancel: cancel, done: make(chan struct{}),
		tallies: map[string]*tally{}, session: a.opts.Deps.HTTP.NewSession()}
	for _, c := range list {
		v.tallies[c.Name] = &tally{}
	}
	a.mu.Lock()
	a.verify[d.ID] = v
	a.mu.Unlock()
	a.metrics.verifying.Inc()
	a.verifyWG.Add(1)
	tracer := a.opts.Tracing.Tracer("agent")
	ctx, v.span = tracer.Start(ctx, "verify "+d.Service+" "+d.Version, trace.WithNewRoot(), trace.WithAttributes(
		attribute.String("deploy.id", d.ID), attribute.String("deploy.service", d.Service), attribute.String("deploy.version", d.Version),
		attribute.String("deploy.environment", d.Environment), attribute.String("deploy.commit", d.Commit),
		attribute.Int("vigil.verify.count", svc.Verify.Count), attribute.Int("vigil.checks", len(list))))
	go func() {
		defer a.verifyWG.Done()
		defer cancel()
		a.runVerification(checks.WithSession(ctx, v.session), v)
	}()
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
				if !a.sleepUntil(ctx, first.Add(time.Duration(round)*v.svc.Verify.Interval)) {
					return
				}
				in := checks.Input{Deploy: info, Baseline: d.Baseline[c.Name], Since: d.CreatedAt}
				release, ok := a.sched.Acquire(ctx, c)
				if !ok {
					return
				}
				rctx, rspan := a.opts.Tracing.Tracer("agent").Start(ctx, fmt.Sprintf("round %d %s", round+1, c.Name),
					trace.WithAttributes(attribute.Int("vigil.round", round+1), attribute.String("vigil.check", c.Name)))
				res, ok := a.execute(rctx, c, in, d.ID)
				rspan.End()
				release()
				if !ok {
					return // cut short by a verdict, a newer deploy or shutdown: it is not a result
				}
				sr := toStoreRun(res, d.ID)
				// The run ended before any cancellation: it is a measurement, kept even if
				// the verification was decided in the meantime.
				if err := a.store.SaveRuns(context.WithoutCancel(ctx), []*store.Run{sr}); err != nil {
					a.log.Error("saving a verification run failed", "deploy", d.ID, "check", c.Name, "error", err)
				}
				a.report(v, c, res, sr.ID)
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
	a.decide(v, status, reason)
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

// report counts one run and fails the deploy the moment failed runs exceed failure_limit
// (fail fast, as Argo Rollouts does). Inconclusive and errored runs wait for the window's
// end (verdict.go).
func (a *Agent) report(v *verification, c *checks.Check, res *checks.Result, runID int64) {
	v.mu.Lock()
	if v.decided {
		v.mu.Unlock()
		return
	}
	t := v.tallies[c.Name]
	t.add(res, runID)
	status, reason := failFast(c.Name, t, v.svc.Verify, res)
	if status != "" {
		v.decided = true
	}
	v.mu.Unlock()
	if status != "" {
		a.decide(v, status, reason)
	}
}

// decide records the verdict with its notifications in one transaction, stops the
// verification's other runs and wakes everyone waiting for it. A verdict is never dropped:
// while the store refuses it (a full disk, a locked or broken database) it is retried with
// backoff, readiness and vigil_verdicts_unrecorded say so, and long-polls keep waiting; it
// is written, with its rollback, as soon as the store takes writes again. Only a shutdown
// stops the retries, and then the deploy is still "verifying" in the store and is verified
// again after the restart.
func (a *Agent) decide(v *verification, status, reason string) {
	d := v.deploy
	now := a.clock.Now()
	v.cancel() // the other checks' runs in flight are not needed any more
	halt := ""
	if status == store.StatusFailed {
		v.mu.Lock()
		for _, c := range v.checks {
			if h := v.tallies[c.Name].halt; h != "" {
				halt = c.Name + ": " + h
				break
			}
		}
		v.mu.Unlock()
	}
	if v.span != nil {
		v.span.SetAttributes(attribute.String("vigil.verdict", status), attribute.String("vigil.reason", reason))
		if status != store.StatusPassed {
			v.span.SetStatus(codes.Error, reason)
		}
	}
	dec := &store.Decision{DeployID: d.ID, Status: status, Reason: reason, Halt: halt, At: now}
	dec.Outbox = a.deployNotifications(d, v, status, reason, halt, now)
	ok, recorded := a.recordDecision(dec)
	a.endVerification(v)
	switch {
	case !recorded:
		a.log.Warn("verdict not recorded before shutdown; the deploy is verified again after the restart",
			"deploy", d.ID, "verdict", status)
		return
	case !ok:
		a.log.Info("verdict not recorded: the deploy was already decided or superseded", "deploy", d.ID, "verdict", status)
		return
	}
	a.metrics.verdicts.WithLabelValues(d.Service, status).Inc()
	a.log.Info("deploy verdict", "deploy", d.ID, "service", d.Service, "version", d.Version, "verdict", status,
		"reason", reason, "halt", halt, "after", now.Sub(d.CreatedAt))
	a.signalOutbox()
}

// unrecordedVerdicts counts verdicts waiting for the store to take them.
func (a *Agent) unrecordedVerdicts() int { return int(a.unrecorded.Load()) }

// recordDecision writes dec, retrying with backoff until the store takes it or the agent
// shuts down. ok is the store's answer (false: the deploy was no longer verifying).
func (a *Agent) recordDecision(dec *store.Decision) (ok, recorded bool) {
	ctx := context.WithoutCancel(a.runCtx)
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ok, err := a.store.DecideDeploy(ctx, dec)
		if err == nil {
			if attempt > 1 {
				a.metrics.unrecorded.Dec()
				a.log.Info("verdict recorded after the store recovered", "deploy", dec.DeployID, "attempts", attempt)
			}
			return ok, true
		}
		if attempt == 1 {
			a.metrics.unrecorded.Inc()
			a.unrecorded.Add(1)
			defer a.unrecorded.Add(-1)
		}
		a.log.Error("recording a verdict failed; retrying", "deploy", dec.DeployID, "verdict", dec.Status,
			"attempt", attempt, "retry_in", wait, "error", err)
		if !a.sleepUntil(a.runCtx, a.clock.Now().Add(wait)) {
			a.metrics.unrecorded.Dec()
			return false, false
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// resumeVerifications restarts, with a fresh window, the verifications a restart cut off.
// Their baselines were fixed when they were registered and are kept.
func (a *Agent) resumeVerifications(ctx context.Context) {
	pending, err := a.store.Deploys(ctx, store.StatusVerifying, 1000)
	if err != nil {
		a.log.Error("could not list deploys being verified", "error", err)
		return
	}
	rt := a.Runtime()
	now := a.clock.Now()
	for _, d := range pending {
		svc := rt.Config.Services[d.Service]
		if svc == nil {
			v := &verification{deploy: d, cancel: func() {}, done: make(chan struct{}), tallies: map[string]*tally{}}
			a.metrics.verifying.Inc()
			a.decide(v, store.StatusInconclusive, fmt.Sprintf("service %q is no longer in the config", d.Service))
			continue
		}
		a.log.Info("resuming a verification cut off by a restart; its window starts again", "deploy", d.ID, "service", d.Service)
		a.startVerification(d, svc, rt.ServiceChecks(d.Service), now)
	}
}

// WaitDeploy returns the deploy, waiting up to wait (in real time) for a verdict while it
// is being verified.
func (a *Agent) WaitDeploy(ctx context.Context, id string, wait time.Duration) (*store.Deploy, error) {
	d, err := a.store.Deploy(ctx, id)
	if err != nil || d.Status != store.StatusVerifying || wait <= 0 {
		return d, err
	}
	a.mu.Lock()
	v := a.verify[id]
	a.mu.Unlock()
	if v == nil {
		// Decided between the read and the lookup (or cut off by a restart and not yet
		// resumed): read it again rather than answer with what was just true.
		return a.store.Deploy(ctx, id)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-v.done:
	case <-t.C:
	case <-ctx.Done():
		return d, nil
	}
	return a.store.Deploy(context.WithoutCancel(ctx), id)
}

// DeployCheck summarises one check's runs in a deploy's verification.
type DeployCheck struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	Runs         int      `json:"runs"`
	Passed       int      `json:"passed"`
	Failed       int      `json:"failed"`
	Errors       int      `json:"errors"`
	Inconclusive int      `json:"inconclusive"`
	LastOutcome  string   `json:"last_outcome,omitempty"`
	Reasons      []string `json:"reasons,omitempty"`
	RunURL       string   `json:"run_url,omitempty"`
	TraceID      string   `json:"trace_id,omitempty"`
	TraceURL     string   `json:"trace_url,omitempty"`
	HasBaseline  bool     `json:"has_baseline"`
	Halt         string   `json:"halt,omitempty"`
	// failedRun is the first run that did not pass (evidence for notifications).
	failedRun *store.Run
}

// DeployChecks summarises a deploy's runs per check, in the service's check order.
func (a *Agent) DeployChecks(ctx context.Context, d *store.Deploy) ([]*DeployCheck, error) {
	runs, err := a.store.DeployRuns(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	byName := map[string]*DeployCheck{}
	var order []*DeployCheck
	add := func(name, kind string) *DeployCheck {
		if dc := byName[name]; dc != nil {
			return dc
		}
		_, hasBase := d.Baseline[name]
		dc := &DeployCheck{Name: name, Kind: kind, HasBaseline: hasBase}
		byName[name] = dc
		order = append(order, dc)
		return dc
	}
	if svc := a.Runtime().Config.Services[d.Service]; svc != nil {
		for _, n := range svc.Checks {
			kind := ""
			if c := a.Runtime().Checks[n]; c != nil {
				kind = c.Kind
			}
			add(n, kind)
		}
	}
	for _, r := range runs {
		dc := add(r.Check, r.Kind)
		dc.Kind = r.Kind
		dc.Runs++
		dc.LastOutcome = r.Outcome
		switch checks.Outcome(r.Outcome) {
		case checks.Pass:
			dc.Passed++
		case checks.Fail:
			dc.Failed++
		case checks.Error:
			dc.Errors++
		case checks.Inconclusive:
			dc.Inconclusive++
		}
		if r.Outcome != string(checks.Pass) && dc.failedRun == nil {
			dc.failedRun = r
			dc.Reasons = r.Reasons
			dc.RunURL = a.runURL(r.ID)
			dc.TraceID, dc.TraceURL = r.TraceID, a.opts.Tracing.TraceURL(r.TraceID)
			dc.Halt = r.Halt
		}
	}
	return order, nil
}

// baseURL is how people reach this agent.
func (a *Agent) baseURL() string {
	if u := a.Runtime().Config.Agent.PublicURL; u != "" {
		return strings.TrimSuffix(u, "/")
	}
	return "http://" + a.Addr()
}

func (a *Agent) runURL(id int64) string {
	if id == 0 {
		return ""
	}
	return fmt.Sprintf("%s/runs/%d", a.baseURL(), id)
}
