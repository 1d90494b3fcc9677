package checks

import (
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
}

// Resource is a part of the machine that vigil has few of, such as the browser's pages. A
// run of a kind that needs one holds one of its slots besides its run slot.
type Resource string

// BrowserSlot is one of agent.browser_concurrency pages open at once in the shared Chromium.
const BrowserSlot Resource = "browser"

// Scarce is implemented by kinds whose runs each hold a Resource. The agent bounds how many
// runs hold it at once, and is ready only when it can be had.
type Scarce interface {
	Resource() Resource
}

// Resource returns the scarce resource a run of c holds, "" for none.
func (c *Check) Resource() Resource {
	if s, ok := kinds[c.Kind].(Scarce); ok {
		return s.Resource()
	}
	return ""
}

// Instrumented is implemented by kinds that export metrics of their own beyond the
// probe_* and vigil_check_* series every check has, as blackbox_exporter's probers do.
type Instrumented interface {
	// Instrument registers the kind's collectors with reg and returns what records a
	// result of the kind in them. It is called once per registry.
	Instrument(reg prometheus.Registerer) func(*Result)
}

// KindMetrics records results in the metrics of their kinds (see Instrumented).
type KindMetrics map[string]func(*Result)

// NewKindMetrics registers the metrics of every Instrumented kind with reg.
func NewKindMetrics(reg prometheus.Registerer) KindMetrics {
	m := KindMetrics{}
	for name, k := range kinds {
		if in, ok := k.(Instrumented); ok {
			m[name] = in.Instrument(reg)
		}
	}
	return m
}

// Observe records r in its kind's metrics, if the kind has any.
func (m KindMetrics) Observe(r *Result) {
	if observe := m[r.Kind]; observe != nil {
		observe(r)
	}
}
