package checks

import (
	"maps"
	"slices"
	"strings"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/tracing"
)

// Deps are the shared parts checks are built with. main builds them once.
type Deps struct {
	HTTP *HTTPClient
	// Browser runs browser checks (a *browser.Pool); nil builds browser checks that end as
	// error, which is what `vigil validate` wants: it runs nothing.
	Browser BrowserRunner
	// Tracing makes each run a span and carries its trace context to the target; nil is off.
	// The HTTP client's transports are wrapped by whoever builds it (see HTTPClient.Wrap).
	Tracing *tracing.Tracing
	// Heartbeats holds the beats the agent received; nil (vigil run, validate) builds
	// heartbeat checks that end as error.
	Heartbeats *Heartbeats
}

// builder is what a kind's build works with: the config, the shared Deps, and the list
// its problems go to, located in the config file.
type builder struct {
	cfg    *configs.Config
	deps   Deps
	errs   configs.Errors
	redact *configs.Redactor
	// asserts are the assertions compiled so far, by kind and source: an assertion is
	// immutable once compiled, so a thousand checks with the default assertion share one.
	asserts map[[2]string]*Assertion
}

// assertion compiles src for a check of kind k, or returns the one already compiled.
func (b *builder) assertion(kind string, k kind, src string) (*Assertion, error) {
	key := [2]string{kind, src}
	if a, ok := b.asserts[key]; ok {
		return a, nil
	}
	a, err := CompileAssertion(src, Env(k.vars()))
	if err != nil {
		return nil, err
	}
	if b.asserts == nil {
		b.asserts = map[[2]string]*Assertion{}
	}
	b.asserts[key] = a
	return a, nil
}

func (b *builder) errf(path, fix, format string, args ...any) {
	b.errs = append(b.errs, b.cfg.Err(path, fix, format, args...))
}

// request compiles a request's templates; known lists the template variables available.
func (b *builder) request(path string, r *configs.Request, known []string) *requestTemplate {
	rt, err := compileRequest(r)
	if err != nil {
		if te, ok := err.(*templateError); ok {
			b.errf(path+"."+te.Field, "templates look like {{ .name }}", "%v", te.Err)
		} else {
			b.errf(path, "", "%v", err)
		}
		return nil
	}
	fields := rt.Fields()
	bad := false
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if slices.Contains(known, name) {
			continue
		}
		fix := configs.DidYouMean(name, known)
		if n := configs.Nearest(name, known); n == "" {
			fix = "extract it in an earlier step (extract: {" + name + ": json.PATH}); available: " + strings.Join(known, ", ")
		}
		b.errf(path+"."+fields[name], fix, "template reads .%s, which nothing before this request provides", name)
		bad = true
	}
	if bad {
		return nil
	}
	return rt
}
