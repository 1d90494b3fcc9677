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
	Tracing *tracing.Tracing
	// Store keeps history and state: store.SQLite for one agent, store.Postgres for
	// agents sharing it (in as many locations).
	Store    Store
	Registry *prometheus.Registry
	Clock    clock.Clock
	Logger   *slog.Logger
	Version  string
	// Revision is the commit the binary was built from (vigil_build_info).
	Revision string
	// Listener, when set, is used instead of listening on agent.listen (tests).
	Listener net.Listener
	// Browser reports whether the browser can start (readiness); nil means always.
	BrowserReady func(ctx context.Context) error
	// Seed makes scheduling offsets reproducible; 0 is random.
	Seed uint64
	// NoStartRuns keeps each check's first run at its random phase instead of at once
	// (tests that count what reaches a target); by default every check runs when the agent
	// starts, so probe_success and the status page have a result within seconds.
	NoStartRuns bool
	// Pprof serves Go's profiles under /debug/pprof/ (behind the API token), for
	// profiling a running agent; off by default.
	Pprof bool
	// OnLag, when set, also receives every scheduled run's due time and start lag
	// (benchmarks: the due time tells which ticks of a window started at all).
	OnLag func(due time.Time, lag time.Duration)
	// BoardSaveInterval is how often the uptime board is saved while the agent runs (it
	// is also saved as the agent stops); 0 is every 5 minutes. A start after a crash reads
	// back the board and the runs stored since it.
	BoardSaveInterval time.Duration
	// APIWriteTimeout bounds how long the API server takes to answer a request, long-polls
	// and manual runs apart; 0 is 30s.
	APIWriteTimeout time.Duration
	// StoreHoldWait is how long Run waits for another agent holding the same SQLite file
	// to stop before it gives up (store.SQLite.Hold); 0 is 15s.
	StoreHoldWait time.Duration
}

// Agent is a running vigil agent.
type Agent struct {
	opts    Options
	clock   clock.Clock
	log     *slog.Logger
	store   Store
	metrics *metrics
	// name, location and instance say who this agent is among the agents sharing its
	// store; they are fixed when it starts (members.go).
	name, location, instance string
	rt                       atomic.Pointer[Runtime]
	sched                    *Scheduler
	writer                   *runWriter
	server                   *http.Server
	ln                       net.Listener
	conns                    *connLimiter

	mu     sync.Mutex
	last   map[string]*checks.Result // newest result per check
	verify map[string]*verification  // deploys being verified, by id
	// measured is since when each check has measured what it measures (measured.go).
	measured map[string]measured

	// incMu serialises the changes of the incident state, store writes included; incView
	// guards the maps below for readers (API, status page, metrics, preflight), which take
	// it alone and so never wait for a store write, and writers, under incMu, take it only
	// to change a map.
	incMu     sync.Mutex
	incView   sync.RWMutex
	incidents map[string]*store.Incident      // the checks' incidents as last seen, by check
	streaks   map[string]*store.CheckLocation // this location's runs of each check (incidents.go)
	alive     map[string]bool                 // the agents sharing the store alive at the last heartbeat

	// board counts every check's runs in time buckets for the status page (board.go); it
	// holds the runs recorded from boardFrom on, and the store's from before once seeded.
	board     *board
	boardFrom time.Time

	runCtx     context.Context // lives until shutdown; verifications run under it
	cancelRuns context.CancelFunc
	// started closes once Run has resumed the verifications a restart cut off: deploys
	// registered before that would be resumed twice.
	started chan struct{}
	// seeded closes once the uptime board holds the store's history, or reading it failed.
	seeded   chan struct{}
	reloadMu sync.Mutex
	// registerMu serialises deploy registrations and the start of verifications of deploys
	// registered elsewhere (deploys.go, watch.go).
	registerMu sync.Mutex
	// waiting are the deploys this location reported on that wait for other locations,
	// with the end of the wait (watch.go); guarded by mu.
	waiting map[string]waitingDeploy
	// startedAt is when this run of the agent joined its store (members.go).
	startedAt time.Time
	// beats lets one heartbeat write run at a time (heartbeat.go).
	beats *beatTurn
	// unrecorded counts verdicts the store has not taken yet (readiness).
	unrecorded atomic.Int64
	// longPolls counts the GETs of a deploy waiting for its verdict (?wait=): at most half
	// of agent.max_connections wait at once, so busy connections never fill the cap.
	longPolls atomic.Int64
	// lanes are the outbox's notifiers being delivered to now (outbox_lanes.go).
	lanes     *outboxLanes
	verifyWG  sync.WaitGroup
	outboxSig chan struct{}
	// stopping closes when shutdown begins: verifications stop waiting for their next
	// round (they resume after a restart) while runs in flight finish.
	stopping chan struct{}
	// pageSizes size the status page's buffers (status.go).
	pageSizes pageSizes
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
	if opts.Deps.Heartbeats == nil {
		// Heartbeat checks read the beats posted to this agent's API, or to another's
		// sharing the store.
		opts.Deps.Heartbeats = checks.NewHeartbeats(opts.Clock.Now, storedBeats{opts.Store, agentName(opts.Config.Agent)})
	}
	began := opts.Clock.Now()
	a := &Agent{opts: opts, clock: opts.Clock, store: opts.Store, metrics: newMetrics(opts.Registry, opts.Version, opts.Revision),
		last: map[string]*checks.Result{}, verify: map[string]*verification{}, outboxSig: make(chan struct{}, 1), lanes: newOutboxLanes(), stopping: make(chan struct{}),
		incidents: map[string]*store.Incident{}, streaks: map[string]*store.CheckLocation{}, alive: map[string]bool{}, started: make(chan struct{}), seeded: make(chan struct{}),
		waiting: map[string]waitingDeploy{}, beats: newBeatTurn(), instance: newInstanceID(), board: newBoard(began), boardFrom: began}
	a.location = opts.Config.Agent.Location
	a.name = agentName(opts.Config.Agent)
	a.metrics.streaks, a.metrics.incidents = a.streakCounts, a.incidentCounts
	// The runs' own test (runs.go): a run the metrics drop is one the runs drop too.
	a.metrics.configured = a.inConfig
	a.metrics.stored.scope = a.storedScope
	if s, ok := opts.Store.(interface{ ObserveWriteWaits(func(time.Duration)) }); ok { // SQLite: writes queue
		wait := a.metrics.storeWait
		s.ObserveWriteWaits(func(d time.Duration) { wait.Observe(d.Seconds()) })
	}
	a.log = slog.New(&redactHandler{next: opts.Logger.Handler(), red: a.redactor})
	a.runCtx, a.cancelRuns = context.WithCancel(context.Background())
	rt, err := BuildRuntime(opts.Config, opts.Deps, a.notifierOptions(), a.clock.Now())
	if err != nil {
		return nil, err
	}
	a.rt.Store(rt)
	a.metrics.configure(rt.Config)
	a.metrics.reloadOK.Set(1)
	a.metrics.reloadTime.Set(float64(a.clock.Now().Unix()))
	a.sched = NewScheduler(SchedulerOptions{
		Clock: a.clock, Concurrency: rt.Config.Agent.Concurrency, BrowserConcurrency: rt.Config.Agent.BrowserConcurrency,
		Execute: a.scheduledRun, Seed: opts.Seed, RunAtStart: !opts.NoStartRuns,
		OnLag: func(due time.Time, d time.Duration) {
			a.metrics.schedLag.Observe(d.Seconds())
			if opts.OnLag != nil {
				opts.OnLag(due, d)
			}
		},
		OnSkip: a.metrics.skip,
	})
	maxSize := func() configs.ByteSize { return a.Runtime().Config.Store.MaxSize }
	every := opts.BoardSaveInterval
	if every <= 0 {
		every = 5 * time.Minute
	}
	a.writer = newRunWriter(a.store, a.log, a.boardKeeper(every), func() int64 { return int64(maxSize()) },
		func(ctx context.Context) { a.purgeToSize(ctx, maxSize()) })
	return a, nil
}

func (a *Agent) notifierOptions() alerting.Options {
	return alerting.Options{Now: a.clock.Now, Logger: a.log, UserAgent: "vigil/" + a.opts.Version}
}

// Runtime returns the configuration in force.
func (a *Agent) Runtime() *Runtime { return a.rt.Load() }

// HistoryRead is closed once the status page's uptime figures hold the store's history
// from before Run started (read while the checks already run: a large store takes a while)
// or reading it failed.
func (a *Agent) HistoryRead() <-chan struct{} { return a.seeded }

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
	release, err := a.holdStore(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := a.Listen(); err != nil {
		return err
	}
	a.join(ctx)
	a.loadLatest(ctx)
	a.loadIncidents(ctx)
	a.closeLeftIncidents(ctx)
	a.noteMeasured(ctx, a.Runtime())

	runCtx, cancelRuns := a.runCtx, a.cancelRuns
	defer cancelRuns()

	var bg sync.WaitGroup
	bg.Add(6)
	go func() {
		defer bg.Done()
		defer close(a.seeded)
		a.readHistory(runCtx)
	}()
	go func() { defer bg.Done(); a.writer.run(runCtx) }()
	go func() { defer bg.Done(); a.outboxLoop(runCtx) }()
	go func() { defer bg.Done(); a.purgeLoop(runCtx) }()
	go func() { defer bg.Done(); a.heartbeatLoop(runCtx) }()

	// Deploys left verifying by a restart, and those registered through other agents,
	// are taken up the same way: the first look here, the next ones by the watch.
	a.watchDeploys(runCtx)
	go func() { defer bg.Done(); a.watchLoop(runCtx) }()
	close(a.started)

	a.server = a.newServer()
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.serve(a.ln) }()
	a.log.Info("agent listening", "addr", a.Addr(), "checks", len(a.Runtime().Order), "version", a.opts.Version,
		"agent", a.name, "location", a.location)

	schedCtx, stopSched := context.WithCancel(runCtx)
	a.sched.Set(a.Runtime().Order)
	schedDone := make(chan struct{})
	// The runs get runCtx, not schedCtx: stopping the schedule leaves the runs in flight
	// their agent.shutdown_grace (given schedCtx, they were cancelled at once).
	go func() { a.sched.RunUntil(schedCtx, runCtx); close(schedDone) }()

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
	a.writer.flushAndSave(shutdownCtx)
	a.leave(shutdownCtx)
	a.log.Info("agent stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// holdStore takes a SQLite store for this agent, waiting a while for an agent that still
// holds it (a restart whose old process is flushing), then refusing to run: two agents on
// one file ran every check twice and delivered each other's notifications again.
func (a *Agent) holdStore(ctx context.Context) (release func(), err error) {
	h, ok := a.store.(interface {
		Hold(context.Context, time.Duration, func(string)) (func(), error)
	})
	if !ok { // PostgreSQL: agents share it
		return func() {}, nil
	}
	wait := a.opts.StoreHoldWait
	if wait <= 0 {
		wait = 15 * time.Second
	}
	release, err = h.Hold(ctx, wait, func(holder string) {
		a.log.Warn("the store is held by another agent; waiting for it to stop", "holder", holder, "wait", wait)
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return release, nil
}
