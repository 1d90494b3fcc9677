package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/vigil-monitor/vigil/checks"
)

// The per-check records make the same series metric vectors made: the last run's gauges,
// a cumulative histogram, a counter per result seen, the skipped counter, an exemplar per
// bucket for runs with a trace; forget removes them all.
func TestCheckSeries(t *testing.T) {
	s := newCheckSeries()
	reg := wholeFamilies(s)
	t0 := time.Unix(1_800_000_000, 0)
	for _, r := range []*checks.Result{
		{Check: "home", Kind: "http", Location: "eu", Outcome: checks.Pass, Started: t0, Duration: 3 * time.Millisecond},
		{Check: "home", Kind: "http", Location: "eu", Outcome: checks.Fail, Started: t0.Add(time.Second), Duration: 40 * time.Millisecond, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{Check: "home", Kind: "http", Location: "eu", Outcome: checks.Pass, Started: t0.Add(2 * time.Second), Duration: 90 * time.Second},
	} {
		s.observe(r)
	}
	s.skip("home")
	s.skip("slow")
	want := `
# HELP probe_success Whether the check's last run passed (1) or not (0), as blackbox_exporter reports it.
# TYPE probe_success gauge
probe_success{check="home",kind="http",location="eu"} 1
# HELP vigil_check_duration_seconds Duration of check runs.
# TYPE vigil_check_duration_seconds histogram
vigil_check_duration_seconds_bucket{check="home",kind="http",le="0.005"} 1
vigil_check_duration_seconds_bucket{check="home",kind="http",le="0.01"} 1
vigil_check_duration_seconds_bucket{check="home",kind="http",le="0.025"} 1
vigil_check_duration_seconds_bucket{check="home",kind="http",le="0.05"} 2
vigil_check_duration_seconds_bucket{check="home",kind="http",le="0.1"} 2
vigil_check_duration_seconds_bucket{check="home",kind="http",le="0.25"} 2
vigil_check_duration_seconds_bucket{check="home",kind="http",le="0.5"} 2
vigil_check_duration_seconds_bucket{check="home",kind="http",le="1"} 2
vigil_check_duration_seconds_bucket{check="home",kind="http",le="2.5"} 2
vigil_check_duration_seconds_bucket{check="home",kind="http",le="5"} 2
vigil_check_duration_seconds_bucket{check="home",kind="http",le="10"} 2
vigil_check_duration_seconds_bucket{check="home",kind="http",le="30"} 2
vigil_check_duration_seconds_bucket{check="home",kind="http",le="60"} 2
vigil_check_duration_seconds_bucket{check="home",kind="http",le="+Inf"} 3
vigil_check_duration_seconds_sum{check="home",kind="http"} 90.043
vigil_check_duration_seconds_count{check="home",kind="http"} 3
# HELP vigil_check_runs_total Check runs by result (pass, fail, error, inconclusive).
# TYPE vigil_check_runs_total counter
vigil_check_runs_total{check="home",kind="http",result="fail"} 1
vigil_check_runs_total{check="home",kind="http",result="pass"} 2
# HELP vigil_scheduler_skipped_runs_total Scheduled runs skipped: the check's previous run was still going, or the time of the run had passed while the agent was starved of CPU.
# TYPE vigil_scheduler_skipped_runs_total counter
vigil_scheduler_skipped_runs_total{check="home"} 1
vigil_scheduler_skipped_runs_total{check="slow"} 1
`
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, mf := range mfs {
		switch mf.GetName() {
		case "probe_success", "vigil_check_duration_seconds", "vigil_check_runs_total", "vigil_scheduler_skipped_runs_total":
			if _, err := expfmt.MetricFamilyToText(&got, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	if strings.TrimSpace(got.String()) != strings.TrimSpace(want) {
		t.Errorf("scrape:\n%s\nwant:\n%s", got.String(), want)
	}
	var exemplars []string
	for _, mf := range mfs {
		if mf.GetName() == "vigil_check_duration_seconds" {
			for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
				if e := b.GetExemplar(); e != nil {
					exemplars = append(exemplars, fmt.Sprintf("%s@%g", e.GetLabel()[0].GetValue(), b.GetUpperBound()))
				}
			}
		}
	}
	if len(exemplars) != 1 || exemplars[0] != "4bf92f3577b34da6a3ce929d0e0e4736@0.05" {
		t.Errorf("exemplars: %v; want the traced run's in the 0.05 bucket", exemplars)
	}
	count := func() int {
		mfs, _ := reg.Gather()
		n := 0
		for _, mf := range mfs {
			n += len(mf.GetMetric())
		}
		return n
	}
	if n := count(); n != 8 { // 3 gauges, a histogram, 2 results, 2 skipped
		t.Errorf("%d series, want 8 (slow has no run, only a skip)", n)
	}
	s.forget("home")
	s.forget("slow")
	if n := count(); n != 0 {
		t.Errorf("%d series left after forget", n)
	}
}

// A scrape copies the records a part at a time: a run that ends while it is being sent
// does not change a part already made and is in the parts made after it; a check
// forgotten since has no series; each part's exemplars are its own checks'.
func TestCheckSeriesScrapedInParts(t *testing.T) {
	s := newCheckSeries()
	t0 := time.Unix(1_800_000_000, 0)
	for i, name := range []string{"a", "b", "c"} {
		s.observe(&checks.Result{Check: name, Kind: "http", Location: "eu", Outcome: checks.Pass, Started: t0,
			Duration: time.Duration(i+1) * time.Millisecond, TraceID: fmt.Sprintf("%032d", i+1)})
	}
	rows := s.Snapshot(false)
	first := rows.Family(famSuccess, 0, 2)
	hist := rows.Family(famHistogram, 0, 2)
	s.observe(&checks.Result{Check: "c", Kind: "http", Location: "eu", Outcome: checks.Fail, Started: t0, Duration: time.Millisecond})
	s.forget("a")
	if len(first.Metric) != 2 || first.Metric[1].GetGauge().GetValue() != 1 {
		t.Errorf("a part already made changed: %v", first.Metric)
	}
	if got := rows.Family(famSuccess, 2, 3); len(got.Metric) != 1 || got.Metric[0].GetGauge().GetValue() != 0 {
		t.Errorf("a part made after c failed: %v, want c at 0", got.Metric)
	}
	if got := rows.Family(famSuccess, 0, 2); len(got.Metric) != 1 || got.Metric[0].GetLabel()[0].GetValue() != "b" {
		t.Errorf("a part made after a was forgotten: %v, want b alone", got.Metric)
	}
	var traces []string
	for _, m := range hist.Metric {
		for _, b := range m.GetHistogram().GetBucket() {
			if e := b.GetExemplar(); e != nil {
				traces = append(traces, m.GetLabel()[0].GetValue()+":"+e.GetLabel()[0].GetValue())
			}
		}
	}
	if want := fmt.Sprintf("[a:%032d b:%032d]", 1, 2); fmt.Sprint(traces) != want {
		t.Errorf("exemplars %v, want %s", traces, want)
	}
}
