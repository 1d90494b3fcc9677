package checks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/vigil-monitor/vigil/browser"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/tracing"
)

// BrowserRunner runs one page visit in a real browser. *browser.Pool implements it; main
// builds one pool per process and hands it to Build through Deps.
type BrowserRunner interface {
	Visit(ctx context.Context, v *browser.Visit) (*browser.Report, error)
}

// timingsType is the type of the timings variable.
var timingsType = types.Map{
	"ttfb_ms":               types.Float64,
	"dom_content_loaded_ms": types.Float64,
	"load_ms":               types.Float64,
	"lcp_ms":                types.Float64,
}

// BrowserVars are the variables of one browser check run.
var BrowserVars = types.Map{
	"js_errors":          types.Int,
	"console_errors":     types.Int,
	"failed_requests":    types.Int,
	"failed_scripts":     types.Int,
	"failed_stylesheets": types.Int,
	"errors":             types.Array(types.String),
	"status":             types.Int,
	"title":              types.String,
	"url":                types.String,
	"loaded":             types.Bool,
	"wait_for_found":     types.Bool,
	"requests":           types.Int,
	"steps":              types.Int,
	"steps_total":        types.Int,
	"failed_step":        types.String,
	"timings":            timingsType,
}

// defaultBrowserAssert is what a browser check judges when the config gives no assertions:
// the page's own code ran without throwing, its code and styles arrived, the document was
// not an error page, it finished loading and it rendered (wait_for).
var defaultBrowserAssert = []string{
	"js_errors == 0",
	"failed_scripts == 0",
	"failed_stylesheets == 0",
	"status < 400",
	"loaded",
	"wait_for_found",
}

// Browser is the browser kind: a real Chromium page load or journey.
type Browser struct {
	spec   *configs.BrowserSpec
	runner BrowserRunner
	ignore []*regexp.Regexp
	// asserts are the check's assertions, compiled again here so a run can tell, while its
	// page is still open, whether it is failing and a screenshot is worth taking.
	asserts []*Assertion
	tracing *tracing.Tracing
}

// DefaultAssert implements DefaultAsserter.
func (b *Browser) DefaultAssert() []string { return defaultBrowserAssert }

// Baseline implements Baseliner: the median of every number, timings included.
func (b *Browser) Baseline(previous []*Result) map[string]any {
	out := MedianBaseline(previous)
	if out == nil {
		return nil
	}
	series := map[string][]float64{}
	for _, r := range previous {
		if r == nil || r.Outcome != Pass {
			continue
		}
		if t, ok := r.Vars["timings"].(map[string]any); ok {
			for k, v := range t {
				if f, ok := asFloat(v); ok {
					series[k] = append(series[k], f)
				}
			}
		}
	}
	t := map[string]any{}
	for k := range timingsType {
		t[k] = 0.0
		if xs := series[k]; len(xs) > 0 {
			t[k] = Median(xs)
		}
	}
	out["timings"] = t
	return out
}

func buildBrowser(b *builder, c *configs.Check) (Prober, types.Map) {
	spec := c.Spec.(*configs.BrowserSpec)
	br := &Browser{spec: spec, runner: b.deps.Browser, ignore: spec.IgnoreRegexps(), tracing: b.deps.Tracing}
	srcs := c.Assert
	if len(srcs) == 0 {
		srcs = defaultBrowserAssert
	}
	env := Env(BrowserVars)
	for _, src := range srcs {
		// Errors are reported once, by the builder's own compile of the same sources.
		if a, err := CompileAssertion(src, env); err == nil {
			br.asserts = append(br.asserts, a)
		}
	}
	return br, BrowserVars
}

// Probe implements Prober.
func (b *Browser) Probe(ctx context.Context, run *Run) error {
	if b.runner == nil {
		return errors.New("no browser is set up in this vigil process (internal: Deps.Browser is nil)")
	}
	v := b.visit(run)
	if b.tracing.On() {
		// The page's first-party requests carry the run's trace context, so the service's
		// own spans for this visit are children of the check's span. Third parties never
		// get it: an extra header on a cross-origin request is a CORS preflight the page
		// never asked for, and the check would break the page it watches.
		h := http.Header{}
		b.tracing.Inject(ctx, h)
		headers := make(map[string]string, len(v.Headers)+len(h))
		for k, val := range v.Headers {
			headers[k] = val
		}
		for k := range h {
			headers[k] = h.Get(k)
		}
		v.Headers = headers
	}
	rep, err := b.runner.Visit(ctx, v)
	if rep == nil {
		rep = &browser.Report{}
	}
	kept := b.setVars(run, rep)
	if rep.StoppedEarly != "" {
		run.Unmeasured("the run stopped at the first fatal error: "+rep.StoppedEarly, cutShort...)
	}
	failing := err != nil || b.failing(run, rep)
	b.transcript(run, rep, kept)
	if failing {
		if len(rep.Screenshot) > 0 {
			run.AddArtifact("screenshot.png", "image/png", rep.Screenshot)
		}
		if text := errorList(rep, kept); text != "" {
			run.AddArtifact("errors.txt", "text/plain; charset=utf-8", []byte(text))
		}
	}
	if err != nil {
		return err
	}
	if rep.StepError != "" {
		run.Failf("%s: %s", rep.FailedStep, rep.StepError)
	}
	return nil
}

// visit turns the config into a browser.Visit.
func (b *Browser) visit(run *Run) *browser.Visit {
	s := b.spec
	v := &browser.Visit{
		URL: s.URL, WaitFor: s.WaitFor, Headers: s.Headers,
		Viewport:          browser.Viewport{Width: s.Viewport.Width, Height: s.Viewport.Height},
		NavigationTimeout: s.NavigationTimeout,
		Logf:              run.Transcript.Printf,
	}
	for _, c := range s.Cookies {
		if c != nil {
			v.Cookies = append(v.Cookies, browser.Cookie{Name: c.Name, Value: c.Value.Value(), Domain: c.Domain, Path: c.Path})
		}
	}
	for _, st := range s.Steps {
		if st == nil {
			continue
		}
		switch {
		case st.Navigate != "":
			v.Steps = append(v.Steps, browser.Step{Kind: browser.StepNavigate, URL: st.Navigate})
		case st.Click != "":
			v.Steps = append(v.Steps, browser.Step{Kind: browser.StepClick, Selector: st.Click})
		case st.Type != nil:
			v.Steps = append(v.Steps, browser.Step{Kind: browser.StepType, Selector: st.Type.Selector, Text: st.Type.Text.Value()})
		case st.WaitFor != "":
			v.Steps = append(v.Steps, browser.Step{Kind: browser.StepWaitFor, Selector: st.WaitFor})
		case st.AssertText != nil:
			v.Steps = append(v.Steps, browser.Step{Kind: browser.StepAssertText, Selector: st.AssertText.Selector, Text: st.AssertText.Contains})
		case st.Sleep > 0:
			v.Steps = append(v.Steps, browser.Step{Kind: browser.StepSleep, Sleep: st.Sleep})
		}
	}
	// Decide on evidence with the same variables and assertions the run is judged by.
	v.Evidence = func(rep *browser.Report) bool {
		probe := &Run{Input: run.Input, Vars: map[string]any{}}
		b.setVars(probe, rep)
		return b.failing(probe, rep)
	}
	v.Stop = func(rep *browser.Report) string {
		probe := &Run{Input: run.Input, Vars: map[string]any{}}
		b.setVars(probe, rep)
		env := assertionEnv(probe)
		for _, a := range b.asserts {
			if a.FalseForGood(env, browserCounters) {
				_, why := a.Eval(env, probe.details)
				return why
			}
		}
		return ""
	}
	return v
}

// browserCounters are the variables that only grow while a page is open: once an
// assertion over them is false (js_errors == 0 after an exception), waiting cannot make it
// true, and the run stops at once (Visit.Stop).
var browserCounters = map[string]bool{"js_errors": true, "console_errors": true, "failed_requests": true,
	"failed_scripts": true, "failed_stylesheets": true}

// cutShort are the variables a run that stopped at its first fatal error did not measure
// to the end.
var cutShort = []string{"loaded", "wait_for_found", "steps", "failed_step", "timings"}

// keptProblems is what is left of a report's problems after ignore_errors.
type keptProblems struct {
	exceptions []browser.Exception
	console    []browser.ConsoleError
	failed     []browser.FailedRequest
	ignored    int
}

func (b *Browser) ignored(line string) bool {
	for _, re := range b.ignore {
		if re.MatchString(line) {
			return true
		}
	}
	return false
}

func (b *Browser) keep(rep *browser.Report) keptProblems {
	var k keptProblems
	for _, e := range rep.Exceptions {
		if b.ignored(e.String()) {
			k.ignored++
			continue
		}
		k.exceptions = append(k.exceptions, e)
	}
	for _, c := range rep.ConsoleErrors {
		if b.ignored(c.String()) {
			k.ignored++
			continue
		}
		k.console = append(k.console, c)
	}
	for _, f := range rep.FailedRequests {
		if b.ignored(f.String()) {
			k.ignored++
			continue
		}
		k.failed = append(k.failed, f)
	}
	return k
}

// setVars records the report as variables, with explanations that quote the first
// problem of each kind, and returns what survived ignore_errors.
func (b *Browser) setVars(run *Run, rep *browser.Report) keptProblems {
	k := b.keep(rep)
	var errs []string
	for _, e := range k.exceptions {
		errs = append(errs, e.String())
	}
	for _, c := range k.console {
		errs = append(errs, c.String())
	}
	scripts, styles := 0, 0
	var firstScript, firstStyle string
	for _, f := range k.failed {
		errs = append(errs, f.String())
		switch f.Type {
		case "script":
			if scripts++; scripts == 1 {
				firstScript = f.String()
			}
		case "stylesheet":
			if styles++; styles == 1 {
				firstStyle = f.String()
			}
		}
	}
	if errs == nil {
		errs = []string{}
	}
	steps := rep.Steps
	if rep.StepsTotal == 0 {
		steps = 0
	}
	v := run.Vars
	v["js_errors"] = len(k.exceptions)
	v["console_errors"] = len(k.console)
	v["failed_requests"] = len(k.failed)
	v["failed_scripts"] = scripts
	v["failed_stylesheets"] = styles
	v["errors"] = errs
	v["status"] = rep.Status
	v["title"] = rep.Title
	v["url"] = rep.URL
	v["loaded"] = rep.Loaded
	v["wait_for_found"] = rep.WaitForFound
	v["requests"] = rep.Requests
	v["steps"] = steps
	v["steps_total"] = rep.StepsTotal
	v["failed_step"] = rep.FailedStep
	v["timings"] = map[string]any{
		"ttfb_ms":               ms(rep.Timings.TTFB),
		"dom_content_loaded_ms": ms(rep.Timings.DOMContentLoaded),
		"load_ms":               ms(rep.Timings.Load),
		"lcp_ms":                ms(rep.Timings.LCP),
	}

	more := func(n int) string {
		if n > 1 {
			return fmt.Sprintf("; and %d more", n-1)
		}
		return ""
	}
	if n := len(k.exceptions); n > 0 {
		e := k.exceptions[0]
		d := e.Message
		if e.Kind == browser.KindRejection {
			d = "unhandled rejection: " + d
		}
		if loc := e.Location(); loc != "" {
			d += " at " + loc
		}
		run.Explain("js_errors", d+more(n))
	}
	if n := len(k.console); n > 0 {
		run.Explain("console_errors", k.console[0].String()+more(n))
	}
	if n := len(k.failed); n > 0 {
		run.Explain("failed_requests", k.failed[0].String()+more(n))
	}
	if scripts > 0 {
		run.Explain("failed_scripts", firstScript+more(scripts))
	}
	if styles > 0 {
		run.Explain("failed_stylesheets", firstStyle+more(styles))
	}
	if k.ignored > 0 {
		run.Explain("errors", fmt.Sprintf("%d more matched ignore_errors", k.ignored))
	}
	if !rep.WaitForFound {
		run.Explain("wait_for_found", fmt.Sprintf("%s never became visible", rep.WaitFor))
	}
	if !rep.Loaded {
		d := "the load event never fired"
		if len(rep.Pending) > 0 {
			d += "; still loading: " + strings.Join(rep.Pending, ", ")
		}
		run.Explain("loaded", d)
	}
	if rep.Status >= 400 {
		run.Explain("status", "the document "+rep.URL+" answered with an error")
	}
	return k
}

// failing tells, before the run is judged, whether it will fail: a step failed or an
// assertion that can be judged now is false.
func (b *Browser) failing(run *Run, rep *browser.Report) bool {
	if rep.StepError != "" {
		return true
	}
	env := assertionEnv(run)
	for _, a := range b.asserts {
		if a.usesBaseline && run.Baseline == nil {
			continue
		}
		if ok, _ := a.Eval(env, nil); !ok {
			return true
		}
	}
	return false
}

// transcript summarises what the page did, after the visit's own progress lines.
func (b *Browser) transcript(run *Run, rep *browser.Report, k keptProblems) {
	t := run.Transcript
	if rep.StoppedEarly != "" {
		t.Printf("page: %s %q (status %d, %d requests; not waited for: load, wait_for, later steps, timings)", rep.URL, rep.Title, rep.Status, rep.Requests)
	} else {
		t.Printf("page: %s %q (status %d, %d requests, loaded %t)", rep.URL, rep.Title, rep.Status, rep.Requests, rep.Loaded)
		t.Printf("timings: ttfb %s, dom_content_loaded %s, load %s, lcp %s",
			rep.Timings.TTFB.Round(time.Millisecond), rep.Timings.DOMContentLoaded.Round(time.Millisecond),
			rep.Timings.Load.Round(time.Millisecond), rep.Timings.LCP.Round(time.Millisecond))
	}
	for _, e := range k.exceptions {
		t.Printf("! %s", e)
	}
	for _, c := range k.console {
		t.Printf("! %s", c)
	}
	for _, f := range k.failed {
		t.Printf("! %s", f)
	}
	if k.ignored > 0 {
		t.Printf("(%d problems matched ignore_errors and were not counted)", k.ignored)
	}
	if rep.Dropped > 0 {
		t.Printf("(%d more problems were not kept: the page reported too many)", rep.Dropped)
	}
}

// errorList is the errors.txt evidence: every problem counted, with stacks.
func errorList(rep *browser.Report, k keptProblems) string {
	var sb strings.Builder
	if rep.FailedStep != "" {
		fmt.Fprintf(&sb, "%s failed: %s\n\n", rep.FailedStep, rep.StepError)
	}
	for _, e := range k.exceptions {
		sb.WriteString(e.String() + "\n")
		stack := e.Stack
		if first, rest, _ := strings.Cut(stack, "\n"); strings.TrimSpace(first) == e.Message {
			stack = rest // V8 stacks start with the message
		}
		for l := range strings.SplitSeq(strings.TrimSpace(stack), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				sb.WriteString("    " + l + "\n")
			}
		}
	}
	for _, c := range k.console {
		sb.WriteString(c.String() + "\n")
	}
	for _, f := range k.failed {
		sb.WriteString(f.String() + "\n")
	}
	if len(rep.Pending) > 0 {
		sb.WriteString("still loading when the page gave up: " + strings.Join(rep.Pending, ", ") + "\n")
	}
	if k.ignored > 0 {
		fmt.Fprintf(&sb, "(%d problems matched ignore_errors and are not listed)\n", k.ignored)
	}
	return sb.String()
}
