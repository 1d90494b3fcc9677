package promtest

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// InGatherOrder fails t unless c sends each metric family's series in the order a
// registry sorts them into when it gathers (by label values, labels taken in the order of
// their names): a collector that does is passed through by that sort in linear time.
func InGatherOrder(t testing.TB, c prometheus.Collector) {
	t.Helper()
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	last := map[*prometheus.Desc][]string{}
	n := 0
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatalf("writing %s: %v", m.Desc(), err)
		}
		values := make([]string, len(d.Label))
		for i, l := range d.Label {
			values[i] = l.GetValue()
		}
		if prev, ok := last[m.Desc()]; ok && compareValues(prev, values) > 0 {
			t.Errorf("%s: series %q sent after %q; a registry sorts it before", m.Desc(), values, prev)
		}
		last[m.Desc()] = values
		n++
	}
	if n == 0 {
		t.Fatal("the collector sent no series")
	}
}

func compareValues(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}
