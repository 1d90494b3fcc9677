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
