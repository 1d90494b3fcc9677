package checks

import (
	"fmt"
	"maps"
	"slices"

	"github.com/expr-lang/expr/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/configs"
)

// kind is one check kind: the variables its runs set and how a configured check of it
// becomes a Prober. Each kind lives in its own file (http.go, browser.go, ...) with its
// prober, and has one line in the kinds table below. A kind may also implement Scarce and
// Instrumented.
type kind interface {
	// vars are the variables a run sets, which the check's assertions may read.
	vars() types.Map
	// build compiles a configured check of this kind. It reports problems through b and
	// returns nil when there were any.
	build(b *builder, c *configs.Check) Prober
}

// kinds is the table of check kinds this build runs. configs keeps the matching table of
// their config specs (configs/kinds.go); a test fails when the two disagree.
var kinds = map[string]kind{
	configs.KindHTTP:        httpKind{},
	configs.KindScript:      scriptKind{},
	configs.KindBrowser:     browserKind{},
	configs.KindPropagation: propagationKind{},
	configs.KindSLA:         slaKind{},
	configs.KindLogscan:     logscanKind{},
	configs.KindPromQL:      promqlKind{},
	configs.KindFleet:       fleetKind{},
	configs.KindTCP:         tcpKind{},
	configs.KindTLS:         tlsKind{},
	configs.KindDNS:         dnsKind{},
	configs.KindHeartbeat:   heartbeatKind{},
	configs.KindWebSocket:   websocketKind{},
	configs.KindGRPC:        grpcKind{},
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
		if c == nil {
			continue
		}
		if cfg.Broken(c.Path()) {
			// The check is not built, but its assertions depend on its kind alone: one
			// pass of vigil validate lists their problems beside the load's.
			b.assertionsOnly(c)
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
	srcs := c.Assert
	if len(srcs) == 0 {
		if d, ok := prober.(DefaultAsserter); ok {
			srcs = d.DefaultAssert()
		}
	}
	// The assertions are compiled even when the kind's own keys did not build, so that
	// one pass of vigil validate lists every problem of the check.
	var asserts []*Assertion
	failed := prober == nil
	for i, src := range srcs {
		a, err := b.assertion(c.Kind, k, src)
		if err != nil {
			b.errf(fmt.Sprintf("%s.assert[%d]", c.Path(), i), "", "%v", err)
			failed = true
			continue
		}
		asserts = append(asserts, a)
	}
	if failed {
		return nil
	}
	ch := &Check{Name: c.Name, Kind: c.Kind, Timeout: c.Timeout, Config: c, prober: prober, redact: b.redact, asserts: asserts}
	if b.deps.Tracing.On() { // off, a run makes no span at all
		ch.tracer = b.deps.Tracing.Tracer("checks")
	}
	return ch
}

// assertionsOnly compiles the written assertions of a check that has a load problem
// elsewhere (a bad URL, a misspelt key): "status = 200" beside a URL without a scheme was
// reported only once the URL was fixed.
func (b *builder) assertionsOnly(c *configs.Check) {
	k, ok := kinds[c.Kind]
	if !ok || b.cfg.Broken(c.Path()+".kind") || b.cfg.Broken(c.Path()+".assert") {
		return
	}
	for i, src := range c.Assert {
		if _, err := b.assertion(c.Kind, k, src); err != nil {
			b.errf(fmt.Sprintf("%s.assert[%d]", c.Path(), i), "", "%v", err)
		}
	}
}

// Resource returns the scarce resource a run of c holds, "" for none.
func (c *Check) Resource() Resource {
	if s, ok := kinds[c.Kind].(Scarce); ok {
		return s.Resource()
	}
	return ""
}

// Batched reports whether runs of c may come due together with other checks of its
// interval: not when a run holds a scarce resource or its kind runs Alone.
func (c *Check) Batched() bool {
	k := kinds[c.Kind]
	_, alone := k.(Alone)
	_, scarce := k.(Scarce)
	return !alone && !scarce
}

// KindMetrics records results in the metrics of their kinds (see Instrumented).
type KindMetrics struct {
	kinds  map[string]*Recorder
	shared *sharedGauges
}

// NewKindMetrics registers the metrics of every Instrumented kind with reg.
func NewKindMetrics(reg prometheus.Registerer) KindMetrics {
	m := KindMetrics{kinds: map[string]*Recorder{}, shared: newSharedGauges()}
	for name, k := range kinds {
		if in, ok := k.(Instrumented); ok {
			m.kinds[name] = in.Instrument(Instruments{Reg: reg, shared: m.shared})
		}
	}
	return m
}

// Observe records r in its kind's metrics, if the kind has any.
func (m KindMetrics) Observe(r *Result) {
	if rec := m.kinds[r.Kind]; rec != nil {
		rec.Observe(r)
	}
}

// Families are the kinds' series kept beside the registry (see Families), in the order
// of their kinds' names, and then the gauges several kinds set.
func (m KindMetrics) Families() []Families {
	var out []Families
	for _, name := range slices.Sorted(maps.Keys(m.kinds)) {
		if f := m.kinds[name].Families; f != nil {
			out = append(out, f)
		}
	}
	return append(out, m.shared)
}

// Forget drops the series of the named check from its kind's metrics.
func (m KindMetrics) Forget(check, kind string) {
	labels := prometheus.Labels{"check": check}
	if rec := m.kinds[kind]; rec != nil {
		for _, v := range rec.Vecs {
			v.DeletePartialMatch(labels)
		}
	}
	m.shared.DeletePartialMatch(labels) // a check's row, whichever kind wrote it: names are unique
}
