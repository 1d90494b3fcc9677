package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// A runner cancelling the job sends SIGTERM (the README: "Ctrl-C or SIGTERM stops it at
// once, printing what finished"); only Ctrl-C (SIGINT) was tested. Under --json the partial
// result is still one JSON document on stdout: what passed, what was cut, what never ran.
func TestRunTerminatedPrintsThePartialResultAsJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(20 * time.Second):
			case <-r.Context().Done():
			}
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	var body strings.Builder
	body.WriteString("checks:\n")
	fmt.Fprintf(&body, "  - {name: a-fast, kind: http, retries: 0, request: {url: %q}}\n", srv.URL+"/")
	for i := range 6 {
		fmt.Fprintf(&body, "  - {name: slow%d, kind: http, timeout: 30s, retries: 0, request: {url: %q}}\n", i, srv.URL+"/slow")
	}
	cfg := writeConfig(t, body.String())
	cmd := exec.Command(vigilBinary(t), "run", "-c", cfg, "--concurrency", "2", "--json")
	var stdout, stderr vigiltest.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	time.Sleep(1500 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("vigil run did not stop within 15s of SIGTERM:\n%s", stderr.String())
	}
	var doc struct {
		Summary struct {
			Total, Passed, Errors int
			NotRun                int `json:"not_run"`
		}
		Results []struct{ Check, Outcome string }
	}
	err := json.Unmarshal([]byte(stdout.String()), &doc)
	if code := cmd.ProcessState.ExitCode(); code != 1 || err != nil || doc.Summary.Total != 7 || doc.Summary.Passed != 1 || doc.Summary.NotRun < 3 ||
		!strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("exit %d (want 1), summary %+v (%v), stderr %q", code, doc.Summary, err, stderr.String())
	}
}
