package checks

import (
	"strings"
	"testing"

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

// FuzzCompileAssertion: any source either compiles or returns an error; evaluating what
// compiles against zero variables never panics.
func FuzzCompileAssertion(f *testing.F) {
	for _, s := range []string{"status == 200", "json.token != nil", "p95_ms < baseline.p95_ms * 1.5",
		"headers['X'] contains 'a'", "len(json.items) > 2", "all(json.items, {# > 1})", "deploy.version == 'v2'", `body matches "^ok"`} {
		f.Add(s)
	}
	env := Env(HTTPVars)
	vars := map[string]any{"status": 0, "headers": map[string]string{}, "body": "", "json": nil, "duration_ms": 0.0}
	f.Fuzz(func(t *testing.T, src string) {
		a, err := CompileAssertion(src, env)
		if err != nil {
			return
		}
		run := &Run{Vars: vars}
		a.Eval(assertionEnv(run), nil)
	})
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
