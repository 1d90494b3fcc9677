package checks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
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

// browserVars are the variables of one browser check run.
var browserVars = types.Map{
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
	"dialogs":            types.Int,
	"timings":            timingsType,
	"cached":             types.Bool,
	"age_s":              types.Int,
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

// DefaultAssert implements DefaultAsserter. A check that does not say how to answer
// dialogs expects none: an alert on a page nobody asked for is what a broken deploy shows.
func (b *Browser) DefaultAssert() []string {
	if b.spec.Dialogs != "" {
		return defaultBrowserAssert
	}
	return append(slices.Clip(defaultBrowserAssert), "dialogs == 0")
}

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
			t[k] = median(xs)
		}
	}
	out["timings"] = t
	return out
}

// browserKind registers the browser kind (kinds.go).
type browserKind struct{}

func (browserKind) vars() types.Map { return browserVars }

// Resource implements Scarce: a run holds a page of the shared Chromium.
func (browserKind) Resource() Resource { return BrowserSlot }

// Instrument implements Instrumented: the JavaScript errors browser checks see, counted.
func (browserKind) Instrument(in Instruments) *Recorder {
	jsErrors := promauto.With(in.Reg).NewCounterVec(prometheus.CounterOpts{Name: "vigil_browser_js_errors_total",
		Help: "JavaScript errors seen by browser checks."}, []string{"check"})
	return &Recorder{Vecs: vecs(jsErrors), Observe: func(r *Result) {
		if n, ok := r.Vars["js_errors"].(int); ok && n > 0 {
			jsErrors.WithLabelValues(r.Check).Add(float64(n))
		}
	}}
}

func (browserKind) build(b *builder, c *configs.Check) Prober {
	spec := c.Spec.(*configs.BrowserSpec)
	br := &Browser{spec: spec, runner: b.deps.Browser, ignore: spec.IgnoreRegexps(), tracing: b.deps.Tracing}
	srcs := c.Assert
	if len(srcs) == 0 {
		srcs = br.DefaultAssert()
	}
	env := Env(browserVars)
	for _, src := range srcs {
		// Errors are reported once, by the builder's own compile of the same sources.
		if a, err := CompileAssertion(src, env); err == nil {
			br.asserts = append(br.asserts, a)
		}
	}
	return br
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
		maps.Copy(headers, v.Headers)
		for k := range h {
			headers[k] = h.Get(k)
		}
		v.Headers = headers
	}
	rep, err := b.runner.Visit(ctx, v)
	if errors.Is(err, browser.ErrRendererCrashed) {
		rep, err = b.revisit(ctx, run, v, rep, err)
	}
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
		var prompt *browser.LoginPromptError
		if errors.As(err, &prompt) {
			return &faultError{err} // the server's answer: a sign-in prompt, not the page
		}
		return navigationFault(ctx, err)
	}
	if sv := b.spec.ServedVersion; sv != nil {
		where := "the page's header " + sv.Header
		switch {
		case sv.Attribute != "":
			where = "attribute " + sv.Attribute + " of the page's " + sv.Selector
		case sv.Selector != "":
			where = "the page's " + sv.Selector
		}
		if err := judgeServed(run, rep.ServedVersion, where); err != nil {
			return err
		}
	}
	if err := judgeDocuments(run, rep, b.spec.ServedVersion != nil && rep.ServedVersion != ""); err != nil {
		return err
	}
	if rep.Unresponsive > 0 {
		run.Failf("%s", unresponsive(rep))
	}
	if rep.StepError != "" {
		run.Failf("%s: %s", rep.FailedStep, rep.StepError)
	}
	return nil
}

// revisitMin is the least of a run's time a second visit after a renderer crash needs to
// tell anything: a tab, the page's load, the wait for it to render.
const revisitMin = 2 * time.Second

// revisit visits the page once more, in a fresh tab, after the first visit crashed
// Chromium's renderer (first, with its report). One crash says little of the page (the
// kernel's OOM killer chose the renderer, a Chromium bug); the same crash again is the
// page's doing, as every visitor's tab would crash (a script that allocates until the
// renderer dies): a fault. A second visit that loads is what the run is judged on. The
// browser itself exiting is not retried here: that is vigil's machine, an error.
func (b *Browser) revisit(ctx context.Context, run *Run, v *browser.Visit, first *browser.Report, err error) (*browser.Report, error) {
	deadline, _ := ctx.Deadline()
	left := time.Until(deadline)
	if ctx.Err() != nil || left < revisitMin {
		run.Transcript.Printf("!! the page crashed Chromium's renderer with %s of the run's timeout left, too little to visit it again", left.Round(time.Millisecond))
		return first, err
	}
	after := time.Duration(0)
	if first != nil {
		after = first.Duration.Round(10 * time.Millisecond)
	}
	run.Transcript.Printf("!! the page crashed Chromium's renderer %s into the visit; visiting it once more in a fresh tab, with %s of the run's timeout left",
		after, left.Round(time.Millisecond))
	rep, err := b.runner.Visit(ctx, v)
	switch {
	case errors.Is(err, browser.ErrRendererCrashed):
		var took [2]time.Duration
		for i, r := range []*browser.Report{first, rep} {
			if r != nil {
				took[i] = r.Duration.Round(10 * time.Millisecond)
			}
		}
		return rep, &faultError{fmt.Errorf("the page crashed Chromium's renderer twice in a row, each time in a fresh tab (%s, then %s into the visit): "+
			"every visitor's tab crashes too; a script that allocates without bound, or a page that trips a renderer bug?", took[0], took[1])}
	case err == nil:
		run.Transcript.Printf("the first visit crashed Chromium's renderer; the run is judged on this second visit, whose renderer did not crash")
	}
	return rep, err
}

// visit turns the config into a browser.Visit.
func (b *Browser) visit(run *Run) *browser.Visit {
	s := b.spec
	v := &browser.Visit{
		URL: s.URL, WaitFor: s.WaitFor, Headers: s.Headers,
		Viewport:          browser.Viewport{Width: s.Viewport.Width, Height: s.Viewport.Height},
		NavigationTimeout: s.NavigationTimeout,
		Logf:              run.Transcript.Printf,
		Revalidate:        run.Deploy != nil, // caches asked to revalidate the page (browser_cache.go)
	}
	if s.Dialogs == "accept" {
		v.Dialogs = browser.AcceptDialogs
	}
	if sv := s.ServedVersion; sv != nil {
		v.VersionHeader, v.VersionSelector, v.VersionAttribute = sv.Header, sv.Selector, sv.Attribute
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
	"failed_scripts": true, "failed_stylesheets": true, "dialogs": true}

// cutShort are the variables a run that stopped at its first fatal error did not measure
// to the end.
var cutShort = []string{"loaded", "wait_for_found", "steps", "failed_step", "timings"}
