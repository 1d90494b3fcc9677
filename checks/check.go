// Package checks turns configured checks into runnable ones and runs them once. A kind
// (http, script, browser, ...) implements Prober: it does the work of one run and records
// variables and a transcript. Each kind lives in its own file, registered once in the
// kinds table (kinds.go). Check wraps every kind with the same hard deadline, assertion
// evaluation and outcome rules, so a kind never sleeps, schedules or judges itself: the
// agent and `vigil run` own time and retries.
package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/tracing"
	"go.opentelemetry.io/otel/trace"
)

// Outcome is the result of one run, as in Argo Rollouts.
type Outcome string

const (
	// Pass: every assertion held.
	Pass Outcome = "pass"
	// Fail: an assertion was false; the application misbehaved.
	Fail Outcome = "fail"
	// Error: vigil could not measure (unreachable before any answer, browser crashed, ...).
	Error Outcome = "error"
	// Inconclusive: measured, but nothing to judge by (no baseline yet, an empty query).
	Inconclusive Outcome = "inconclusive"
)

// Deploy identifies the deploy a run verifies. Outside a verification it is nil.
type Deploy struct {
	ID          string    `json:"id"`
	Service     string    `json:"service"`
	Version     string    `json:"version"`
	Environment string    `json:"environment,omitempty"`
	Commit      string    `json:"commit,omitempty"`
	StartedAt   time.Time `json:"started_at"`
}

// Input is what the caller knows that a run may use.
type Input struct {
	Deploy *Deploy
	// Baseline holds the variables of the last passing runs before the deploy, aggregated
	// by the kind (median where numeric); nil when there is none.
	Baseline map[string]any
	// Since bounds windows such as logscan's: only what happened after it counts.
	Since time.Time
	// MeasuredSince is when the check started measuring what it measures now (a reload or
	// restart changed its request or spec), zero when it always has: its baseline is of
	// the runs from then, and a missing one says so.
	MeasuredSince time.Time
	// TranscriptOnFailure drops the transcript of a run that passes. Scheduled runs set
	// it: a transcript explains a failure, and rendering, redacting and storing one for
	// every passing run was a large part of what a run cost. Deploy verifications and
	// manual runs keep theirs whatever the outcome.
	TranscriptOnFailure bool
}

// Artifact is evidence kept with a result, such as a failure screenshot.
type Artifact struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Data        []byte `json:"-"`
	// Path is where the artifact was written, once it was.
	Path string `json:"path,omitempty"`
}

// Result is one run of one check.
type Result struct {
	Check    string         `json:"check"`
	Kind     string         `json:"kind"`
	Outcome  Outcome        `json:"outcome"`
	Reasons  []string       `json:"reasons,omitempty"`
	Vars     map[string]any `json:"vars,omitempty"`
	Started  time.Time      `json:"started"`
	Duration time.Duration  `json:"-"` // JSON: duration_seconds (result_json.go)
	// Attempts counts runs including retries of error outcomes.
	Attempts   int         `json:"attempts"`
	Transcript []string    `json:"transcript,omitempty"`
	Artifacts  []*Artifact `json:"artifacts,omitempty"`
	Deploy     *Deploy     `json:"deploy,omitempty"`
	TraceID    string      `json:"trace_id,omitempty"`
	Location   string      `json:"location,omitempty"`
	// Halt says the failure is of the kind that should stop a rollout, not only roll it
	// back: old-version instances failing once a new version appears (a new version that
	// crashes its old-version peers).
	Halt string `json:"halt,omitempty"`
	// NoAnswer says an error outcome was the service under test giving no answer (refused,
	// dropped, none in time), not vigil failing to measure on its own side: a deploy's
	// verification fails a service that answered before it and stops answering
	// (agent/verdict.go). Only the run's own verdict reads it; it is not stored.
	NoAnswer bool `json:"-"`
	// RetriedSilence is the summary of an attempt of this run in which the service gave no
	// answer and that was retried (retries): a run that passed on its retry still saw the
	// service go away and come back. Only the run's own verdict reads it; not stored.
	RetriedSilence string `json:"-"`
	// NotServed says an inconclusive outcome was the deploy's version not answering yet
	// (NotServedf), not vigil having nothing to measure (a query with no data yet, no
	// baseline): the startup rules (verify.ready_within, ready_slowdown) count the one as
	// "not ready" and not the other. Only the run's own verdict reads it; not stored.
	NotServed bool `json:"-"`
	// NotRun says the run never started: `vigil run` was interrupted first. Its outcome is
	// error; a report counts it apart (JUnit: skipped).
	NotRun bool `json:"not_run,omitempty"`
}

// Summary is the first reason, or the outcome when there is none: one line for a list.
func (r *Result) Summary() string {
	if len(r.Reasons) > 0 {
		return r.Reasons[0]
	}
	return string(r.Outcome)
}

// Prober is one kind's work for one run. It fills run.Vars and the transcript and returns
// nil when it measured what it came to measure, even if the numbers are bad: judging them
// is the assertions' job. It returns an error when it could not measure (the run is an
// error) or Inconclusivef(...) when there was nothing to measure.
type Prober interface {
	Probe(ctx context.Context, run *Run) error
}

// Baseliner is implemented by kinds whose baseline is not "median of numeric variables over
// the last passing runs" (fleet keeps per-instance health, for example).
type Baseliner interface {
	Baseline(previous []*Result) map[string]any
}

// DefaultAsserter is implemented by kinds that judge a run with built-in assertions when the
// config gives none.
type DefaultAsserter interface {
	DefaultAssert() []string
}

// Resource is a part of the machine that vigil has few of, such as the browser's pages. A
// run of a kind that needs one holds one of its slots besides its run slot.
type Resource string

// BrowserSlot is one of agent.browser_concurrency pages open at once in the shared Chromium.
const BrowserSlot Resource = "browser"

// Scarce is implemented by a kind (its value in the kinds table) whose runs each hold a
// Resource. The agent bounds how many runs hold it at once, and is ready only when it can
// be had.
type Scarce interface {
	Resource() Resource
}

// Alone is implemented by a kind (its value in the kinds table) whose runs should not come
// due at the same instant as other checks of their interval, which the scheduler otherwise
// batches: an sla run loads the service at its own concurrency, and runs side by side
// would each measure the others' load; a propagation run writes and polls for seconds.
type Alone interface {
	Alone()
}

// Instrumented is implemented by a kind (its value in the kinds table) that exports
// metrics of its own beyond the probe_* and vigil_check_* series every check has, as
// blackbox_exporter's probers do.
type Instrumented interface {
	// Instrument registers the kind's collectors with in.Reg and returns what records a
	// result of the kind in them, and its Families if it keeps any. It is called once per
	// registry.
	Instrument(in Instruments) *Recorder
}

// Instruments is what a kind's metrics are made with: the registry, and the table of the
// gauges several kinds set (sharedGauges).
type Instruments struct {
	Reg    prometheus.Registerer
	shared *sharedGauges
}

// Recorder records results of one kind in the kind's own metrics, and forgets a check's
// series when a reload removes the check, so that it does not look alive forever.
type Recorder struct {
	// Observe records one result.
	Observe func(*Result)
	// Vecs are the kind's collectors; each has a "check" label.
	Vecs []Vec
	// Families are the kind's series kept beside the registry (see Families); nil for none.
	// Their Names are the only place they are described: the agent's /metrics serves them.
	Families Families
}

// Vec is a labelled collector (a *prometheus.GaugeVec, CounterVec or HistogramVec).
type Vec interface {
	DeletePartialMatch(prometheus.Labels) int
}

// Run is the state of one run in progress, shared between Check and its Prober.
type Run struct {
	Input
	Vars       map[string]any
	Transcript *Transcript
	Artifacts  []*Artifact
	// TraceID is set by probers whose requests carry a trace context.
	TraceID string

	failures []string
	details  map[string]string
	halt     string
	// unmeasured names variables the run stopped before measuring, with why.
	unmeasured map[string]string
}

// Unmeasured marks variables the run did not measure (it stopped at a fatal error first):
// assertions that read them are not judged, and the transcript says why. A run whose
// every other assertion holds is then inconclusive, never passed.
func (r *Run) Unmeasured(why string, variables ...string) {
	if r.unmeasured == nil {
		r.unmeasured = map[string]string{}
	}
	for _, v := range variables {
		r.unmeasured[v] = why
	}
}

// Halt marks this run's failure as one that should stop the rollout in progress. It only
// takes effect when the run fails; reason says why (it reaches the halt webhook).
func (r *Run) Halt(reason string) { r.halt = reason }

// Failf records a failure the kind detects itself (a script step's assertion, a stale
// reader at timeout); the run fails even if every check-level assertion holds.
func (r *Run) Failf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// Explain attaches a human explanation to a variable, quoted when an assertion over that
// variable fails: "stale = 1 (reader-b never showed the marker)".
func (r *Run) Explain(variable, detail string) {
	if r.details == nil {
		r.details = map[string]string{}
	}
	r.details[variable] = detail
}

// AddArtifact keeps evidence with the result.
func (r *Run) AddArtifact(name, contentType string, data []byte) {
	r.Artifacts = append(r.Artifacts, &Artifact{Name: name, ContentType: contentType, Data: data})
}

type inconclusiveError struct {
	msg string
	// notServed: the deploy's version was not what answered (NotServedf).
	notServed bool
}

func (e *inconclusiveError) Error() string { return e.msg }

// Inconclusivef is the error a Prober returns when there was nothing to judge.
func Inconclusivef(format string, args ...any) error {
	return &inconclusiveError{msg: fmt.Sprintf(format, args...)}
}

// NotServedf is Inconclusivef for a run that nothing of the deploy's version answered:
// another version did (served_version), or the new one has not made itself known yet (no
// heartbeat from it). Nothing to judge the new version by, but news of it all the same:
// it is not up yet, which the startup rules count (Result.NotServed).
func NotServedf(format string, args ...any) error {
	return &inconclusiveError{msg: fmt.Sprintf(format, args...), notServed: true}
}

// Check is a configured, compiled check, ready to run any number of times concurrently.
type Check struct {
	Name    string
	Kind    string
	Timeout time.Duration
	Config  *configs.Check

	prober  Prober
	asserts []*Assertion
	tracer  trace.Tracer
	// redact masks the config's secrets in what leaves a run (seal).
	redact *configs.Redactor
}

// Baseline aggregates the runs before a deploy (newest first) into the baseline variables:
// by default the median of the newest n passing runs; kinds with their own rule (fleet's
// per-instance health) get the newest n runs whatever their outcome.
func (c *Check) Baseline(previous []*Result, n int) map[string]any {
	if b, ok := c.prober.(Baseliner); ok {
		if len(previous) > n {
			previous = previous[:n]
		}
		return b.Baseline(previous)
	}
	var passing []*Result
	for _, r := range previous {
		if r != nil && r.Outcome == Pass && len(passing) < n {
			passing = append(passing, r)
		}
	}
	return MedianBaseline(passing)
}

// Run runs the check once within its timeout. It never returns nil and never outlives
// ctx or the timeout by more than the prober's cleanup. The result is sealed: redacted and
// bounded, ready to be stored, shown and sent (see seal).
func (c *Check) Run(ctx context.Context, in Input) *Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	stall.start()
	run := &Run{Input: in, Vars: make(map[string]any, 24), Transcript: newRunTranscript(c.redact)}
	run, outcome, reasons, err := c.probeJudged(ctx, run, start)
	elapsed := time.Since(start)
	if _, set := run.Vars["duration_ms"]; !set {
		run.Vars["duration_ms"] = ms(elapsed)
	}
	res := &Result{
		Check: c.Name, Kind: c.Kind, Vars: run.Vars, Started: start, Duration: elapsed, Attempts: 1,
		Artifacts: run.Artifacts, Deploy: in.Deploy, TraceID: run.TraceID,
	}
	if res.TraceID == "" {
		res.TraceID = tracing.TraceID(ctx)
	}
	defer func() { // judge and seal add to it
		if res.Outcome == Pass && in.TranscriptOnFailure {
			res.Transcript = nil
			return
		}
		res.Transcript = run.Transcript.Lines()
	}()
	switch inc := inconclusive(err); {
	case err == nil:
		res.Outcome, res.Reasons = outcome, reasons
		if res.Outcome == Fail {
			res.Halt = run.halt
		}
	case inc != nil:
		res.Outcome, res.Reasons, res.NotServed = Inconclusive, []string{inc.msg}, inc.notServed
	case faultOf(err) != nil:
		res.Outcome, res.Reasons = Fail, []string{err.Error()}
	default:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && !strings.Contains(err.Error(), "timed out") {
			err = fmt.Errorf("timed out after %s: %w", c.Timeout, err)
		}
		res.Outcome, res.Reasons, res.NoAnswer = Error, []string{err.Error()}, isNoAnswer(err)
		if res.NoAnswer {
			if note := heldUpNote(err, start, elapsed); note != "" {
				res.Reasons[0] += note
				res.NoAnswer = false
			}
		}
	}
	c.seal(res, run.Transcript)
	return res
}

// inconclusive is the inconclusiveError in err's chain, or nil. A run without an error
// (most) looks no further: errors.As's target would be allocated for every run.
func inconclusive(err error) *inconclusiveError {
	if err == nil {
		return nil
	}
	var inc *inconclusiveError
	if errors.As(err, &inc) {
		return inc
	}
	return nil
}

// probe runs the prober, turning a panic into an error so one bad run cannot take the
// agent down.
func (c *Check) probe(ctx context.Context, run *Run) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error in %s check: %v", c.Kind, p)
		}
	}()
	return c.prober.Probe(ctx, run)
}

// judge evaluates the kind's own failures and the assertions.
func (c *Check) judge(run *Run) (Outcome, []string) {
	reasons := append([]string(nil), run.failures...)
	// What assertions see (assertionEnv) without copying the run's variables, a tenth of
	// what a scheduled run allocated: baseline and deploy are set in them while it is
	// judged, then what they held is put back. Nothing else reads them meanwhile, and
	// expr cannot assign.
	env := run.Vars
	prevBase, hadBase := env["baseline"]
	prevDeploy, hadDeploy := env["deploy"]
	env["baseline"], env["deploy"] = baselineAndDeploy(run)
	defer func() {
		delete(env, "baseline")
		delete(env, "deploy")
		if hadBase {
			env["baseline"] = prevBase
		}
		if hadDeploy {
			env["deploy"] = prevDeploy
		}
	}()
	var noBaseline, skipped []string
	view := baselineView{env: env, details: run.details}
	for _, a := range c.asserts {
		if why := a.unmeasuredBy(run.unmeasured); why != "" {
			skipped = append(skipped, a.Source+": "+why)
			run.Transcript.Printf("not judged: %s: %s", a.Source, why)
			continue
		}
		if a.usesBaseline && run.Deploy == nil {
			// baseline.* is "before the deploy": outside a deploy's verification
			// (scheduled monitoring, vigil run) there is nothing to compare with, and
			// the run is judged by its other assertions.
			continue
		}
		if a.usesBaseline && run.Baseline == nil {
			noBaseline = append(noBaseline, a.Source)
			continue
		}
		if ok, why := a.eval(view.of(a), view.detailsOf(a), run.Transcript.Redactor()); !ok {
			reasons = append(reasons, why)
		}
	}
	switch {
	case len(reasons) > 0:
		return Fail, reasons
	case len(noBaseline) > 0:
		return Inconclusive, []string{fmt.Sprintf("no baseline yet: %q compares with runs from before the deploy, and there are none that passed%s", noBaseline[0], run.changed())}
	case len(skipped) > 0:
		return Inconclusive, []string{"not measured: " + skipped[0]}
	}
	return Pass, nil
}

// unmeasuredBy returns why the assertion cannot be judged: it reads an unmeasured variable.
func (a *Assertion) unmeasuredBy(unmeasured map[string]string) string {
	for v, why := range unmeasured {
		if a.Reads(v) {
			return why
		}
	}
	return ""
}

// deployType is the type of the deploy variable in every assertion.
var deployType = types.Map{"id": types.String, "service": types.String, "version": types.String,
	"environment": types.String, "commit": types.String}
