package docs

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// tableName is a metric name in backticks in the first column of a METRICS.md table row.
var tableName = regexp.MustCompile("`([a-z_]+)`")

// Every metric the agent exports (the catalogue TestMetricCatalogue pins in the agent's
// golden file) has a row in METRICS.md, and every row names a metric the agent exports: a
// dashboard built from the reference finds what it reads.
func TestMetricsAreDocumented(t *testing.T) {
	catalogue, err := os.ReadFile("../agent/testdata/golden/metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(catalogue)), "\n") {
		exported[strings.Fields(line)[0]] = true
	}
	page, err := os.ReadFile("METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(page), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range tableName.FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
			if !exported[m[1]] {
				t.Errorf("METRICS.md documents %s, which the agent does not export", m[1])
			}
		}
	}
	for name := range exported {
		if !documented[name] {
			t.Errorf("%s is exported (agent/testdata/golden/metrics.txt) but has no row in METRICS.md", name)
		}
	}
	if len(exported) < 30 {
		t.Errorf("the catalogue has %d metrics: not the agent's", len(exported))
	}
}
