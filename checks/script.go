package checks

import (
	"context"
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
	defer func() { run.Vars["duration_ms"] = ms(time.Since(start)) }()
	for i, st := range s.steps {
		run.Vars["steps"] = i + 1
		run.Transcript.Printf("-- step %d: %s", i+1, st.label)
		req, err := st.req.Render(data)
		if err != nil {
			run.Vars["failed_step"] = st.label
			run.Failf("step %d (%s): %v%s", i+1, st.label, err, varsNote(run.Transcript, extracted))
			return nil
		}
		resp, err := s.client.Do(ctx, req, run.Transcript)
		if err != nil {
			return targetFault(fmt.Errorf("step %d (%s): %w", i+1, st.label, err))
		}
		run.Vars["status"] = resp.Status
		if s.served != nil {
			if err := servedBy(run, s.served, resp); err != nil {
				return Inconclusivef("step %d (%s): %v", i+1, st.label, err)
			}
		}
		stepRun := &Run{Vars: map[string]any{}}
		SetHTTPVars(stepRun, "", resp, time.Now())
		stepRun.Vars["vars"] = extracted
		env := assertionEnv(&Run{Input: run.Input, Vars: stepRun.Vars})
		for _, a := range st.asserts {
			if ok, why := a.eval(env, stepRun.details, run.Transcript.Redactor()); !ok {
				run.Vars["failed_step"] = st.label
				run.Failf("step %d (%s): %s%s", i+1, st.label, why, varsNote(run.Transcript, extracted))
				return nil
			}
		}
		for _, name := range slices.Sorted(maps.Keys(st.extract)) {
			v, ok := extractValue(st.extract[name], resp)
			if !ok {
				run.Vars["failed_step"] = st.label
				run.Failf("step %d (%s): extract %s from %s: no value there%s", i+1, st.label, name, st.extract[name], varsNote(run.Transcript, extracted))
				return nil
			}
			extracted[name] = v
			data[name] = v
			run.Transcript.Printf("   %s = %s", name, shownValue(run.Transcript, name, v))
		}
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
		return r.Value(), true
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
		if label == "" {
			label = st.Request.Method + " " + st.Request.URL
		}
		req := b.request(p+".request", &st.Request, known)
		step := &scriptStep{label: label, req: req, extract: st.Extract}
		srcs := st.Assert
		if len(srcs) == 0 {
			srcs = defaultHTTPAssert
		}
		for j, src := range srcs {
			a, err := CompileAssertion(src, Env(scriptStepVars))
			if err != nil {
				b.errf(fmt.Sprintf("%s.assert[%d]", p, j), "", "%v", err)
				ok = false
				continue
			}
			step.asserts = append(step.asserts, a)
		}
		if req == nil {
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
