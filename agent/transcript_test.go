package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A scheduled run keeps its transcript only when it does not pass; a run asked for through
// the API keeps it whatever the outcome. The run page says why a passing run has none.
func TestScheduledTranscriptOnlyOnFailure(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1s, retries: 0, request: {url: %q}, assert: ["status == 200"]}
`, tg.srv.URL+"/"))
	runs := func() (pass, fail int, passWithTranscript, failWithout []int64) {
		recs, err := h.a.store.RecentRuns(t.Context(), "home", time.Now().Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			switch r.Outcome {
			case "pass":
				pass++
				if len(r.Transcript) > 0 {
					passWithTranscript = append(passWithTranscript, r.ID)
				}
			case "fail":
				fail++
				if len(r.Transcript) == 0 {
					failWithout = append(failWithout, r.ID)
				}
			}
		}
		return
	}
	eventually(t, 10*time.Second, "two passing scheduled runs stored", func() bool { p, _, _, _ := runs(); return p >= 2 })
	tg.set("broken")
	eventually(t, 10*time.Second, "two failing scheduled runs stored", func() bool { _, f, _, _ := runs(); return f >= 2 })
	_, _, pw, fw := runs()
	if len(pw) > 0 || len(fw) > 0 {
		t.Errorf("passing runs with a transcript: %v; failing runs without one: %v", pw, fw)
	}
	recs, _ := h.a.store.RecentRuns(t.Context(), "home", time.Now().Add(time.Hour), 100)
	var failing int64
	for _, r := range recs {
		if r.Outcome == "fail" {
			failing = r.ID
			if !strings.Contains(strings.Join(r.Transcript, "\n"), "< HTTP/1.1 500") {
				t.Errorf("failing run's transcript: %q", r.Transcript)
			}
			break
		}
	}
	tg.set("good")
	status, out := h.request("POST", "/api/v1/checks/home/run", "")
	if status != 200 || out["outcome"] != "pass" {
		t.Fatalf("manual run: %d %v", status, out)
	}
	if tr, _ := out["transcript"].([]any); len(tr) == 0 {
		t.Errorf("a run asked for passed with no transcript: %v", out)
	}
	// the run pages: the failing run shows its transcript; a passing scheduled one says why it has none
	eventually(t, 10*time.Second, "a passing scheduled run after the fix", func() bool {
		recs, _ := h.a.store.RecentRuns(t.Context(), "home", time.Now().Add(time.Hour), 1)
		return len(recs) == 1 && recs[0].Outcome == "pass" && len(recs[0].Transcript) == 0
	})
	recs, _ = h.a.store.RecentRuns(t.Context(), "home", time.Now().Add(time.Hour), 1)
	if page := h.page(fmt.Sprintf("/runs/%d", recs[0].ID)); !strings.Contains(page, `id="no-transcript"`) {
		t.Errorf("passing run's page does not say why it has no transcript:\n%s", page)
	}
	if page := h.page(fmt.Sprintf("/runs/%d", failing)); !strings.Contains(page, "<h2>Transcript</h2>") || strings.Contains(page, `id="no-transcript"`) {
		t.Errorf("failing run's page:\n%s", page)
	}
}
