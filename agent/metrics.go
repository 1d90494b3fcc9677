package agent

import (
	"runtime"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// metrics are what /metrics serves (the README's Metrics section lists them):
// blackbox-compatible probe gauges first, so existing dashboards and alert rules work, then
// vigil's own; a kind's own metrics (a browser check's JavaScript errors, a propagation
// check's time) belong to the kind (checks.Instrumented). No label takes unbounded values.
type metrics struct {
	checks        *checkSeries
	kinds         checks.KindMetrics
	own           *ownFamilies                        // checks' and kinds' series kept beside the registry
	stored        *storedSeries                       // the last verdicts and beats, read from the store at each scrape
	verdicts      *configuredVec[prometheus.Counter]  // by service
	notifications *configuredVec[prometheus.Counter]  // by notifier
	rollbacks     *configuredVec[prometheus.Counter]  // by service
	ready         *configuredVec[prometheus.Observer] // by service
	reloadOK      prometheus.Gauge
	reloadTime    prometheus.Gauge
	schedLag      prometheus.Histogram
	verifying     prometheus.Gauge
	unrecorded    prometheus.Gauge
	storeBytes    prometheus.Gauge
	storeWait     prometheus.Histogram
	// streaks counts this location's check streaks the agent keeps and those another
	// agent of the location keeps while this one stands by; set by the agent.
	streaks func() (kept, standingBy int)
	// incidents counts the open check incidents and those nobody was told of; set by the
	// agent.
	incidents func() (open, untold int)
	// configured says whether the config in force has a check of that name and kind (""
	// any kind): the agent sets its inConfig, the test its runs make too. A run that ends
	// after a reload removed its check records nothing: its series were forgotten, and
	// nothing would forget them again. gate makes the test and the record one step against
	// forget.
	configured func(name, kind string) bool
	gate       sync.RWMutex
}

func newMetrics(reg prometheus.Registerer, version, revision string) *metrics {
	f := promauto.With(reg)
	series := newCheckSeries()
	f.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_build_info",
		Help: "Always 1; the labels say which vigil this is."}, []string{"version", "revision", "goversion"}).
		WithLabelValues(version, revision, runtime.Version()).Set(1)
	kinds := checks.NewKindMetrics(reg)
	m := &metrics{
		checks: series,
		kinds:  kinds,
		own:    newOwnFamilies(append([]checks.Families{series}, kinds.Families()...)...),
		storeBytes: f.NewGauge(prometheus.GaugeOpts{Name: "vigil_store_size_bytes",
			Help: "Bytes the store's data takes (pages in use), as store.max_size counts them."}),
		storeWait: f.NewHistogram(prometheus.HistogramOpts{Name: "vigil_store_write_wait_seconds",
			Help:    "Time a write to the SQLite store waited for the agent's other writes to finish; one that waits 10 s is refused and retried.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
		verdicts: counters(f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_deploy_verdicts_total",
			Help: "Deploy verdicts by service and verdict (passed, failed, inconclusive, superseded, cancelled)."}, []string{"service", "verdict"})),
		notifications: counters(f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_notifications_total",
			Help: "Notification delivery attempts by notifier and outcome (delivered, retry, dead, dry_run, silenced, skipped)."}, []string{"notifier", "outcome"})),
		rollbacks: counters(f.NewCounterVec(prometheus.CounterOpts{Name: "vigil_rollbacks_total",
			Help: "Rollback and halt webhooks delivered, by service."}, []string{"service"})),
		reloadOK: f.NewGauge(prometheus.GaugeOpts{Name: "vigil_config_last_reload_successful",
			Help: "Whether the last configuration reload succeeded (1) or was rejected (0)."}),
		reloadTime: f.NewGauge(prometheus.GaugeOpts{Name: "vigil_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully."}),
		schedLag: f.NewHistogram(prometheus.HistogramOpts{Name: "vigil_scheduler_start_lag_seconds",
			Help:    "Delay between a run's scheduled time and its start (waiting for a concurrency slot included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}}),
		ready: &configuredVec[prometheus.Observer]{vec: f.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_deploy_ready_seconds",
			Help:    "How long after its registration a deploy's new version had passed every check once, in this location (verify.ready_within is its limit); once per verification that got there.",
			Buckets: []float64{.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600}}, []string{"service"}), discard: prometheus.ObserverFunc(func(float64) {})},
		verifying: f.NewGauge(prometheus.GaugeOpts{Name: "vigil_deploys_verifying",
			Help: "Deploys being verified now."}),
		unrecorded: f.NewGauge(prometheus.GaugeOpts{Name: "vigil_verdicts_unrecorded",
			Help: "Verdicts decided but not yet written to the store (it refuses writes); retried until it takes them."}),
		streaks: func() (int, int) { return 0, 0 }, incidents: func() (int, int) { return 0, 0 },
		configured: func(string, string) bool { return true },
		stored:     newStoredSeries(),
	}
	reg.MustRegister(m.stored)
	f.NewCounterFunc(prometheus.CounterOpts{Name: "vigil_held_up_seconds_total",
		Help: "How long the agent's process was held up (short of CPU, or paused): how late its stall clock's wake-ups came, in all."},
		func() float64 { return checks.HeldUp().Seconds() })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigil_streaks_kept",
		Help: "Checks whose streak in this location (failures and passes in a row, what opens incidents) this agent keeps."},
		func() float64 { kept, _ := m.streaks(); return float64(kept) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigil_streaks_standing_by",
		Help: "Checks whose streak in this location another agent keeps while this one stands by (several agents in one location)."},
		func() float64 { _, standingBy := m.streaks(); return float64(standingBy) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigil_check_incidents_open",
		Help: "Open check incidents (scheduled monitoring), as this agent knows them."},
		func() float64 { open, _ := m.incidents(); return float64(open) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigil_check_incidents_untold",
		Help: "Open check incidents nobody has been told of: opened during a silence, a maintenance window or an inhibition, and sent once it is over if still open."},
		func() float64 { _, untold := m.incidents(); return float64(untold) })
	return m
}

// configure gives every configured service's verdicts and rollbacks, and every configured
// notifier's outcomes, a series at 0, at start and at each reload: an alert on
// increase(vigil_notifications_total{outcome="dead"}[15m]) sees the first dead letter
// since the agent started only if the series was scraped at 0 before it (a series first
// scraped at 1 has increased by nothing). The services and notifiers are the config's,
// so the series are as bounded as it is: those of a service or notifier the config no
// longer has go, as a removed check's do, and an event of one that comes later (the
// verdict of a verification the reload ended, a delivery under way) makes none. It is
// called once the config is in force.
func (m *metrics) configure(cfg *configs.Config) {
	services, notifiers := map[string]bool{}, map[string]bool{}
	for service := range cfg.Services {
		services[service] = true
	}
	for notifier := range cfg.Notifiers {
		notifiers[notifier] = true
	}
	m.verdicts.follow("service", services)
	m.rollbacks.follow("service", services)
	m.ready.follow("service", services)
	m.notifications.follow("notifier", notifiers)
	for service := range services {
		for _, v := range [...]string{store.StatusPassed, store.StatusFailed, store.StatusInconclusive, store.StatusSuperseded, store.StatusCancelled} {
			m.verdicts.WithLabelValues(service, v)
		}
		m.rollbacks.WithLabelValues(service)
	}
	for notifier := range notifiers {
		for _, o := range [...]string{store.OutboxDelivered, "retry", store.OutboxDead, store.OutboxDryRun, store.OutboxSilenced, store.OutboxSkipped} {
			m.notifications.WithLabelValues(notifier, o)
		}
	}
}

// configuredVec is a vector whose first label is a service or a notifier: it makes series
// only for those of the config in force, so the series follow the config as the checks'
// do. Before the first configure (metrics without an agent) it makes any.
type configuredVec[T any] struct {
	vec interface {
		WithLabelValues(...string) T
		DeletePartialMatch(prometheus.Labels) int
	}
	discard T // what an event of a name not configured records into: nothing scraped

	// mu makes a name's test and its series one step against follow: an event that
	// tested before a reload and made its series after it would bring the series back,
	// and nothing would remove them again.
	mu    sync.RWMutex
	names map[string]bool
}

func counters(vec *prometheus.CounterVec) *configuredVec[prometheus.Counter] {
	return &configuredVec[prometheus.Counter]{vec: vec,
		discard: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_unconfigured", Help: "Never registered."})}
}

// WithLabelValues is the vector's series for the labels, or discard when the first is not
// configured. A series taken before a follow that drops it counts into nothing scraped.
func (v *configuredVec[T]) WithLabelValues(lvs ...string) T {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.names != nil && !v.names[lvs[0]] {
		return v.discard
	}
	return v.vec.WithLabelValues(lvs...)
}

// follow makes names (the first label's, named label) the configured ones, and removes the
// series of those that no longer are.
func (v *configuredVec[T]) follow(label string, names map[string]bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for name := range v.names {
		if !names[name] {
			v.vec.DeletePartialMatch(prometheus.Labels{label: name})
		}
	}
	v.names = names
}

func (m *metrics) observe(r *checks.Result) {
	m.gate.RLock()
	defer m.gate.RUnlock()
	if m.configured(r.Check, r.Kind) {
		m.checks.observe(r)
		m.kinds.Observe(r)
	}
}

// skip counts a skipped scheduled run of a configured check.
func (m *metrics) skip(name string) {
	m.gate.RLock()
	defer m.gate.RUnlock()
	if m.configured(name, "") {
		m.checks.skip(name)
	}
}

// forget drops the series of a check a reload removed, so it does not look alive forever
// and renamed checks do not pile up series. It is called once the new config is in force.
func (m *metrics) forget(name, kind string) {
	m.gate.Lock()
	defer m.gate.Unlock()
	m.checks.forget(name)
	m.kinds.Forget(name, kind)
}
