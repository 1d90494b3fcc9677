package checks

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exclude leaves out lines the patterns match that are not the fault's. In an access
// log, `" 5\d\d "` matches vigil's own probe of /error as much as a user's failed order:
// a failing probe was counted twice (by its own check and here), and a known noisy line
// could not be left out (RE2 has no look-ahead).
func TestLogscanExclude(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "access.log")
	appendLog(t, log, "boot")
	extra := `    exclude: ['"vigil/[^"]*"$', '"GET /healthz ']
    samples: 10`
	c := buildOne(t, strings.Replace(logscanYAML(fmt.Sprintf("{file: %q}", log), extra),
		`pattern: "Possible connection leak detected"`, `pattern: '" 5\d\d '`, 1))
	wantOutcome(t, run(t, c, Input{}), Pass) // the checkpoint: what follows is new

	appendLog(t, log,
		`10.0.0.7 - - [07/Dec/2026:10:00:01 +0000] "POST /api/orders HTTP/1.1" 502 17 "-" "Mozilla/5.0"`,
		`127.0.0.1 - - [07/Dec/2026:10:00:02 +0000] "GET /error HTTP/1.1" 500 9 "-" "vigil/1.4 (synthetic probe)"`,
		`10.0.0.9 - - [07/Dec/2026:10:00:03 +0000] "GET /healthz HTTP/1.1" 503 2 "-" "kube-probe/1.31"`,
		`10.0.0.8 - - [07/Dec/2026:10:00:04 +0000] "GET /api/cart HTTP/1.1" 200 120 "-" "Mozilla/5.0"`,
		// Longer than a piece (64 KiB): the status in the first piece, the user agent in
		// the last; the whole line is left out.
		`127.0.0.1 - - [07/Dec/2026:10:00:05 +0000] "GET /search?q=`+strings.Repeat("x", logLineMax+100)+` HTTP/1.1" 500 9 "-" "vigil/1.4 (synthetic probe)"`,
		`10.0.0.7 - - [07/Dec/2026:10:00:06 +0000] "POST /api/orders HTTP/1.1" 500 17 "-" "Mozilla/5.0"`)
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 2 ")
	for _, s := range res.Vars["samples"].([]string) {
		if !strings.Contains(s, "/api/orders") {
			t.Fatalf("an excluded line is a sample: %q", s)
		}
	}
	if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, "3 lines read matched a pattern and an exclude pattern: not counted") {
		t.Fatalf("the transcript does not say what exclude left out:\n%s", tr)
	}
	// Nothing new: the window still holds the two, and the excluded lines stay out.
	wantOutcome(t, run(t, c, Input{}), Fail, "matches = 2 ")
}

// For a url source the exclude patterns go into the query as a negative line filter and
// are applied again to the lines Loki answers: this loopback Loki applies |~ only.
func TestLogscanLokiExclude(t *testing.T) {
	loki := &lokiServer{}
	srv := serve(t, loki)
	deploy := time.Now().Add(-time.Minute)
	web := map[string]string{"app": "web"}
	for i := range 3 {
		at := deploy.Add(time.Duration(i+1) * time.Second)
		loki.push(web, at, `level=error msg="GET /error answered 500" user_agent="vigil/1.4"`)
		loki.push(web, at, `level=error msg="POST /api/orders answered 500" user_agent="Mozilla/5.0"`)
	}
	c := buildOne(t, strings.Replace(logscanYAML(fmt.Sprintf(`{url: %q, query: '{app="web"}'}`, srv.URL), "    exclude: ['user_agent=\"vigil/']"),
		`pattern: "Possible connection leak detected"`, `pattern: 'answered 5\d\d'`, 1))
	res := run(t, c, Input{Since: deploy})
	wantOutcome(t, res, Fail, "matches = 3 ", "/api/orders")
	q := loki.seen()
	if got, want := q[len(q)-1].Get("query"), "{app=\"web\"} |~ `(?:answered 5\\d\\d)` !~ `(?:user_agent=\"vigil/)`"; got != want {
		t.Fatalf("query sent: %s\nwant:       %s", got, want)
	}
	if tr := strings.Join(res.Transcript, "\n"); !strings.Contains(tr, "3 lines read matched a pattern and an exclude pattern: not counted") {
		t.Fatalf("the transcript does not say what exclude left out:\n%s", tr)
	}
}
