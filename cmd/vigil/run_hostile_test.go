package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A service's answer is quoted in `vigil run`'s reasons and, with -v, its transcript, which
// a CI runner shows and reads: a body with terminal escapes, a carriage return, a NUL and
// a line that starts "::error::" was printed raw, so it could clear or recolour the log,
// overwrite a line, and forge one the runner acts on. They are printed as Go escapes.
func TestRunPrintsAHostileAnswerInert(t *testing.T) {
	hostile := "\x1b[2J\x1b[31mall good\x07\rPASS\x00\n::error::forged by the service\u202e"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, hostile)
	}))
	t.Cleanup(srv.Close)
	cfg := writeConfig(t, fmt.Sprintf(`
checks:
  - {name: hostile, kind: http, request: {url: "%s/"}, assert: ["status == 200", 'body contains "ok"']}
`, srv.URL))
	code, out, errOut := run("run", "-c", cfg, "-v")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, bad := range []string{"\x1b", "\x07", "\r", "\x00", "\n::error::", "\u202e"} {
		if strings.Contains(out, bad) || strings.Contains(errOut, bad) {
			t.Errorf("%q printed raw:\n%q", bad, out)
		}
	}
	if !strings.Contains(out, `\x1b[2J\x1b[31mall good`) || !strings.Contains(out, "| ") {
		t.Errorf("the answer is not in the transcript, escaped:\n%s", out)
	}
}
