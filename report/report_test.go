package report

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/internal/golden"
)

func sampleResults() []*checks.Result {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	return []*checks.Result{
		{Check: "health", Kind: "http", Outcome: checks.Pass, Started: t0, Duration: 3200 * time.Microsecond, Attempts: 1},
		{Check: "checkout", Kind: "script", Outcome: checks.Fail, Started: t0, Duration: 446 * time.Microsecond, Attempts: 1,
			Reasons:    []string{"step 2 (read cart back): status == 200 is false: status = 404 (variables: cart=43)"},
			Transcript: []string{"> POST http://shop.example/api/cart", "< HTTP/1.1 201 Created", "> GET http://shop.example/api/cart/43", "< HTTP/1.1 404 Not Found"}},
		{Check: "home", Kind: "browser", Outcome: checks.Fail, Started: t0, Duration: 1234 * time.Millisecond, Attempts: 1,
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
			Reasons: []string{"js_errors == 0 is false: js_errors = 1 (TypeError: e is not a function at https://shop.example/app.min.js:1:142)"},
			Artifacts: []*checks.Artifact{{Name: "screenshot.png", ContentType: "image/png", Path: "evidence/home-screenshot.png"},
				{Name: "errors.txt", ContentType: "text/plain", Path: "evidence/home-errors.txt"}}},
		{Check: "pool", Kind: "promql", Outcome: checks.Inconclusive, Started: t0, Duration: 12 * time.Millisecond, Attempts: 1,
			Reasons: []string{"query max(pool_active_connections) returned no series: no data to judge"}},
		{Check: "api", Kind: "http", Outcome: checks.Error, Started: t0, Duration: 2 * time.Second, Attempts: 2,
			Reasons: []string{"GET http://api.example/: timed out: no complete answer within 2s"}},
	}
}

// What `vigil run` prints, line by line (not on a terminal), and its summary; JUnit and
// --json too: the formats pipelines read are pinned by golden files.
func TestOutputsGolden(t *testing.T) {
	t.Parallel()
	results := sampleResults()
	sum := Summarize(results, 3*time.Second)
	var out bytes.Buffer
	p := NewPrinter(&out, false, true, len(results))
	for _, r := range results {
		c := &checks.Check{Name: r.Check, Kind: r.Kind}
		p.Start(c)
		p.Done(c, r)
	}
	p.Finish()
	out.WriteString(sum.String() + "\n")
	golden.Assert(t, "run.txt", out.Bytes())

	var junit bytes.Buffer
	traceURL := func(id string) string { return "https://jaeger.example/trace/" + id }
	if err := WriteJUnit(&junit, results, sum, time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), traceURL); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	junitBytes := bytes.ReplaceAll(junit.Bytes(), []byte(`hostname="`+host+`"`), []byte(`hostname="HOST"`))
	golden.Assert(t, "junit.xml", junitBytes)

	var js bytes.Buffer
	if err := WriteJSON(&js, results, sum); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "run.json", js.Bytes())
}
