package agent

// Deploys: registering one (a verification starts), a newer one superseding it, waiting
// for its verdict, and the summary of its checks' runs that the API and notifications show.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
	"go.opentelemetry.io/otel/attribute"
)

// DeployRequest is the body of POST /api/v1/deploys.
type DeployRequest struct {
	Service     string   `json:"service"`
	Services    []string `json:"services"`
	Version     string   `json:"version"`
	Environment string   `json:"environment"`
	Commit      string   `json:"commit"`
	// Links are what the pipeline wants people to open from the verdict (the CI run, the
	// diff): shown in Slack and on the status page, sent with webhooks.
	Links []store.Link `json:"links"`
	// Key is the caller's Idempotency-Key (a header, not the body): a registration sent
	// again under it registers nothing new and answers with the deploys it registered.
	Key string `json:"-"`
	// Source is the prefix of the keys of the source registering the deploy, when it may
	// not supersede its own deploys of another environment (store.Deploy.Source): set by
	// a webhook's handler, never by the body.
	Source string `json:"-"`
}

// Limits on a deploy's links.
const (
	maxLinks       = 10
	maxLinkName    = 40
	maxLinkURLSize = 2000
)

// checkLinks says what is wrong with a deploy's links, "" when nothing is.
func checkLinks(links []store.Link) string {
	if len(links) > maxLinks {
		return fmt.Sprintf("at most %d links per deploy, not %d", maxLinks, len(links))
	}
	seen := map[string]bool{}
	for i, l := range links {
		u, err := url.Parse(l.URL)
		switch {
		case strings.TrimSpace(l.Name) == "" || len(l.Name) > maxLinkName:
			return fmt.Sprintf("links[%d].name must be 1 to %d characters: {\"name\":\"CI run\",\"url\":\"https://...\"}", i, maxLinkName)
		case seen[l.Name]:
			return fmt.Sprintf("links[%d]: the name %q is used twice", i, text.Ellipsis(l.Name, 40))
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(l.URL) > maxLinkURLSize:
			return fmt.Sprintf("links[%d].url must be an http(s) URL of at most %d characters, not %q", i, maxLinkURLSize, text.Ellipsis(l.URL, 80))
		}
		seen[l.Name] = true
	}
	return ""
}

// requestError is a problem with what a caller sent: it becomes a 4xx with this message.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

// unknownService is the 422 for a service the config does not have, with the nearest name.
func unknownService(rt *Runtime, name string) *requestError {
	known := make([]string, 0, len(rt.Config.Services))
	for n := range rt.Config.Services {
		known = append(known, n)
	}
	sort.Strings(known)
	return &requestError{422, fmt.Sprintf("unknown service %q; %s", text.Ellipsis(name, 80), configs.DidYouMean(name, known))}
}

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
	if msg := checkLinks(req.Links); msg != "" {
		return nil, &requestError{400, msg}
	}
	seen := map[string]bool{}
	for _, s := range services {
		if _, ok := rt.Config.Services[s]; !ok {
			return nil, unknownService(rt, s)
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
	list := rt.serviceChecks(service)
	// Registrations are serialised: the store's "supersede the one verifying" and the
	// start of the new verification must happen in the same order for every deploy, or a
	// registration racing another could start verifying a deploy the store already
	// superseded.
	a.registerMu.Lock()
	defer a.registerMu.Unlock()
	// Where the logs stood just before the deploy's time, and (startVerification) just
	// after: a log line without a timestamp is dated by them (checks.Check.MarkDeploy).
	for _, c := range list {
		c.MarkDeploy()
	}
	now := a.clock.Now()
	d := &store.Deploy{ID: newDeployID(now), Service: service, Version: req.Version, Environment: req.Environment,
		Commit: req.Commit, CreatedAt: now, Status: store.StatusVerifying, Location: a.location,
		Locations: a.verifyingLocations(ctx, service, now)}
	d.Baseline = a.baseline(ctx, list, svc, a.baselineAt(ctx, service, "", now))
	d.RequestKey, d.Source = req.Key, req.Source
	d.RollbackOf = a.rolledBack(ctx, service, req.Version)
	// The deploy_superseded that closes what a superseded deploy's deploy_started opened is
	// written in the transaction that supersedes it, as a verdict's notifications are: a
	// verdict reported at the same moment comes first (the deploy is not superseded, and
	// no deploy_superseded is written) or finds it superseded and decides nothing. Who
	// heard it start is read before, as for a cancel.
	heard, rest := a.startsHeard(ctx, service)
	by := fmt.Sprintf("superseded by %s %s (deploy %s)", service, d.Version, d.ID)
	olds := map[string]*store.Deploy{} // what the supersede found, for the timeline
	superseded, err := a.store.CreateDeploy(ctx, d, func(old *store.Deploy) []*store.OutboxEntry {
		olds[old.ID] = old
		h, ok := heard[old.ID]
		if !ok {
			h = rest
		}
		return a.deployClosed(old, configs.EventDeploySuperseded, by, d, now, h)
	})
	var again *store.RegisteredError
	var conflict *store.SourceConflictError
	switch {
	case errors.As(err, &again):
		return a.registeredAgain(again.Deploy, req)
	case errors.As(err, &conflict):
		return nil, conflict
	case err != nil:
		return nil, fmt.Errorf("recording the deploy: %w", err)
	}
	if len(req.Links) > 0 {
		if err := a.store.SetDeployLinks(ctx, d.ID, req.Links); err != nil {
			a.log.Warn("recording a deploy's links failed; its messages go without them", "deploy", d.ID, "error", err)
		}
	}
	for _, id := range superseded {
		old := olds[id]
		if old == nil {
			old = &store.Deploy{ID: id, Service: service}
		}
		a.stopVerification(old, by, now)
	}
	a.log.Info("deploy registered; verifying", "deploy", d.ID, "service", service, "version", d.Version,
		"locations", d.Locations, "rounds", svc.Verify.Count, "interval", svc.Verify.Interval, "initial_delay", svc.Verify.InitialDelay, "checks", len(list))
	a.startVerification(ctx, d, svc, list, now)
	if err := a.store.Enqueue(ctx, a.deployStarted(d, now)); err != nil {
		a.log.Warn("enqueueing deploy_started failed", "deploy", d.ID, "error", err)
	}
	a.signalOutbox()
	return d, nil
}

// rolledBack is the deploy that a deploy of version rolls back: the service's newest
// deploy, when it failed verification and version is what its rollback went back to (the
// newest version that passed before it). "" when the deploy is not a rollback.
func (a *Agent) rolledBack(ctx context.Context, service, version string) string {
	list, err := a.store.ServiceDeploys(ctx, service, 1)
	if err != nil || len(list) == 0 {
		return ""
	}
	if last := list[0]; last.Status == store.StatusFailed && version != "" && a.previousVersion(ctx, last) == version {
		return last.ID
	}
	return ""
}

// registeredAgain answers a registration sent again under the key that registered prev
// (its answer lost on the way, a pipeline's retry): prev as it stands, verifying or
// decided, and nothing started or sent again. The same key for another deploy of the
// service is the caller's mistake, and registers nothing.
func (a *Agent) registeredAgain(prev *store.Deploy, req DeployRequest) (*store.Deploy, error) {
	if prev.Version != req.Version || prev.Environment != req.Environment || prev.Commit != req.Commit {
		return nil, &requestError{422, fmt.Sprintf("the Idempotency-Key %q registered %s %s (deploy %s) already; a different deploy needs a key of its own",
			text.Ellipsis(req.Key, 80), prev.Service, text.Ellipsis(prev.Version, 80), prev.ID)}
	}
	a.log.Info("deploy registered again under its key; answering with it", "deploy", prev.ID, "service", prev.Service, "status", prev.Status)
	return prev, nil
}

// stopVerification ends a superseded verification: its runs are cancelled (and not
// recorded) and its waiters see the superseded status. Its deploy_superseded notification
// was written with the supersede; the timeline gets the event here, as a cancel's, by (the
// deploy that superseded it) in its summary. The agent that registered the newer deploy
// records it, once: one verifying it elsewhere only stops (watch.go).
func (a *Agent) stopVerification(old *store.Deploy, by string, at time.Time) {
	id, service := old.ID, old.Service
	a.metrics.verdicts.WithLabelValues(service, store.StatusSuperseded).Inc()
	a.recordEvent(&store.Event{At: at, Kind: "deploy_" + store.StatusSuperseded, Service: service, DeployID: id,
		Summary: strings.TrimSpace(service+" "+old.Version) + ": " + by})
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
	a.log.Info("deploy superseded; its verification stops, and deploy_superseded closes what its deploy_started opened", "deploy", id, "service", service)
}

// WaitDeploy returns the deploy, waiting up to wait (in real time) for a verdict while it
// is being verified.
func (a *Agent) WaitDeploy(ctx context.Context, id string, wait time.Duration) (*store.Deploy, error) {
	d, err := a.store.Deploy(ctx, id)
	switch {
	case wait <= 0, errors.Is(err, store.ErrNotFound):
		return d, err
	case err == nil && d.Status != store.StatusVerifying:
		return d, nil
	}
	// The verdict may come from this agent or, where agents share the store, from another:
	// wake when this location's verification ends, and look at the store now and then.
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	poll := time.NewTicker(deployPoll)
	defer poll.Stop()
	for {
		a.mu.Lock()
		v := a.verify[id]
		a.mu.Unlock()
		var done <-chan struct{}
		if v != nil {
			done = v.done
		}
		last := false
		select {
		case <-done:
		case <-poll.C:
		case <-deadline.C:
			last = true
		case <-ctx.Done():
			return d, err
		}
		// A read the store fails now (a full disk, a database restarting) ends no wait:
		// the verdict is looked for again at the next poll, and the wait ends on the last
		// state read, as a long-poll does when nothing changed (on the error when no read
		// succeeded).
		cur, rerr := a.store.Deploy(context.WithoutCancel(ctx), id)
		switch {
		case errors.Is(rerr, store.ErrNotFound):
			return nil, rerr
		case rerr != nil:
			a.log.Debug("reading a deploy for a long-poll failed; looking again", "deploy", id, "error", rerr)
			if d == nil {
				err = rerr
			}
		case cur.Status != store.StatusVerifying:
			return cur, nil
		default:
			d, err = cur, nil
		}
		if last {
			return d, err
		}
	}
}

// deployPoll is how often a long-poll looks at the store for a verdict given elsewhere.
const deployPoll = 100 * time.Millisecond

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
	// ReadyMS is how long after the deploy's registration the check's first passing run
	// ended, in any location: when the new version first passed it. Absent until then.
	ReadyMS *int64 `json:"ready_ms,omitempty"`
	// UsualReadyMS is the check's usual startup (verify.ready_slowdown's measure): the
	// median of its ReadyMS in the service's last deploys that passed before this one.
	// Absent until three of them show it.
	UsualReadyMS *int64 `json:"usual_ready_ms,omitempty"`
	// failedRun is the first run that did not pass (evidence for notifications).
	failedRun *store.RunRecord
}

// readyMS is how long after its registration the deploy's new version had passed every
// check once (the slowest check's ReadyMS), or nil while a check has not passed.
func readyMS(list []*DeployCheck) *int64 {
	var out *int64
	for _, dc := range list {
		if dc.ReadyMS == nil {
			return nil
		}
		if out == nil || *dc.ReadyMS > *out {
			out = dc.ReadyMS
		}
	}
	return out
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
			ms := max(r.Started.Add(r.Duration).Sub(d.CreatedAt).Milliseconds(), 0)
			if dc.ReadyMS == nil || ms < *dc.ReadyMS {
				dc.ReadyMS = &ms
			}
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
	passed, firsts, err := a.passedBefore(ctx, d, usualDeploys)
	if err != nil {
		a.log.Warn("reading earlier deploys' startup failed; the deploy's checks go without their usual startup", "deploy", d.ID, "error", err)
	}
	for _, dc := range order {
		if usual, n := usualStartup(passed, firsts, dc.Name); n > 0 {
			ms := usual.Milliseconds()
			dc.UsualReadyMS = &ms
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
