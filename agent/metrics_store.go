package agent

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// storedSeries are the series an SRE alerts on that are the store's truth, not this
// process's: each configured service's last decided deploy and each heartbeat check's last
// beat. They are read from the store when /metrics is scraped, so they are right from the
// agent's first scrape after a restart, and every agent sharing a store reports the same,
// whichever agent decided the deploy or took the beat. They follow the config in force:
// a service or check a reload removes has no series from the next scrape on, and nothing
// brings them back, as nothing keeps them but the scrape. A read the store refuses or that
// takes longer than storedReadTimeout leaves that scrape the values last read.
type storedSeries struct {
	verdict, verdictAt, beatAt, beatStatus *prometheus.Desc

	// scope is what the series are read for and from; nil (metrics without an agent)
	// is nothing. Set by the agent.
	scope func() storedScope

	mu       sync.Mutex // one scrape reads at a time; guards the fields below
	verdicts map[string]*store.Deploy
	beats    map[string]*store.Beat
	failing  bool // the last read failed (logged once until a read succeeds)
}

// storedScope is what one scrape reads: the config's services and heartbeat checks, from
// the agent's store.
type storedScope struct {
	services, heartbeats []string
	st                   storedReader
	log                  *slog.Logger
}

// storedReader is the store's part the series are read from.
type storedReader interface {
	ServiceDeploys(ctx context.Context, service string, limit int) ([]*store.Deploy, error)
	Beats(ctx context.Context, check string, since time.Time) ([]*store.Beat, *store.Beat, error)
}

// storedReadTimeout bounds one scrape's reads: a store that hangs (a database restarting)
// costs a scrape this much, well inside Prometheus's default scrape timeout of 10 s.
const storedReadTimeout = 2 * time.Second

// verdictStates are vigil_deploy_last_verdict's verdicts, in the order of their names.
var verdictStates = [...]string{store.StatusCancelled, store.StatusFailed, store.StatusInconclusive, store.StatusPassed, store.StatusSuperseded}

// beatStates are vigil_heartbeat_last_beat_status's statuses, in the order of their names.
var beatStates = [...]string{"fail", "ok"}

// noBeatSince is a time no beat is received at or after: Beats given it reads the last
// beat alone.
var noBeatSince = time.Unix(0, math.MaxInt64)

func newStoredSeries() *storedSeries {
	return &storedSeries{
		verdict: prometheus.NewDesc("vigil_deploy_last_verdict",
			"1 for the verdict of the service's last decided deploy (passed, failed, inconclusive, superseded, cancelled), 0 for the others; all 0 before its first. Read from the store.",
			[]string{"service", "verdict"}, nil),
		verdictAt: prometheus.NewDesc("vigil_deploy_last_verdict_timestamp_seconds",
			"When the service's last decided deploy was decided, in Unix seconds. Read from the store.",
			[]string{"service"}, nil),
		beatAt: prometheus.NewDesc("vigil_heartbeat_last_beat_timestamp_seconds",
			"When a heartbeat check's last beat was received, in Unix seconds: alert when it stops moving. Read from the store.",
			[]string{"check"}, nil),
		beatStatus: prometheus.NewDesc("vigil_heartbeat_last_beat_status",
			"1 for the status a heartbeat check's last beat reported (ok, fail), 0 for the other. Read from the store.",
			[]string{"check", "status"}, nil),
		verdicts: map[string]*store.Deploy{}, beats: map[string]*store.Beat{},
	}
}

// Describe implements prometheus.Collector.
func (s *storedSeries) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.verdict
	ch <- s.verdictAt
	ch <- s.beatAt
	ch <- s.beatStatus
}

// Collect implements prometheus.Collector: it reads the store and sends the series, a
// service's or check's in the order of their names.
func (s *storedSeries) Collect(ch chan<- prometheus.Metric) {
	if s.scope == nil {
		return
	}
	sc := s.scope()
	slices.Sort(sc.services)
	slices.Sort(sc.heartbeats)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.read(sc)
	for _, service := range sc.services {
		d := s.verdicts[service]
		for _, v := range verdictStates {
			ch <- prometheus.MustNewConstMetric(s.verdict, prometheus.GaugeValue, isState(d != nil && d.Status == v), service, v)
		}
		if d != nil {
			ch <- prometheus.MustNewConstMetric(s.verdictAt, prometheus.GaugeValue, unixSeconds(d.DecidedAt), service)
		}
	}
	for _, check := range sc.heartbeats {
		b := s.beats[check]
		if b == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(s.beatAt, prometheus.GaugeValue, unixSeconds(b.At), check)
		for _, st := range beatStates {
			ch <- prometheus.MustNewConstMetric(s.beatStatus, prometheus.GaugeValue, isState(b.Status == st), check, st)
		}
	}
}

// read replaces the values kept with those of sc's services and checks as the store has
// them now; one it cannot read keeps its last value.
func (s *storedSeries) read(sc storedScope) {
	ctx, cancel := context.WithTimeout(context.Background(), storedReadTimeout)
	defer cancel()
	var failed error
	verdicts := make(map[string]*store.Deploy, len(sc.services))
	for _, service := range sc.services {
		d, err := lastDecided(ctx, sc.st, service)
		if err != nil {
			failed, d = err, s.verdicts[service]
		}
		if d != nil {
			verdicts[service] = d
		}
	}
	beats := make(map[string]*store.Beat, len(sc.heartbeats))
	for _, check := range sc.heartbeats {
		_, b, err := sc.st.Beats(ctx, check, noBeatSince)
		if err != nil {
			failed, b = err, s.beats[check]
		}
		if b != nil {
			beats[check] = b
		}
	}
	s.verdicts, s.beats = verdicts, beats
	if failed != nil && !s.failing && sc.log != nil {
		sc.log.Warn("metrics: reading the last verdicts and beats from the store failed; /metrics gives the values last read until it answers",
			"error", failed)
	}
	s.failing = failed != nil
}

// lastDecided is the service's newest decided deploy (nil: none yet). A registration
// decides the deploy verifying before it (superseded), so it is the newest deploy or the
// one before.
func lastDecided(ctx context.Context, st storedReader, service string) (*store.Deploy, error) {
	ds, err := st.ServiceDeploys(ctx, service, 2)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.Status != store.StatusVerifying {
			return d, nil
		}
	}
	return nil, nil
}

// storedScope is what the agent's storedSeries read at a scrape: the config in force.
func (a *Agent) storedScope() storedScope {
	rt := a.Runtime()
	sc := storedScope{st: a.store, log: a.log}
	for service := range rt.Config.Services {
		sc.services = append(sc.services, service)
	}
	for _, c := range rt.Order {
		if c.Kind == configs.KindHeartbeat {
			sc.heartbeats = append(sc.heartbeats, c.Name)
		}
	}
	return sc
}

func isState(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }
