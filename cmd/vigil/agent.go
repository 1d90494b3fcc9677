package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/agent"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/binpages"
	"github.com/vigil-monitor/vigil/internal/memlimit"
	"github.com/vigil-monitor/vigil/store"
)

type agentFlags struct {
	config    string
	listen    string
	logLevel  string
	logJSON   bool
	pprof     bool
	memRatio  float64
	gcPercent int
	lazyPages bool
}

func newAgentCmd() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run checks on their schedules, verify deploys, serve the API and status page",
		Long: `agent is the long-running vigil, as a sidecar or a small service. It runs every check
on its 'every' interval, verifies deploys registered through POST /api/v1/deploys (or
'vigil gate'), keeps history in its store, sends notifications through a durable outbox,
and serves the API, /metrics, /healthz, /readyz and a status page.

Signals: SIGTERM or SIGINT stop it gracefully (runs in flight get agent.shutdown_grace);
SIGHUP, or a change to the config file, reloads the config. A config that does not load
is reported and the running one is kept.`,
		Example: `  vigil agent -c /etc/vigil/vigil.yaml
  VIGIL_AGENT__API_TOKEN=s3cret vigil agent --listen :9595`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return jsonExit(f, runAgent(cmd, f)) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "config file (default $VIGIL_CONFIG, then ./vigil.yaml)")
	fl.StringVar(&f.listen, "listen", "", "API address, overriding agent.listen")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of text")
	fl.BoolVar(&f.pprof, "pprof", false, "serve Go's profiles under /debug/pprof/ (behind the API token), to profile a running agent")
	fl.IntVar(&f.gcPercent, "gc-percent", 0, "Go's GOGC for the agent (how far the heap grows past what is live before it is collected, in percent), unless GOGC is set; 0 paces it: the lowest from 50 to 100 at which the heap is collected about once a second at most")
	fl.BoolVar(&f.lazyPages, "lazy-binary-pages", true, "map only the pages of vigil's own binary that the agent runs (Linux): as it starts, and again a while after, it unmaps the binary and drops its unused pages from the page cache, so a page is read from the file when first run; false leaves it to the kernel, which maps the cached pages around each one run")
	fl.Float64Var(&f.memRatio, "memory-limit-ratio", 0.9, "set Go's soft memory limit to this share of the container's memory limit (cgroup), unless GOMEMLIMIT is set; 0 turns it off")
	return cmd
}

func agentLogger(f agentFlags) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationText}
	if f.logJSON {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}

// jsonExit, with --log-json, logs the error the agent exits with as a JSON line too, so
// stderr stays JSON only (a bad config included).
func jsonExit(f agentFlags, err error) error {
	var ee *exitError
	if !f.logJSON || !errors.As(err, &ee) || ee.err == nil {
		return err
	}
	log, lerr := agentLogger(f)
	if lerr != nil {
		return err
	}
	log.Error("vigil agent exits", "error", ee.err.Error(), "exit_code", ee.code)
	return exitWith(ee.code, nil)
}

// durationText logs durations as Go duration strings ("1.5s"): slog's JSON handler would
// write integer nanoseconds.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

func runAgent(cmd *cobra.Command, f agentFlags) error {
	log, err := agentLogger(f)
	if err != nil {
		return exitWith(exitUsage, err)
	}
	if f.gcPercent < 0 {
		return exitWith(exitUsage, fmt.Errorf("--gc-percent %d: give a percentage of 1 or more (Go's own default is 100; lower keeps less memory for more CPU), or 0 to pace it from the live heap", f.gcPercent))
	}
	if f.lazyPages {
		dropBinaryPages(log)
	}
	pacedGC := setGCPercent(f.gcPercent, log)
	memLimit, err := setMemoryLimit(f.memRatio, log)
	if err != nil {
		return exitWith(exitUsage, err)
	}
	opts := configs.Options{Flags: cmd.Flags(), FlagKeys: map[string]string{"listen": "agent.listen"}}
	// Reloads load partially: Reload builds what did load and reports every problem at once.
	load := func() (*configs.Config, error) { return configs.LoadPartial(configPath(f.config), opts) }
	cfg, err := loadConfig(f.config, opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if pacedGC {
		go paceGC(ctx, log)
	}
	if memLimit.Container > 0 {
		go followMemoryLimit(ctx, memLimit, f.memRatio, log)
	}

	st, err := openStore(ctx, cfg.Store)
	if err != nil {
		return exitWith(exitFailed, err)
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The scheduler bounds every browser run the agent makes (scheduled, verification,
	// manual) by agent.browser_concurrency, and follows it on reload; a pool bounded by
	// the value at start held a raised limit to it until a restart.
	envCfg := *cfg
	envCfg.Agent.BrowserConcurrency = agentBrowserVisits
	env, err := newRuntime(&envCfg, log)
	if err != nil {
		return exitWith(exitUsage, err)
	}
	defer env.Close()
	v, rev, _ := buildInfo()
	a, err := agent.New(agent.Options{Config: cfg, ConfigPath: cfg.File, LoadConfig: load, Deps: env.deps, Tracing: env.tracing,
		Store: st, Registry: reg, Logger: log, Version: v, Revision: rev, BrowserReady: env.browserReady, Pprof: f.pprof})
	if err != nil {
		return exitWith(exitUsage, err)
	}
	if err := a.Listen(); err != nil {
		return exitWith(exitFailed, err)
	}
	if f.lazyPages {
		// Again, now that the start's reading is done: a cold start's read-ahead may have
		// been in flight at the first drop, and the config loader and the store's
		// migrations have run; the checks page in what they run.
		if dropBinaryPages(log) {
			go keepBinaryPages(ctx, log)
		}
	}
	if a.Runtime().HasBrowserChecks() {
		// Start Chromium now, so the first deploy's browser runs do not pay for it.
		go func() {
			if err := env.browser.Start(ctx); err != nil {
				log.Warn("Chromium did not start; browser checks will end as error until it does", "error", err)
			}
		}()
	}
	if !f.logJSON { // with --log-json, stderr carries JSON lines only (the agent logs where it listens)
		fmt.Fprintf(cmd.ErrOrStderr(), "vigil agent listening on http://%s (config %s, %d checks)\n", a.Addr(), cfg.File, len(a.Runtime().Order))
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		changed := watchFile(ctx, cfg.File, 2*time.Second)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the config")
			case <-changed:
				log.Info("the config file changed: reloading it")
			}
			_ = a.Reload() // a rejected config is logged and counted; the old one keeps running
		}
	}()
	if err := a.Run(ctx); err != nil {
		return exitWith(exitFailed, err)
	}
	return nil
}

// agentBrowserVisits is the browser pool's own bound on visits at once in the agent: one
// the scheduler's limit always stays under.
const agentBrowserVisits = 1 << 16

// dropBinaryPages leaves mapped only the pages of the agent's binary it runs from then on
// (see binpages), and says whether this system can.
func dropBinaryPages(log *slog.Logger) (supported bool) {
	r, err := binpages.Drop(true)
	logBinaryPages(log, "the agent's binary is mapped as it runs", r, err)
	return !errors.Is(err, binpages.ErrUnsupported)
}

// keepBinaryPages unmaps the binary's pages the agent no longer runs, until ctx ends.
func keepBinaryPages(ctx context.Context, log *slog.Logger) {
	binpages.Keep(ctx, binpages.KeepFirst, binpages.KeepEvery, func(r binpages.Result, err error) {
		logBinaryPages(log, "the agent's binary pages it no longer runs are unmapped", r, err)
	})
}

func logBinaryPages(log *slog.Logger, msg string, r binpages.Result, err error) {
	if err != nil {
		log.Debug("the agent's binary pages could not all be unmapped; the kernel keeps them mapped", "error", err)
	}
	if r.Mappings > 0 {
		log.Debug(msg, "rss_file_bytes_before", r.Before, "rss_file_bytes_after", r.After, "mapped_bytes", r.Bytes, "page_cache_dropped", r.Evicted)
	}
}

// gcPaceEvery is how often a paced collector's percentage is set again from the heap: often
// enough to follow an agent's start (ten thousand checks loaded and run at once), a burst
// of runs, and a reload that adds or drops thousands of checks. A read costs a microsecond
// or two.
const gcPaceEvery = time.Second

// setGCPercent sets the collector's percentage (GOGC) as the agent starts: percent when it
// is 1 or more; else it starts at memlimit.MinGCPercent, for loading a large config, and
// paced is true: the caller paces it from the heap (memlimit.PaceGC) from then on, which
// gives a small heap allocated into fast Go's 100 within a second or two. GOGC in the
// environment wins: the runtime has read it.
func setGCPercent(percent int, log *slog.Logger) (paced bool) {
	if v, ok := os.LookupEnv("GOGC"); ok {
		log.Debug("GOGC is set: --gc-percent is not applied", "GOGC", v)
		return false
	}
	if percent >= 1 {
		debug.SetGCPercent(percent)
		return false
	}
	debug.SetGCPercent(memlimit.MinGCPercent)
	return true
}

// paceGC paces the collector from the live heap until ctx ends (see setGCPercent).
func paceGC(ctx context.Context, log *slog.Logger) {
	memlimit.PaceGC(ctx, gcPaceEvery, memlimit.ReadHeap, nil, func(p int, live, rate uint64) {
		log.Debug("the collector's percentage follows the heap", "gc_percent", p, "live_heap_bytes", live, "allocated_bytes_per_second", rate)
	})
}

// setMemoryLimit sets Go's soft memory limit from the container's (see memlimit) and logs
// what it did. Only a ratio out of range is an error: a limit it cannot read is logged.
func setMemoryLimit(ratio float64, log *slog.Logger) (memlimit.Applied, error) {
	applied, err := memlimit.Set(ratio)
	switch {
	case errors.Is(err, memlimit.ErrRatio):
		return applied, err
	case err != nil:
		log.Warn("the container's memory limit could not be read; Go's soft memory limit is left as it is", "error", err)
	case applied.Container > 0:
		log.Info("Go's soft memory limit set from the container's", "container_limit_bytes", applied.Container, "go_limit_bytes", applied.Limit, "ratio", ratio)
	default:
		log.Debug("Go's soft memory limit left as it is", "why", applied.Why)
	}
	return applied, nil
}

// memoryLimitEvery is how often the agent reads its container's memory limit again: a
// pod resized in place gets a new one while the agent runs.
const memoryLimitEvery = 10 * time.Second

// followMemoryLimit moves Go's soft memory limit with the container's until ctx ends.
func followMemoryLimit(ctx context.Context, from memlimit.Applied, ratio float64, log *slog.Logger) {
	memlimit.Follow(ctx, from, ratio, memoryLimitEvery, memlimit.ReadContainer, func(a memlimit.Applied, err error) {
		if err != nil {
			log.Warn("the container's memory limit could not be read again; Go's soft memory limit is left as it is", "error", err)
			return
		}
		log.Info("the container's memory limit changed: Go's soft memory limit follows", "container_limit_bytes", a.Container, "go_limit_bytes", a.Limit, "why", a.Why)
	})
}

// watchFile reports changes of a file's size, modification time or identity (editors and
// Kubernetes ConfigMaps replace files through renames and symlink swaps), checking every
// interval. Polling needs no extra dependency and sees through symlinks.
func watchFile(ctx context.Context, path string, every time.Duration) <-chan struct{} {
	out := make(chan struct{}, 1)
	stat := func() string {
		resolved, err := filepath.EvalSymlinks(path)
		if err != nil {
			return "missing"
		}
		fi, err := os.Stat(resolved)
		if err != nil {
			return "missing"
		}
		return fmt.Sprintf("%s|%d|%d", resolved, fi.Size(), fi.ModTime().UnixNano())
	}
	go func() {
		last := stat() // as loaded
		prev := last   // as the previous poll saw it
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// A change is reloaded once the file has held still for a poll: a file caught
			// mid-write (truncated, then written) is not the config to run.
			now := stat()
			if now != last && now != "missing" && now == prev {
				last = now
				select {
				case out <- struct{}{}:
				default:
				}
			}
			prev = now
		}
	}()
	return out
}

// openHint is what to do about a store that does not open: a full disk is not a path to
// change (SQLite needs room for its write-ahead log and shared memory even to read).
func openHint(err error) string {
	msg := err.Error()
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(msg, "disk is full") || strings.Contains(msg, "(4874)") { // SQLITE_IOERR_SHMSIZE
		return "the disk holding it is full: free some space (the store needs a few MB beside it to open), or move store.dsn"
	}
	return "set store.dsn to a writable path"
}

// agentStore is the agent's store, closed at exit.
type agentStore interface {
	agent.Store
	Close() error
}

// openStore opens store.driver: SQLite, a file next to the config, or PostgreSQL, shared by
// agents in several locations. An unreachable database is an error at start.
func openStore(ctx context.Context, s configs.Store) (agentStore, error) {
	if s.Driver == configs.DriverPostgres {
		p := s.Pool
		st, err := store.OpenPostgres(ctx, s.DSN, store.PoolOptions{MaxConns: int32(p.MaxConns), MinConns: int32(p.MinConns),
			MaxConnLifetime: p.MaxConnLifetime, MaxConnIdleTime: p.MaxConnIdleTime, ConnectTimeout: p.ConnectTimeout})
		if err != nil {
			return nil, fmt.Errorf("opening the store: %w", err)
		}
		return st, nil
	}
	st, err := store.Open(ctx, s.DSN)
	if err != nil {
		return nil, fmt.Errorf("opening the store %s: %w (%s)", s.DSN, err, openHint(err))
	}
	return st, nil
}
