// Package agent is the long-running vigil: it schedules checks, verifies deploys and
// decides their verdicts, keeps history in the store, serves the API, metrics and status
// page, and hands verdicts to alerting through the durable outbox. It owns time (an
// injected clock), deadlines, retries and fan-out; checks only do the work of one run.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/clock"
	"github.com/vigil-monitor/vigil/internal/tracing"
	"github.com/vigil-monitor/vigil/store"
)

// Options are what main builds and hands the agent.
type Options struct {
	// Config is the loaded initial configuration; ConfigPath is where reloads read it.
	Config     *configs.Config
	ConfigPath string
	// LoadConfig reloads the configuration: configs.Load, or configs.LoadPartial (a partial
	// config with its problems is built too, so a reload reports every problem in one pass).
	LoadConfig func() (*configs.Config, error)
	Deps       checks.Deps
	// Tracing (nil: off) makes each deploy verification a trace; Deps.Tracing should be the
	// same, so that check runs and probe requests join it.
	Tracing  *tracing.Tracing
	Store    *store.SQLite
	Registry *prometheus.Registry
	Clock    clock.Clock
	Logger   *slog.Logger
	Version  string
	// Listener, when set, is used instead of listening on agent.listen (tests).
	Listener net.Listener
	// Browser reports whether the browser can start (readiness); nil means always.
	BrowserReady func(ctx context.Context) error
	// Seed makes scheduling offsets reproducible; 0 is random.
	Seed uint64
	// OnLag, when set, also receives every scheduled run's due time and start lag
	// (benchmarks: the due time tells which ticks of a window started at all).
	OnLag func(due time.Time, lag time.Duration)
	// APIWriteTimeout bounds how long the API server takes to answer a request, long-polls
	// and manual runs apart; 0 is 30s.
	APIWriteTimeout time.Duration
}

// Agent is a running vigil agent.
type Agent struct {
	opts    Options
	clock   clock.Clock
	log     *slog.Logger
	store   *store.SQLite
	metrics *metrics
	rt      atomic.Pointer[Runtime]
	sched   *Scheduler
	writer  *runWriter
	server  *http.Server
	ln      net.Listener
	conns   *connLimiter

	mu     sync.Mutex
	last   map[string]*checks.Result // newest result per check
	verify map[string]*verification  // deploys being verified, by id

	incMu     sync.Mutex
	incidents map[string]*store.Incident // scheduled monitoring's incident state, by check

	runCtx     context.Context // lives until shutdown; verifications run under it
	cancelRuns context.CancelFunc
	// started closes once Run has resumed the verifications a restart cut off: deploys
	// registered before that would be resumed twice.
	started  chan struct{}
	reloadMu sync.Mutex
	// registerMu serialises deploy registrations (verify.go).
	registerMu sync.Mutex
	// unrecorded counts verdicts the store has not taken yet (readiness).
	unrecorded atomic.Int64
	verifyWG   sync.WaitGroup
	outboxSig  chan struct{}
	// stopping closes when shutdown begins: verifications stop waiting for their next
	// round (they resume after a restart) while runs in flight finish.
	stopping chan struct{}
}

// New builds an agent from a loaded config. It opens nothing that Run would not close.
func New(opts Options) (*Agent, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Store == nil {
		return nil, errors.New("agent: no store")
	}
	if opts.Deps.HTTP == nil {
		// The agent must know the shared client: verification sessions are made from it.
		opts.Deps.HTTP = checks.NewHTTPClient("vigil/" + opts.Version)
	}
	a := &Agent{opts: opts, clock: opts.Clock, store: opts.Store, metrics: newMetrics(opts.Registry),
		last: map[string]*checks.Result{}, verify: map[string]*verification{}, outboxSig: make(chan struct{}, 1), stopping: make(chan struct{}),
		incidents: map[string]*store.Incident{}, started: make(chan struct{})}
	a.log = slog.New(&redactHandler{next: opts.Logger.Handler(), red: a.redactor})
	a.runCtx, a.cancelRuns = context.WithCancel(context.Background())
	rt, err := BuildRuntime(opts.Config, opts.Deps, a.notifierOptions(), a.clock.Now())
	if err != nil {
		return nil, err
	}
	a.rt.Store(rt)
	a.metrics.reloadOK.Set(1)
	a.metrics.reloadTime.Set(float64(a.clock.Now().Unix()))
	a.sched = NewScheduler(SchedulerOptions{
		Clock: a.clock, Concurrency: rt.Config.Agent.Concurrency, BrowserConcurrency: rt.Config.Agent.BrowserConcurrency,
		Execute: a.scheduledRun, Seed: opts.Seed,
		OnLag: func(due time.Time, d time.Duration) {
			a.metrics.schedLag.Observe(d.Seconds())
			if opts.OnLag != nil {
				opts.OnLag(due, d)
			}
		},
		OnSkip: func(c string) { a.metrics.skipped.WithLabelValues(c).Inc() },
	})
	a.writer = newRunWriter(a.store, a.log, func() int64 { return int64(a.Runtime().Config.Store.MaxSize) })
	return a, nil
}

func (a *Agent) notifierOptions() alerting.Options {
	return alerting.Options{Now: a.clock.Now, Logger: a.log, UserAgent: "vigil/" + a.opts.Version}
}

// Runtime returns the configuration in force.
func (a *Agent) Runtime() *Runtime { return a.rt.Load() }

// Addr is the address the API listens on, once Run has started listening.
func (a *Agent) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Listen opens the API listener (Run calls it when it has not been called).
func (a *Agent) Listen() error {
	if a.ln != nil {
		return nil
	}
	if a.opts.Listener != nil {
		a.ln = a.opts.Listener
		return nil
	}
	ln, err := net.Listen("tcp", a.Runtime().Config.Agent.Listen)
	if err != nil {
		return fmt.Errorf("agent: listening on %s: %w (set agent.listen or VIGIL_AGENT__LISTEN to a free address)", a.Runtime().Config.Agent.Listen, err)
	}
	a.ln = ln
	return nil
}

// Run runs the agent until ctx ends, then shuts down: it stops scheduling, gives runs in
// flight agent.shutdown_grace to finish before cancelling them, flushes the store and
// returns nil.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Listen(); err != nil {
		return err
	}
	a.loadLatest(ctx)
	a.loadIncidents(ctx)
	a.closeLeftIncidents(ctx)

	runCtx, cancelRuns := a.runCtx, a.cancelRuns
	defer cancelRuns()

	var bg sync.WaitGroup
	bg.Add(3)
	go func() { defer bg.Done(); a.writer.run(runCtx) }()
	go func() { defer bg.Done(); a.outboxLoop(runCtx) }()
	go func() { defer bg.Done(); a.purgeLoop(runCtx) }()

	a.resumeVerifications(runCtx)
	close(a.started)

	a.server = a.newServer()
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.serve(a.ln) }()
	a.log.Info("agent listening", "addr", a.Addr(), "checks", len(a.Runtime().Order), "version", a.opts.Version)

	schedCtx, stopSched := context.WithCancel(runCtx)
	a.sched.Set(a.Runtime().Order)
	schedDone := make(chan struct{})
	go func() { a.sched.Run(schedCtx); close(schedDone) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("agent: API server: %w", err)
	}

	a.log.Info("agent stopping: no new runs; waiting for runs in flight", "grace", a.Runtime().Config.Agent.ShutdownGrace)
	stopSched()
	close(a.stopping)
	<-schedDone
	inflight := make(chan struct{})
	go func() { a.sched.Wait(); a.verifyWG.Wait(); close(inflight) }()
	grace := time.NewTimer(a.Runtime().Config.Agent.ShutdownGrace)
	select {
	case <-inflight:
		grace.Stop()
	case <-grace.C:
		a.log.Warn("agent stopping: grace period over, cancelling runs in flight")
		cancelRuns()
		<-inflight
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.server.Shutdown(shutdownCtx)
	cancelRuns()
	bg.Wait()
	a.writer.flush(shutdownCtx)
	a.log.Info("agent stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Reload builds the config anew off to the side and swaps it in whole. A bad config is
// reported and the old one keeps running.
func (a *Agent) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.opts.LoadConfig == nil {
		return errors.New("agent: no config loader")
	}
	cfg, err := a.opts.LoadConfig()
	var rt *Runtime
	if cfg != nil { // a partly loaded config still gets built: every problem is reported at once
		rt, err = BuildRuntime(cfg, a.opts.Deps, a.notifierOptions(), a.clock.Now())
	}
	if err == nil {
		err = a.reloadAllowed(cfg)
	}
	if err != nil {
		a.metrics.reloadOK.Set(0)
		a.log.Error("config reload rejected; the previous config keeps running", "file", a.opts.ConfigPath, "error", err.Error())
		return err
	}
	old := a.rt.Swap(rt)
	if later := restartOnly(old.Config, cfg); len(later) > 0 {
		a.log.Warn("config reloaded, but these settings changed and take effect only at the next restart: "+strings.Join(later, ", "),
			"settings", later)
	}
	a.sched.SetLimits(cfg.Agent.Concurrency, cfg.Agent.BrowserConcurrency)
	for _, c := range old.Order {
		if rt.Checks[c.Name] == nil || rt.Checks[c.Name].Kind != c.Kind {
			a.metrics.forget(c.Name, c.Kind, old.Config.Agent.Location)
		}
	}
	a.sched.Set(rt.Order)
	a.closeLeftIncidents(context.WithoutCancel(a.runCtx))
	a.metrics.reloadOK.Set(1)
	a.metrics.reloadTime.Set(float64(a.clock.Now().Unix()))
	a.log.Info("config reloaded", "file", a.opts.ConfigPath, "checks", len(rt.Order))
	return nil
}

// reloadAllowed refuses a config that would open the API to the network: the socket keeps
// its address until a restart, whatever the new agent.listen says.
func (a *Agent) reloadAllowed(cfg *configs.Config) error {
	if a.ln == nil || cfg.Agent.APIToken.IsSet() {
		return nil
	}
	host, _, err := net.SplitHostPort(a.ln.Addr().String())
	if err != nil || configs.IsLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("%s: agent.api_token is not set, but the API listens on %s, reachable from other hosts, until a restart: "+
		"keep a token, or set agent.listen to a loopback address and restart", cfg.File, a.ln.Addr())
}

// restartOnly names the settings that differ between two configs and apply only when the
// agent starts: the socket, the store, and the browser and tracing set up in main. Every
// other setting applies on reload.
func restartOnly(old, cfg *configs.Config) []string {
	var out []string
	for _, s := range []struct {
		key      string
		was, now any
	}{
		{"agent.listen", old.Agent.Listen, cfg.Agent.Listen},
		{"store.driver", old.Store.Driver, cfg.Store.Driver},
		{"store.dsn", old.Store.DSN, cfg.Store.DSN},
		{"browser.path", old.Browser.Path, cfg.Browser.Path},
		{"browser.flags", strings.Join(old.Browser.Flags, " "), strings.Join(cfg.Browser.Flags, " ")},
		{"tracing.otlp_endpoint", old.Tracing.OTLPEndpoint, cfg.Tracing.OTLPEndpoint},
		{"tracing.sample_ratio", ratioText(old.Tracing.SampleRatio), ratioText(cfg.Tracing.SampleRatio)},
		{"tracing.trace_url", old.Tracing.TraceURL, cfg.Tracing.TraceURL},
	} {
		if s.was != s.now {
			out = append(out, s.key)
		}
	}
	return out
}

func ratioText(r *float64) string {
	if r == nil {
		return ""
	}
	return strconv.FormatFloat(*r, 'g', -1, 64)
}

// scheduledRun is one scheduled run of c.
func (a *Agent) scheduledRun(ctx context.Context, c *checks.Check, due time.Time) {
	res, ok := a.execute(ctx, c, checks.Input{}, "")
	if !ok {
		return
	}
	a.onScheduledResult(ctx, c, res, toStoreRun(res, ""))
}

// execute runs c with its retries inside a hard deadline and records the result in memory
// and metrics. Persisting is the caller's choice. ok is false when ctx was cancelled
// before the run ended (its verification was decided or superseded, the check was
// reloaded away, the agent is shutting down): such a run measured nothing about the
// target, so it changes no metric, no last result, no incident and no history.
func (a *Agent) execute(ctx context.Context, c *checks.Check, in checks.Input, deployID string) (res *checks.Result, ok bool) {
	retries := *c.Config.Retries
	// Every attempt has its own timeout; the whole run, retries and backoff included, has
	// one more bound so nothing can hold a concurrency slot forever.
	limit := time.Duration(retries+1)*c.Timeout + time.Duration(retries)*5*time.Second + time.Second
	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	res = checks.RunWithRetries(runCtx, c, in, checks.Retry{Attempts: retries})
	if ctx.Err() != nil {
		a.log.Debug("run cancelled; not recorded", "check", c.Name, "deploy", deployID, "cause", context.Cause(ctx))
		return res, false
	}
	res.Location = a.Runtime().Config.Agent.Location
	a.metrics.observe(res)
	a.mu.Lock()
	a.last[c.Name] = res
	a.mu.Unlock()
	a.log.Debug("run", "check", c.Name, "outcome", res.Outcome, "duration", res.Duration, "deploy", deployID)
	return res, true
}

// LastResult returns the newest result of a check.
func (a *Agent) LastResult(name string) *checks.Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last[name]
}

func (a *Agent) loadLatest(ctx context.Context) {
	runs, err := a.store.LatestRuns(ctx)
	if err != nil {
		a.log.Warn("could not load the latest results", "error", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range runs {
		a.last[r.Check] = fromStoreRun(r)
	}
}

// purgeLoop bounds the store by age (store.retention, hourly) and by size
// (store.max_size: every minute, and whenever the runs written since the last look add up
// to a twentieth of it).
func (a *Agent) purgeLoop(ctx context.Context) {
	var aged time.Time
	for {
		cfg := a.Runtime().Config.Store
		if now := a.clock.Now(); now.Sub(aged) >= time.Hour {
			aged = now
			n, err := a.store.Purge(ctx, now.Add(-cfg.Retention))
			if err != nil && ctx.Err() == nil {
				a.log.Warn("purging old history failed", "error", err)
			} else if n > 0 {
				a.log.Info("purged history past retention", "rows", n, "retention", cfg.Retention)
			}
		}
		a.purgeToSize(ctx, cfg.MaxSize)
		t := a.clock.NewTimer(time.Minute)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		case <-a.writer.grown:
			t.Stop()
		}
	}
}

func (a *Agent) purgeToSize(ctx context.Context, max configs.ByteSize) {
	n, size, err := a.store.PurgeToSize(ctx, int64(max))
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("keeping the store under store.max_size failed", "max_size", max, "error", err)
		}
		return
	}
	a.metrics.storeBytes.Set(float64(size))
	if n > 0 {
		a.log.Info("the store reached store.max_size: deleted the oldest history", "rows", n,
			"size", configs.ByteSize(size), "max_size", max)
	}
}

func toStoreRun(r *checks.Result, deployID string) *store.Run {
	sr := &store.Run{Check: r.Check, Kind: r.Kind, Started: r.Started, Duration: r.Duration, Outcome: string(r.Outcome),
		Attempts: r.Attempts, DeployID: deployID, Reasons: r.Reasons, Vars: r.Vars, Transcript: r.Transcript,
		TraceID: r.TraceID, Halt: r.Halt, Location: r.Location}
	for _, art := range r.Artifacts {
		sr.Artifacts = append(sr.Artifacts, &store.Artifact{Name: art.Name, ContentType: art.ContentType, Data: art.Data})
	}
	return sr
}

func fromStoreRun(sr *store.Run) *checks.Result {
	r := &checks.Result{Check: sr.Check, Kind: sr.Kind, Outcome: checks.Outcome(sr.Outcome), Reasons: sr.Reasons, Vars: sr.Vars,
		Started: sr.Started, Duration: sr.Duration, Attempts: sr.Attempts, Transcript: sr.Transcript, TraceID: sr.TraceID,
		Location: sr.Location, Halt: sr.Halt}
	for _, art := range sr.Artifacts {
		r.Artifacts = append(r.Artifacts, &checks.Artifact{Name: art.Name, ContentType: art.ContentType})
	}
	return r
}

// runWriter batches scheduled runs into one transaction every 100ms: a thousand runs a
// second cost a few commits, not a thousand.
type runWriter struct {
	store *store.SQLite
	log   *slog.Logger
	mu    sync.Mutex
	buf   []*store.Run
	kick  chan struct{}
	// grown wakes the purge loop when the runs written since its last look add up to
	// a twentieth of maxSize.
	grown   chan struct{}
	maxSize func() int64
	written int64
}

func newRunWriter(s *store.SQLite, log *slog.Logger, maxSize func() int64) *runWriter {
	return &runWriter{store: s, log: log, kick: make(chan struct{}, 1), grown: make(chan struct{}, 1), maxSize: maxSize}
}

func (w *runWriter) add(r *store.Run) {
	w.mu.Lock()
	w.buf = append(w.buf, r)
	full := len(w.buf) >= 512
	w.mu.Unlock()
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

func (w *runWriter) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
		w.flush(ctx)
	}
}

func (w *runWriter) flush(ctx context.Context) {
	w.mu.Lock()
	batch := w.buf
	w.buf = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := w.store.SaveRuns(context.WithoutCancel(ctx), batch); err != nil {
		w.log.Error("saving runs failed", "runs", len(batch), "error", err)
		return
	}
	w.mu.Lock()
	for _, r := range batch {
		w.written += approxSize(r)
	}
	full := w.written >= w.maxSize()/20
	if full {
		w.written = 0
	}
	w.mu.Unlock()
	if full {
		select {
		case w.grown <- struct{}{}:
		default:
		}
	}
}

// approxSize is about what a run takes in the store: its evidence, transcript and a row.
func approxSize(r *store.Run) int64 {
	n := int64(1 << 10)
	for _, a := range r.Artifacts {
		n += int64(len(a.Data))
	}
	for _, l := range r.Transcript {
		n += int64(len(l))
	}
	return n
}
