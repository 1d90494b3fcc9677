package checks

import (
	"fmt"
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
}

type builder struct {
	cfg    *configs.Config
	deps   Deps
	errs   configs.Errors
	redact *configs.Redactor
}

func (b *builder) errf(path, fix, format string, args ...any) {
	b.errs = append(b.errs, b.cfg.Err(path, fix, format, args...))
}

// Build compiles every check in cfg: assertions type-checked against the kind's variables,
// templates parsed and their variables resolved. Its error is configs.Errors: the config's
// own load problems (configs.LoadPartial) and what building found, in one list; a check
// with a load problem is not built.
func Build(cfg *configs.Config, deps Deps) ([]*Check, error) {
	if deps.HTTP == nil {
		deps.HTTP = NewHTTPClient("vigil")
	}
	b := &builder{cfg: cfg, deps: deps, redact: cfg.Redactor()}
	out := make([]*Check, 0, len(cfg.Checks))
	for _, c := range cfg.Checks {
		if c == nil || cfg.Broken(c.Path()) {
			continue
		}
		if ch := b.build(c); ch != nil {
			out = append(out, ch)
		}
	}
	if err := configs.Merge(cfg.Problems(), b.errs); err != nil {
		return nil, err
	}
	return out, nil
}

func (b *builder) build(c *configs.Check) *Check {
	k, ok := kinds[c.Kind]
	if !ok {
		b.errf(c.Path()+".kind", "", "kind %q is not available in this build of vigil", c.Kind)
		return nil
	}
	prober := k.build(b, c)
	if prober == nil {
		return nil
	}
	ch := &Check{Name: c.Name, Kind: c.Kind, Timeout: c.Timeout, Config: c, prober: prober, redact: b.redact}
	if b.deps.Tracing.On() { // off, a run makes no span at all
		ch.tracer = b.deps.Tracing.Tracer("checks")
	}
	srcs := c.Assert
	if len(srcs) == 0 {
		if d, ok := prober.(DefaultAsserter); ok {
			srcs = d.DefaultAssert()
		}
	}
	env := Env(k.vars())
	failed := false
	for i, src := range srcs {
		a, err := CompileAssertion(src, env)
		if err != nil {
			b.errf(fmt.Sprintf("%s.assert[%d]", c.Path(), i), "", "%v", err)
			failed = true
			continue
		}
		ch.asserts = append(ch.asserts, a)
	}
	if failed {
		return nil
	}
	return ch
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
