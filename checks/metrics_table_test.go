package checks

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/internal/promtest"
)

func testTable() (*gaugeTable, int, []int) {
	t := &gaugeTable{}
	single := t.column(gaugeDesc("test_single", "A gauge.", ""), "")
	phase := gaugeDesc("test_phase_seconds", "A gauge with a column per phase.", "phase")
	var phases []int
	for _, p := range []string{"resolve", "connect", "tls", "processing", "transfer"} { // not in order
		phases = append(phases, t.column(phase, p))
	}
	return t, single, phases
}

// A scrape sends the rows by check name and a gauge's columns by their label, the order a
// registry sorts them into, whatever order checks ran in.
func TestGaugeTableGatherOrder(t *testing.T) {
	table, single, phases := testTable()
	for _, name := range []string{"c10", "c9", "c1", "b", "c2", "a-very-long-name", "c100"} {
		table.update(name, "eu", func(r *gaugeRow) {
			r.put(single, 1)
			for i, p := range phases {
				r.put(p, float64(i))
			}
		})
	}
	promtest.InGatherOrder(t, table)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(table)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.Metric)
	}
	if got["test_single"] != 7 || got["test_phase_seconds"] != 35 {
		t.Errorf("series per family: %v, want 7 and 35", got)
	}
}

// A run that ends while a scrape is sending is not held up by it.
func TestGaugeTableUpdateDuringScrape(t *testing.T) {
	table, single, _ := testTable()
	for i := range 3 {
		table.update(fmt.Sprint("c", i), "eu", func(r *gaugeRow) { r.put(single, 1) })
	}
	ch := make(chan prometheus.Metric)
	go func() {
		table.Collect(ch)
		close(ch)
	}()
	<-ch // the scrape is now waiting to send its second series
	updated := make(chan struct{})
	go func() {
		table.update("c0", "eu", func(r *gaugeRow) { r.put(single, 2) })
		close(updated)
	}()
	select {
	case <-updated:
	case <-time.After(time.Minute): // a deadlock, not a slow machine
		t.Fatal("an update waited for a scrape to finish sending")
	}
	for range ch {
	}
}
