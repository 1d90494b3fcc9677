package docs

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tableName is a metric name in backticks in the first column of a METRICS.md table row.
var tableName = regexp.MustCompile("`([a-z_]+)`")

// Every metric the agent exports (the catalogue TestMetricCatalogue pins in the agent's
// golden file) has a row in METRICS.md, and every row there and in KINDS.md's metrics table
// names a metric the agent exports, with its type and labels: a dashboard or alert rule
// built from the reference finds what it reads.
func TestMetricsAreDocumented(t *testing.T) {
	catalogue, err := os.ReadFile("../agent/testdata/golden/metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]string{} // name: "type {labels}", as the catalogue has them
	for _, line := range strings.Split(strings.TrimSpace(string(catalogue)), "\n") {
		f := strings.Fields(line)
		labels := strings.Split(strings.Trim(f[2], "{}"), ",")
		slices.Sort(labels)
		exported[f[0]] = f[1] + " {" + strings.Join(labels, ",") + "}"
	}
	documented := map[string]bool{}
	// METRICS.md's table, and KINDS.md's of the kinds' own: metric, type, labels, ...
	for _, file := range []string{"METRICS.md", "KINDS.md"} {
		page, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(page)
		if file == "KINDS.md" {
			_, text, _ = strings.Cut(text, "\n## Metrics\n")
		}
		for _, line := range strings.Split(text, "\n") {
			if !strings.HasPrefix(line, "| `") {
				continue
			}
			cols := strings.Split(line, "|")
			var labels []string
			for _, l := range strings.Split(cols[3], ",") {
				if l = strings.TrimSpace(l); l != "" {
					labels = append(labels, l)
				}
			}
			slices.Sort(labels)
			row := strings.TrimSpace(cols[2]) + " {" + strings.Join(labels, ",") + "}"
			for _, m := range tableName.FindAllStringSubmatch(cols[1], -1) {
				documented[m[1]] = true
				switch want, ok := exported[m[1]]; {
				case !ok:
					t.Errorf("%s documents %s, which the agent does not export", file, m[1])
				case row != want:
					t.Errorf("%s documents %s as %s; the agent exports it as %s", file, m[1], row, want)
				}
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
