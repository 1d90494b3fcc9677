package checks

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/types"
)

func TestCompileAssertionErrors(t *testing.T) {
	env := Env(HTTPVars)
	for _, c := range []struct{ src, want string }{
		{"stauts == 200", `unknown variable "stauts"; did you mean "status"?`},
		{"baseline.ttfb_sm > 1", `unknown field "ttfb_sm"; did you mean "ttfb_ms"?`},
		{"status == 'x'", "mismatched types int and string for == (at column 8)"},
		{"status", "expected bool, but got int"},
		{"status ==", "unexpected token EOF (at column 9)"},
	} {
		_, err := CompileAssertion(c.src, env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.src, err, c.want)
		}
	}
}

func TestEvalQuotesValues(t *testing.T) {
	a, err := CompileAssertion("len(stale) == 0 && propagation_ms < 2000", Env(types.Map{"stale": types.Array(types.String), "propagation_ms": types.Float64}))
	if err != nil {
		t.Fatal(err)
	}
	ok, why := a.Eval(map[string]any{"stale": []string{"r2"}, "propagation_ms": 60123.456}, map[string]string{"stale": "never showed the marker"})
	if ok {
		t.Fatal("must be false")
	}
	want := `len(stale) == 0 && propagation_ms < 2000 is false: stale = ["r2"] (never showed the marker), len(stale) = 1, propagation_ms = 60123.5`
	if why != want {
		t.Errorf("got  %s\nwant %s", why, want)
	}
}

// A baseline is a median of runs kept as JSON: its numbers are float64 whatever the
// variable's type in a run. Comparing a run's int with its baseline works (it was an
// int-only comparison that failed on the float64, found by FuzzCompileAssertion, and a
// failed comparison fails the deploy), and int-only arithmetic on a baseline is refused
// at load.
func TestBaselineNumbersAreFloats(t *testing.T) {
	env := Env(HTTPVars)
	vars := httpVars(200, `{"ok":true}`, 10, 0)
	baseline := jsonRoundTrip(MedianBaseline([]*Result{{Outcome: Pass, Vars: jsonRoundTrip(vars)}}))
	run := &Run{Vars: vars, Input: Input{Baseline: baseline}}
	for _, src := range []string{"status == baseline.status", "baseline.status == status", "body_bytes <= baseline.body_bytes",
		"baseline.headers['Content-Type'] == headers['Content-Type']", "duration_ms < baseline.duration_ms * 2"} {
		a, err := CompileAssertion(src, env)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if ok, why := a.Eval(assertionEnv(run), nil); !ok {
			t.Errorf("%s: %s", src, why)
		}
	}
	if _, err := CompileAssertion("baseline.status % 100 == 2", env); err == nil {
		t.Error("int-only arithmetic on a baseline number (a median) compiled")
	}
	// A header neither run had reads "" on both sides, as between two runs; one the
	// baseline had and this run has not compares unequal: never a type error that would
	// fail the run (found by FuzzCompileAssertion: baseline.headers[''] != headers['']).
	for src, want := range map[string]bool{"baseline.headers['X-New'] == headers['X-New']": true,
		"baseline.headers['X-New'] != headers['Content-Type']": true, "baseline.headers[''] != headers['']": false} {
		a, err := CompileAssertion(src, env)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if ok, why := a.Eval(assertionEnv(run), nil); ok != want {
			t.Errorf("%s = %v, want %v: %s", src, ok, want, why)
		}
	}
	fleet := Env(fleetVars)
	if got := fleet["baseline"].(types.Map)["versions"].String(); got != "map[string]interface {}" {
		t.Errorf("baseline.versions is %s", got)
	}
}

// FuzzCompileAssertion: any source compiles or returns an error, and what compiles is
// evaluated against what an http check really gives its assertions: the variables
// SetHTTPVars records from a response made of the fuzz input, and a baseline made the way a
// deploy makes it (runs stored as JSON, their median, the deploy's baseline stored as JSON
// again). Three properties, each of which a wrong Eval, a wrong variable type or a
// rewrite that changes meaning breaks:
//
//   - typed: when the type check gave every part of the expression a static type (no
//     `any`), evaluation never ends in a type error: the load-time check promised it could
//     not, and a run that cannot be evaluated fails, which in a deploy means a rollback;
//   - decided: of a source and its negation, exactly one holds when both evaluate;
//   - explained: a true result has no reason, and a false one's reason starts with the
//     source, followed by " is false" or " could not be evaluated: ".
func FuzzCompileAssertion(f *testing.F) {
	for _, s := range []string{"status == 200", "json.token != nil", "p95_ms < baseline.p95_ms * 1.5",
		"headers['X'] contains 'a'", "len(json.items) > 2", "all(json.items, {# > 1})", "deploy.version == 'v2'", `body matches "^ok"`,
		"duration_ms < baseline.duration_ms * 2", "baseline.status == status", "body_bytes % 2 == 0", "baseline.body_bytes <= body_bytes + 1",
		"headers['Content-Type'] startsWith 'application/'", "baseline.headers['Content-Type'] == headers['Content-Type']",
		"not conn_reused || connect_ms == 0", "cert_expiry_days > 14 || url startsWith 'http:'", "json.items[7] == 1"} {
		f.Add(s, uint16(200), `{"token":"t","items":[1,2,3]}`, 12.5, uint8(0))
	}
	f.Add("status % 100 == 0", uint16(503), "upstream timed out", 1500.0, uint8(3))
	env := Env(HTTPVars)
	f.Fuzz(func(t *testing.T, src string, status uint16, body string, ms float64, flags uint8) {
		a, err := CompileAssertion(src, env)
		if err != nil {
			return
		}
		vars := httpVars(int(status), body, ms, flags)
		prev := httpVars(int(status)/2+100, body+"x", ms*2+1, flags>>1)
		baseline := jsonRoundTrip(MedianBaseline([]*Result{{Outcome: Pass, Vars: jsonRoundTrip(prev)}, {Outcome: Pass, Vars: jsonRoundTrip(vars)}}))
		run := &Run{Vars: vars, Input: Input{Baseline: baseline, Deploy: &Deploy{ID: "d1", Service: "web", Version: body}}}
		ev := assertionEnv(run)
		ok, why := a.Eval(ev, nil)
		switch {
		case ok && why != "":
			t.Fatalf("%q is true with a reason: %s", src, why)
		case !ok && !strings.HasPrefix(why, src+" is false") && !strings.HasPrefix(why, src+" could not be evaluated: "):
			t.Fatalf("%q is false, and the reason does not quote it: %s", src, why)
		}
		evalErr := strings.HasPrefix(why, src+" could not be evaluated: ")
		if evalErr && staticallyTyped(a.program.Node()) {
			// The reason explains the error in the operator's words: the type error, if
			// it is one, is expr's own.
			if _, raw := expr.Run(a.program, ev); raw != nil && isTypeError(raw.Error()) {
				t.Fatalf("%q type-checks, and every part of it has a static type, yet it cannot be evaluated on the variables an http check records: %s (%v)\nvariables: %v", src, why, raw, ev)
			}
		}
		neg, err := CompileAssertion("not (\n"+src+"\n)", env)
		if err != nil {
			t.Fatalf("%q compiles and its negation does not: %v", src, err)
		}
		nok, nwhy := neg.Eval(ev, nil)
		if !evalErr && !strings.Contains(nwhy, " could not be evaluated: ") && nok == ok {
			t.Fatalf("%q and its negation are both %v: %q / %q", src, ok, why, nwhy)
		}
	})
}

// httpVars records a response made of fuzz input the way an http check does.
func httpVars(status int, body string, ms float64, flags uint8) map[string]any {
	var parsed any
	if json.Unmarshal([]byte(body), &parsed) != nil {
		parsed = nil
	}
	d := time.Duration(ms * float64(time.Millisecond))
	resp := &Response{Status: status, Proto: "HTTP/1.1", Header: http.Header{"Content-Type": {"application/json"}, "X": {body}},
		Body: []byte(body), BodyBytes: int64(len(body)), Truncated: flags&1 != 0, JSON: parsed, FinalURL: "http://127.0.0.1/",
		Timings: Timings{DNS: d / 8, Connect: d / 4, TTFB: d / 2, Total: d}, Reused: flags&2 != 0}
	if flags&4 != 0 {
		resp.CertExpiry = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	run := &Run{Vars: map[string]any{}}
	SetHTTPVars(run, "", resp, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	return run.Vars
}

// jsonRoundTrip is what the store does to variables: JSON numbers come back as float64.
func jsonRoundTrip(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		return m // NaN or Inf: the store would not have kept it either
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// staticallyTyped reports whether the type checker gave every node of the compiled
// expression a concrete type: no `any`, nothing unknown.
func staticallyTyped(root ast.Node) bool {
	typed := true
	ast.Walk(&root, visitorFunc(func(n ast.Node) {
		if t := n.Type(); t == nil || t.Kind() == reflect.Interface {
			typed = false
		}
	}))
	return typed
}

// isTypeError reports whether an evaluation error is the kind a type check rules out, as
// opposed to one that depends on values (a missing key, an index out of range, a bad regex).
func isTypeError(reason string) bool {
	for _, s := range []string{"invalid operation", "interface conversion", "cannot use", "mismatched types", "reflect:"} {
		if strings.Contains(reason, s) {
			return true
		}
	}
	return false
}

// TestVariableNamedLikeAnOperator: logscan's `matches` is also expr's regex operator; both
// readings work in one expression, and a failure quotes the variable by its name.
func TestVariableNamedLikeAnOperator(t *testing.T) {
	env := Env(types.Map{"matches": types.Int, "samples": types.Array(types.String)})
	for src, want := range map[string]bool{
		"matches == 0":                                   false,
		"(matches < 5) && 0 < matches":                   true,
		"baseline.matches == 0 || matches > 2":           true,
		`all(samples, # matches "leak") && matches > 0`:  true,
		`matches == 3 and not (samples[0] matches "^x")`: true,
		"-matches < 0":                                   true,
	} {
		a, err := CompileAssertion(src, env)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		ok, why := a.Eval(map[string]any{"matches": 3, "samples": []string{"a leak"}, "baseline": map[string]any{"matches": 0}},
			map[string]string{"matches": "since the deploy"})
		if ok != want {
			t.Errorf("%s = %v, want %v (%s)", src, ok, want, why)
		}
		if src == "matches == 0" && why != "matches == 0 is false: matches = 3 (since the deploy)" {
			t.Errorf("reason: %s", why)
		}
	}
	if _, err := CompileAssertion("matchs == 0", env); err == nil || !strings.Contains(err.Error(), `did you mean "matches"?`) {
		t.Errorf("misspelt: %v", err)
	}
}

// Assertions see deploy and baseline in the run's own variables while it is judged; after
// it the variables are as the run left them: a variable of that name it had is put back,
// none is added.
func TestJudgeLeavesTheRunsVariables(t *testing.T) {
	env := Env(types.Map{"status": types.Int, "deploy": types.Map{"version": types.String}})
	var asserts []*Assertion
	for _, src := range []string{"status == 200", "deploy.version == 'v2'"} {
		a, err := CompileAssertion(src, env)
		if err != nil {
			t.Fatal(err)
		}
		asserts = append(asserts, a)
	}
	c := &Check{asserts: asserts}
	for _, own := range []bool{false, true} {
		vars := map[string]any{"status": 200}
		if own {
			vars["deploy"] = "a variable of the run's own"
		}
		run := &Run{Vars: vars, Input: Input{Deploy: &Deploy{ID: "d1", Version: "v2"}}, Transcript: newRunTranscript(nil)}
		if got, why := c.judge(run); got != Pass {
			t.Errorf("own deploy variable %v: %s %v", own, got, why)
		}
		run.Deploy.Version = "v3"
		if got, _ := c.judge(run); got != Fail {
			t.Errorf("own deploy variable %v: %s on v3, want fail", own, got)
		}
		if _, ok := vars["baseline"]; ok {
			t.Error("baseline left in the run's variables")
		}
		if d, ok := vars["deploy"]; ok != own || (own && d != "a variable of the run's own") {
			t.Errorf("own deploy variable %v: after judging deploy is %v", own, d)
		}
	}
}
