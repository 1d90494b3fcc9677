package agent

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/configs"
)

// The log is a boundary too: a message, a string, an error, a group or a WithAttrs value
// that quotes a secret is masked.
func TestLogsAreRedacted(t *testing.T) {
	var buf bytes.Buffer
	red := configs.NewRedactor("planted-log-secret")
	log := slog.New(&redactHandler{next: slog.NewTextHandler(&buf, nil), red: func() *configs.Redactor { return red }})
	log.With("target", "http://u:planted-log-secret@h/").Info("calling planted-log-secret",
		"url", "http://h/x?access_token=abcdefgh", "error", errors.New("GET http://h/?sig=zzzzzz: EOF"),
		slog.Group("req", "body", `{"password":"hunter22"}`), "token", "short")
	out := buf.String()
	for _, s := range []string{"planted-log-secret", "abcdefgh", "zzzzzz", "hunter22", "short"} {
		if strings.Contains(out, s) {
			t.Errorf("the log holds %q:\n%s", s, out)
		}
	}
	if strings.Count(out, configs.Masked) < 6 {
		t.Errorf("expected six masks:\n%s", out)
	}
}

// A page handed over whole is the answer as it was, not a copy; once something was written,
// nothing is taken over and writes go on as before.
func TestBufferedWriterHandOver(t *testing.T) {
	page := []byte("<p>a page</p>")
	b := &bufferedWriter{}
	if !b.handOver(page) || &b.whole[0] != &page[0] || b.handOver([]byte("again")) {
		t.Fatal("the first page handed over is not taken whole, or a second one is taken too")
	}
	w := &bufferedWriter{}
	_, _ = w.Write([]byte("written "))
	if w.handOver(page) || w.whole != nil {
		t.Fatal("a page handed over after a write was taken")
	}
	_, _ = w.Write(page)
	if got := w.body.String(); got != "written <p>a page</p>" {
		t.Fatalf("body %q", got)
	}
}
