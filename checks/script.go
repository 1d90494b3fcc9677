package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/tidwall/gjson"
	"github.com/vigil-monitor/vigil/configs"
)

// Script is the script kind: an ordered API journey. Each step's request may use values
// earlier steps extracted ({{ .cart }}), and each step has its own assertions; the first
// step that fails ends the run and the reason names it with the variables it had.
type Script struct {
	steps  []*scriptStep
	client *HTTPClient
	served *configs.ServedVersion
}

type scriptStep struct {
	label   string
	req     *requestTemplate
	grpc    *GRPC // a call of a gRPC method instead of req
	extract map[string]string
	asserts []*Assertion
}

// scriptStepVars are a step's variables: the response, plus what earlier steps extracted.
var scriptStepVars = func() types.Map {
	m := types.Map{"vars": types.TypeOf(map[string]any{})}
	maps.Copy(m, HTTPVars)
	return m
}()

// scriptVars are the whole journey's variables.
var scriptVars = types.Map{
	"steps":       types.Int,
	"steps_total": types.Int,
	"failed_step": types.String,
	"vars":        types.TypeOf(map[string]any{}),
	"status":      types.Int,
	"setup_ms":    types.Float64,
}

// stepFailure is why the first of a step's assertions that does not hold fails; "" when
// every one holds or waits for a baseline (the first such is put in noBaseline).
func stepFailure(run *Run, st *scriptStep, ans *stepAnswer, i int, noBaseline *string) string {
	view := baselineView{env: assertionEnv(&Run{Input: run.Input, Vars: ans.run.Vars}), details: ans.run.details}
	for _, a := range st.asserts {
		switch {
		case a.usesBaseline && run.Deploy == nil:
			continue // baseline.* is "before the deploy": nothing to compare with outside one (as a check's own assertions)
		case a.usesBaseline && run.Baseline == nil:
			if *noBaseline == "" {
				*noBaseline = fmt.Sprintf("no baseline yet: step %d (%s): %q compares with runs from before the deploy, and there are none that passed%s", i+1, st.label, a.Source, run.changed())
			}
			continue
		}
		if ok, why := a.eval(view.of(a), view.detailsOf(a), run.Transcript.Redactor()); !ok {
			return why
		}
	}
	return ""
}

// Probe implements Prober.
func (s *Script) Probe(ctx context.Context, run *Run) error {
	extracted := map[string]any{}
	data := map[string]any{"Nonce": newNonce()}
	run.Vars["steps_total"] = len(s.steps)
	run.Vars["failed_step"] = ""
	run.Vars["vars"] = extracted
	run.Vars["status"] = 0
	start := time.Now()
	var setup float64           // the HTTP steps' connection setup, within duration_ms
	var waitedFor time.Duration // on a rate limiter, as its 429s asked: not the journey's (ratelimit.go)
	defer func() {
		run.Vars["duration_ms"], run.Vars["setup_ms"] = ms(time.Since(start)-waitedFor), lessSetup(setup, 0)
	}()
	ctx, done := s.client.perRun(ctx) // a verification's round is a new visitor (HTTPClient.perRun)
	defer done()
	ctx = withCookieJar(ctx) // the journey's steps share cookies, as a browser's tab would
	noBaseline := ""         // the first step assertion left unjudged for want of a baseline
	if run.Deploy != nil {
		ctx = revalidating(ctx) // caches asked to revalidate (http_cache.go)
	}
	for i, st := range s.steps {
		run.Vars["steps"] = i + 1
		run.Transcript.Printf("-- step %d: %s", i+1, st.label)
		var ans *stepAnswer
		for waited := 0; ; waited++ {
			var fail string
			var err error
			if st.grpc != nil {
				ans, fail, err = s.grpcStep(ctx, st.grpc, run.Transcript, data)
			} else {
				ans, fail, err = s.httpStep(ctx, st, run.Transcript, data)
			}
			switch {
			case err != nil:
				return fmt.Errorf("step %d (%s): %w", i+1, st.label, err)
			case fail != "":
				run.Vars["failed_step"] = st.label
				run.Failf("step %d (%s): %s%s", i+1, st.label, fail, varsNote(run.Transcript, extracted))
				return nil
			}
			if status, ok := ans.run.Vars["status"]; ok {
				run.Vars["status"] = status
			}
			if st.grpc == nil {
				spent, _ := connectionSetup(ans.run.Vars)
				setup += spent
				headers, _ := ans.run.Vars["headers"].(map[string]string)
				if err := judgeAnswer(run, s.served != nil, ans.version, ans.where, cacheOf(flatGetter(headers)), time.Now()); err != nil {
					return inStep(err, i+1, st.label) // a cache's copy is nothing seen, not "not up yet"
				}
			} else if s.served != nil {
				if err := judgeServed(run, ans.version, ans.where); err != nil {
					return NotServedf("step %d (%s): %v", i+1, st.label, err)
				}
			}
			ans.run.Vars["vars"] = extracted
			why := stepFailure(run, st, ans, i, &noBaseline)
			if why == "" {
				break
			}
			// A rate limiter's 429 in a verification: asked again as it asks (ratelimit.go).
			wait, asked, limited := rateLimited(run, ans.run.Vars)
			step := fmt.Sprintf("step %d (%s)", i+1, st.label)
			if limited && st.grpc == nil {
				began := time.Now()
				if limitWait(ctx, run.Transcript, step, wait, asked) {
					waitedFor += time.Since(began)
					continue
				}
				note, inc := limitOutcome(waited, wait, asked, step)
				if inc != nil {
					return inc
				}
				why += note
			}
			run.Vars["failed_step"] = st.label
			run.Failf("%s: %s%s%s", step, why, ans.note, varsNote(run.Transcript, extracted))
			return nil
		}
		for _, name := range slices.Sorted(maps.Keys(st.extract)) {
			v, ok := ans.extract(st.extract[name])
			if !ok {
				why := "no value there"
				if u, isU := v.(unreadable); isU {
					why = string(u)
				}
				run.Vars["failed_step"] = st.label
				run.Failf("step %d (%s): extract %s from %s: %s%s", i+1, st.label, name, st.extract[name], why, varsNote(run.Transcript, extracted))
				return nil
			}
			extracted[name] = v
			data[name] = v
			run.Transcript.Printf("   %s = %s", name, shownValue(run.Transcript, name, v))
		}
	}
	if noBaseline != "" {
		return Inconclusivef("%s", noBaseline)
	}
	return nil
}

func varsNote(t *Transcript, vars map[string]any) string {
	if len(vars) == 0 {
		return ""
	}
	parts := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		parts = append(parts, k+"="+shownValue(t, k, vars[k]))
	}
	return " (variables: " + strings.Join(parts, ", ") + ")"
}

// shownValue formats an extracted value for a reason or the transcript: masked whole when
// its name holds a credential (token, session), redacted before it is cut short otherwise.
func shownValue(t *Transcript, name string, v any) string {
	if configs.SensitiveName(name) {
		return configs.Masked
	}
	return formatValue(t.Redactor().Value(v))
}

// unreadable is why a value that is there could not be extracted (extractValue's value
// when it reports false).
type unreadable string

// extractValue reads json.PATH (gjson), json, header.NAME, status or body from resp.
func extractValue(from string, resp *Response) (any, bool) {
	switch {
	case from == "status":
		return resp.Status, true
	case from == "body":
		return string(resp.Body), true
	case from == "json":
		return resp.JSON, resp.JSON != nil
	case strings.HasPrefix(from, "json."):
		r := gjson.GetBytes(resp.Body, strings.TrimPrefix(from, "json."))
		if !r.Exists() {
			return nil, false
		}
		if !r.IsObject() && !r.IsArray() {
			return r.Value(), true
		}
		// An object or a list is decoded by encoding/json, in time linear in its size and
		// at most 10,000 levels deep; gjson's Value is quadratic in the depth (a hostile
		// answer nested 100,000 deep took a minute of CPU, past any timeout).
		var v any
		if err := json.Unmarshal([]byte(r.Raw), &v); err != nil {
			return unreadable("the value there could not be read: " + err.Error()), false
		}
		return v, true
	case strings.HasPrefix(from, "header."):
		v := resp.Header.Get(strings.TrimPrefix(from, "header."))
		return v, v != ""
	}
	return nil, false
}

// scriptKind registers the script kind (kinds.go).
type scriptKind struct{}

func (scriptKind) vars() types.Map { return scriptVars }

func (scriptKind) build(b *builder, c *configs.Check) Prober {
	s := &Script{client: b.deps.HTTP, served: c.Spec.(*configs.ScriptSpec).ServedVersion}
	known := []string{"Nonce"}
	ok := true
	for i, st := range c.Spec.(*configs.ScriptSpec).Steps {
		p := fmt.Sprintf("%s.steps[%d]", c.Path(), i)
		label := st.Name
		step := &scriptStep{label: label, extract: st.Extract}
		vars, srcs, built := scriptStepVars, st.Assert, false
		if st.GRPC != nil {
			if label == "" {
				step.label = st.GRPC.Method + " on " + st.GRPC.Address
			}
			step.grpc = b.buildGRPCStep(p+".grpc", st.GRPC, known)
			vars, built = scriptGRPCStepVars, step.grpc != nil
			if len(srcs) == 0 {
				srcs = defaultGRPCStepAssert
			}
		} else {
			if label == "" {
				step.label = st.Request.Method + " " + st.Request.URL
			}
			step.req = b.request(p+".request", &st.Request, known)
			built = step.req != nil
			if len(srcs) == 0 {
				srcs = defaultHTTPAssert
			}
		}
		for j, src := range srcs {
			a, err := CompileAssertion(src, Env(vars))
			if err != nil {
				b.errf(fmt.Sprintf("%s.assert[%d]", p, j), "", "%v", err)
				ok = false
				continue
			}
			step.asserts = append(step.asserts, a)
		}
		if st.GRPC != nil && !slices.ContainsFunc(step.asserts, func(a *Assertion) bool { return a.roots["grpc_code"] }) && len(st.Assert) > 0 {
			// Assertions that say nothing of the status judge an answer that is OK: the
			// status comes first, not a response the call never had.
			a, _ := CompileAssertion(defaultGRPCStepAssert[0], Env(vars))
			step.asserts = append([]*Assertion{a}, step.asserts...)
		}
		if !built {
			ok = false
		}
		s.steps = append(s.steps, step)
		known = append(known, slices.Sorted(maps.Keys(st.Extract))...)
	}
	if !ok {
		return nil
	}
	return s
}

// inStep names step n (label) in err, an answer's judgement (judgeAnswer), keeping its kind:
// another version answering is NotServed, a cache's copy from before the deploy is not.
func inStep(err error, n int, label string) error {
	var ie *inconclusiveError
	if !errors.As(err, &ie) {
		return err
	}
	return &inconclusiveError{msg: fmt.Sprintf("step %d (%s): %s", n, label, ie.msg), notServed: ie.notServed}
}
