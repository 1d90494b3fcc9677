package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/report"
)

type runFlags struct {
	config      string
	checks      []string
	service     string
	junit       string
	json        bool
	concurrency int
	artifacts   string
	verbose     bool
	noRetry     bool
	// version, environment and commit name the deploy the run follows: its checks judge
	// that version as a verification does (served_version, .Deploy in queries, deploy.*
	// in assertions, a fleet's instances by version).
	version, environment, commit string
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the selected checks once, now (a deploy-pipeline post-step)",
		Long: `run runs every selected check once with bounded concurrency, retrying only checks that
end in error (vigil could not measure), and prints each result. Use it as the step after
a deploy in a pipeline.

With --version, the checks judge that version, as a deploy's verification does: an answer
from another version (served_version) is inconclusive, not a pass on the old pods a rollout
or a draining load balancer still routes to; PromQL and Loki queries read .Deploy.Version;
assertions read deploy.version; a fleet check groups its instances by it.

SIGINT or SIGTERM (Ctrl-C, a cancelled job) stops the checks under way and starts no
more; the report of what ran is printed, with the checks never started as "not run"
(--json names the signal in "interrupted"). A second signal ends vigil at once.

Exit codes: 0 every check passed; 1 a check failed or errored; 2 bad config or usage;
3 no check failed or errored but some were inconclusive (as 'vigil gate' exits for an
inconclusive verdict); 130, 143 interrupted by SIGINT or SIGTERM (as 'vigil gate').`,
		Example: `  vigil run -c vigil.yaml
  vigil run --service web --junit results.xml
  vigil run --service web --version "$GIT_SHA" --environment prod
  vigil run --check home --check login --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runChecks(cmd, f) },
	}
	fl := cmd.Flags()
	stringOnce(fl, &f.config, "config", "c", "", "config file (default $VIGIL_CONFIG, then ./vigil.yaml)")
	fl.StringArrayVar(&f.checks, "check", nil, "run this check (repeatable; default: all)")
	stringOnce(fl, &f.service, "service", "", "", "run the checks of this service")
	stringOnce(fl, &f.junit, "junit", "", "", "write JUnit XML results to this file")
	fl.BoolVar(&f.json, "json", false, "print results as JSON on stdout instead of lines")
	fl.IntVar(&f.concurrency, "concurrency", 0, "checks at once (0, the default: agent.concurrency)")
	stringOnce(fl, &f.artifacts, "artifacts", "", "", "folder for evidence such as screenshots (default: a new temporary folder)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print the transcript of every check that did not pass")
	fl.BoolVar(&f.noRetry, "no-retry", false, "do not retry checks that end in error")
	stringOnce(fl, &f.version, "version", "", "", "the version just deployed: judge it, not what else still answers (served_version)")
	stringOnce(fl, &f.environment, "environment", "", "", "the deploy's environment, for queries and assertions (with --version)")
	stringOnce(fl, &f.commit, "commit", "", "", "the deploy's commit, for queries and assertions (with --version)")
	return cmd
}

func runChecks(cmd *cobra.Command, f runFlags) error {
	switch {
	case f.version == "" && (f.environment != "" || f.commit != ""):
		return exitWith(exitUsage, fmt.Errorf("--environment and --commit describe the deploy --version names: add --version"))
	case f.concurrency < 0:
		return exitWith(exitUsage, fmt.Errorf("--concurrency %d: give a number of checks at once, or 0 for the config's agent.concurrency", f.concurrency))
	}
	cfg, err := loadConfig(f.config, configs.Options{ChecksOnly: true}) // the agent's, store's and notifiers' settings are not used
	if err != nil {
		return err
	}
	selected, err := selectChecks(cfg, f.checks, f.service)
	if err != nil {
		return exitWith(exitUsage, err)
	}
	env, err := newRuntime(cfg, nil)
	if err != nil {
		return exitWith(exitUsage, err)
	}
	defer env.Close()
	all, err := checks.Build(cfg, env.deps)
	if err != nil {
		return exitWith(exitUsage, err)
	}
	var list []*checks.Check
	for _, c := range all {
		if selected[c.Name] {
			list = append(list, c)
		}
	}
	conc := f.concurrency
	if conc <= 0 {
		conc = cfg.Agent.Concurrency
	}

	// --artifacts is made, and written to, before any check runs too: a failure's
	// screenshot is the evidence of the run, not something to lose at its end.
	if f.artifacts != "" {
		if err := writableDir(f.artifacts); err != nil {
			return exitWith(exitUsage, fmt.Errorf("--artifacts: %w", err))
		}
	}
	// The JUnit file is created before any check runs: a path that cannot be written is a
	// usage error at once, not after the checks ran (their results were lost with it).
	var junit *os.File
	if f.junit != "" {
		if junit, err = createFile(f.junit); err != nil {
			return exitWith(exitUsage, fmt.Errorf("--junit: %w", err))
		}
		defer junit.Close()
	}
	// Ctrl-C, or a runner cancelling the job, stops the checks under way (each ends within
	// its deadline) and starts no more; the report of what ran is still printed. A second
	// signal ends vigil at once, should printing it hang (a stalled log reader).
	ctx, stop := notifyInterrupt(cmd.Context())
	defer stop()
	told := tellInterrupted(ctx, cmd.ErrOrStderr())
	for _, c := range list {
		if c.Resource() == checks.BrowserSlot {
			// Start Chromium while the other checks run, rather than in the first browser
			// check's time. A failure to start is that check's error, reported there.
			go env.browser.Start(ctx)
			break
		}
	}
	out := cmd.OutOrStdout()
	tty := !f.json && isTerminal(out)
	p := report.NewPrinter(out, tty, f.verbose, len(list))
	onStart, onDone := p.Start, p.Done
	if f.json {
		onStart, onDone = nil, nil
	}
	started := time.Now()
	artifacts := artifactsDir(f.artifacts)
	results := checks.RunAll(ctx, list, conc, f.input(started), func(c *checks.Check) checks.Retry {
		if f.noRetry {
			return checks.Retry{}
		}
		return checks.Retry{Attempts: *c.Config.Retries}
	}, onStart, func(c *checks.Check, r *checks.Result) {
		r.Location = cfg.Agent.Location
		if err := artifacts.save(r); err != nil {
			r.Reasons = append(r.Reasons, err.Error())
		}
		if onDone != nil {
			onDone(c, r)
		}
	})
	p.Finish()
	sum := report.Summarize(results, time.Since(started))

	sig, interrupted := interruption(ctx)
	if interrupted {
		<-told // its notice before the report
	}
	var jsonErr error
	if f.json {
		jsonErr = writeRunJSON(out, results, sum, sig, interrupted)
	} else {
		fmt.Fprintln(out, sum)
	}
	if jsonErr != nil && !sum.OK() {
		fmt.Fprintf(cmd.ErrOrStderr(), "vigil run: --json: writing the results: %v\n", jsonErr)
	}
	if junit != nil {
		err := report.WriteJUnit(junit, results, sum, started, env.tracing.TraceURL)
		if cerr := junit.Close(); err == nil {
			err = cerr
		}
		if err != nil && sum.OK() {
			return exitWith(exitUsage, fmt.Errorf("--junit: %w", err)) // a pass nobody can read is not a pass
		} else if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "vigil run: --junit: %v\n", err)
		}
	}
	if jsonErr != nil && sum.OK() {
		// As for --junit: a pass nobody can read is not a pass.
		return exitWith(exitUsage, fmt.Errorf("vigil run: --json: writing the results: %w", jsonErr))
	}
	if interrupted {
		// The shell's code for the signal (130, 143), as gate exits: neither a verdict on
		// the checks (0, 1, 3) nor a pipeline error (2).
		return exitWith(sig.code(), fmt.Errorf("vigil run: %v: the checks under way were stopped; %d of %d not run",
			sig, sum.NotRun, sum.Total))
	}
	switch {
	case sum.OK():
		return nil
	case sum.Failed == 0 && sum.Errors == 0:
		// Only inconclusive runs: nothing was judged bad, nothing was proven good; the
		// same exit code as an inconclusive verdict in `vigil gate`.
		return exitWith(exitUnknown, nil)
	}
	return exitWith(exitFailed, nil)
}

// tellInterrupted says on w, as soon as a signal ends ctx, that vigil is stopping; the
// channel is closed once it has said so, or once ctx ended otherwise.
func tellInterrupted(ctx context.Context, w io.Writer) <-chan struct{} {
	told := make(chan struct{})
	go func() {
		defer close(told)
		<-ctx.Done()
		if sig, ok := interruption(ctx); ok {
			fmt.Fprintf(w, "vigil run: %v: stopping the checks under way, starting no more; a second signal ends vigil at once\n", sig)
		}
	}()
	return told
}

// writeRunJSON writes the results and their summary as one JSON document, with the signal
// that interrupted the run, if one did.
func writeRunJSON(w io.Writer, results []*checks.Result, sum report.Summary, sig interrupted, interrupted bool) error {
	doc := struct {
		Summary     report.Summary   `json:"summary"`
		Interrupted string           `json:"interrupted,omitempty"` // SIGINT or SIGTERM
		Results     []*checks.Result `json:"results"`
	}{Summary: sum, Results: results}
	if interrupted {
		doc.Interrupted = sig.name()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// input is what a check's run knows of the deploy it follows: nil without --version. The
// deploy's service is --service, else the check's first service.
func (f runFlags) input(started time.Time) func(*checks.Check) checks.Input {
	if f.version == "" {
		return nil
	}
	return func(c *checks.Check) checks.Input {
		service := f.service
		if service == "" && len(c.Config.Services) > 0 {
			service = c.Config.Services[0]
		}
		return checks.Input{Deploy: &checks.Deploy{Service: service, Version: f.version, Environment: f.environment,
			Commit: f.commit, StartedAt: started}}
	}
}

// artifactFolder is where one `vigil run` keeps evidence: --artifacts, or a temporary
// folder made when the first result brings some, shared by every result of the run.
type artifactFolder struct {
	mu  sync.Mutex
	dir string
}

func artifactsDir(dir string) *artifactFolder { return &artifactFolder{dir: dir} }

// save writes a result's artifacts and records their paths on the result.
func (a *artifactFolder) save(r *checks.Result) error {
	if len(r.Artifacts) == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dir == "" {
		d, err := os.MkdirTemp("", "vigil-artifacts-")
		if err != nil {
			return fmt.Errorf("artifacts folder: %w", err)
		}
		a.dir = d
	}
	return report.SaveArtifacts(a.dir, []*checks.Result{r})
}

// selectChecks resolves --check and --service into a set of check names.
func selectChecks(cfg *configs.Config, names []string, service string) (map[string]bool, error) {
	all := make([]string, 0, len(cfg.Checks))
	for _, c := range cfg.Checks {
		all = append(all, c.Name)
	}
	out := map[string]bool{}
	if service != "" {
		s, ok := cfg.Services[service]
		if !ok {
			if len(cfg.Services) == 0 {
				return nil, fmt.Errorf("--service %s: %s defines no services: select checks with --check, or add a services: section", service, cfg.File)
			}
			svcs := slices.Sorted(maps.Keys(cfg.Services))
			return nil, fmt.Errorf("--service %s: no such service in %s; %s", service, cfg.File, configs.DidYouMean(service, svcs))
		}
		for _, n := range s.Checks {
			out[n] = true
		}
	}
	for _, n := range names {
		if cfg.CheckByName(n) == nil {
			return nil, fmt.Errorf("--check %s: no such check in %s; %s", n, cfg.File, configs.DidYouMean(n, all))
		}
		out[n] = true
	}
	if service == "" && len(names) == 0 {
		for _, n := range all {
			out[n] = true
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no checks selected")
	}
	return out, nil
}

func isTerminal(w any) bool {
	if c, ok := w.(*countingWriter); ok {
		w = c.w
	}
	f, ok := w.(*os.File)
	return ok && report.IsTerminal(f)
}

// writableDir makes dir when missing, and proves a file can be written in it.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".vigil-write-test-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// createFile creates path, and its folder when missing.
func createFile(path string) (*os.File, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	return os.Create(path)
}
