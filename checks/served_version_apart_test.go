package checks

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A pipeline registers the deploy from its git tag, v1.4.0; the binary says 1.4.0, or
// 1.4.0+g3f2a1c with its commit as build metadata. Every kind that reads served_version
// takes them for one version (sameVersion, as the fleet does): before, each compared the
// strings, and a good deploy's every answer was "another version", inconclusive (or
// "not ready" under ready_within). Build metadata on both sides that differs, a
// pre-release and another version are still another version.
func TestServedVersionWrittenApart(t *testing.T) {
	deployOf := func(v string) Input {
		return Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: v, StartedAt: time.Now()}}
	}
	tagged := deployOf("v1.4.0")
	transcript := func(res *Result) string { return strings.Join(res.Transcript, "\n") }
	const apart = "the deploy's v1.4.0, written apart"

	t.Run("http", func(t *testing.T) {
		var mu sync.Mutex
		version := ""
		answer := func(v string) { mu.Lock(); defer mu.Unlock(); version = v }
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			w.Header().Set("X-App-Version", version)
			fmt.Fprintf(w, `{"build": {"version": %q}}`, version)
		}))
		for _, served := range []string{"{header: X-App-Version}", "{field: build.version}"} {
			c := buildOne(t, fmt.Sprintf("checks: [{name: home, kind: http, request: {url: %q}, served_version: %s}]", srv.URL+"/", served))
			answer("1.4.0+g3f2a1c")
			res := run(t, c, tagged)
			wantOutcome(t, res, Pass)
			if tr := transcript(res); !strings.Contains(tr, "served version: 1.4.0+g3f2a1c (") || !strings.Contains(tr, "), "+apart) {
				t.Errorf("%s: the transcript does not say the versions were written apart:\n%s", served, tr)
			}
			answer("1.4.0")
			wantOutcome(t, run(t, c, tagged), Pass)
			answer("v1.4.0")
			if res := run(t, c, tagged); res.Outcome != Pass || strings.Contains(transcript(res), "written apart") {
				t.Errorf("%s: written alike: %s %q\n%s", served, res.Outcome, res.Reasons, transcript(res))
			}
			for _, tc := range []struct{ served, deployed string }{
				{"1.4.0-rc.1", "v1.4.0"},           // a pre-release
				{"1.4.1+g3f2a1c", "v1.4.0"},        // another version, same commit named
				{"1.4.0+bbb", "1.4.0+aaa"},         // two builds
				{"1.3.9+g3f2a1c", "1.4.0+g3f2a1c"}, // build metadata alike, versions not
			} {
				answer(tc.served)
				wantOutcome(t, run(t, c, deployOf(tc.deployed)), Inconclusive,
					fmt.Sprintf("answered by version %s, not %s (the deploy's)", tc.served, tc.deployed))
			}
		}
	})

	t.Run("script", func(t *testing.T) {
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-App-Version", map[string]string{"/login": "1.4.0", "/cart": "1.4.0+g3f2a1c"}[r.URL.Path])
			fmt.Fprint(w, "{}")
		}))
		c := buildOne(t, fmt.Sprintf(`
checks:
  - name: journey
    kind: script
    served_version: {header: X-App-Version}
    steps:
      - {name: login, request: {url: %q}}
      - {name: cart, request: {url: %q}}
`, srv.URL+"/login", srv.URL+"/cart"))
		res := run(t, c, tagged)
		wantOutcome(t, res, Pass)
		if tr := transcript(res); !strings.Contains(tr, "served version: 1.4.0+g3f2a1c (header X-App-Version), "+apart) {
			t.Errorf("transcript:\n%s", tr)
		}
		wantOutcome(t, run(t, c, deployOf("v1.4.1")), Inconclusive, "step 1 (login): answered by version 1.4.0, not v1.4.1")
	})

	t.Run("browser", func(t *testing.T) {
		c := buildBrowserCheck(t, sitePage(t, "1.4.0+g3f2a1c", "", false)+"/", "    served_version: {header: X-App-Version}\n")
		res := run(t, c, tagged)
		wantOutcome(t, res, Pass)
		if tr := transcript(res); !strings.Contains(tr, "served version: 1.4.0+g3f2a1c (the page's header X-App-Version), "+apart) {
			t.Errorf("transcript:\n%s", tr)
		}
		wantOutcome(t, run(t, c, deployOf("1.4.0+bbb")), Inconclusive, "answered by version 1.4.0+g3f2a1c, not 1.4.0+bbb")
	})

	t.Run("sla", func(t *testing.T) {
		var mu sync.Mutex
		n := 0
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			n++
			newPod := n%2 == 0
			mu.Unlock()
			if newPod { // half the pods run the deploy's build, and it fails
				w.Header().Set("X-App-Version", "1.4.0+g3f2a1c")
				http.Error(w, "broken", http.StatusInternalServerError)
				return
			}
			w.Header().Set("X-App-Version", "1.3.9+a1b2c3d")
			fmt.Fprint(w, "ok")
		}))
		c := buildOne(t, fmt.Sprintf(`
checks:
  - name: burst
    kind: sla
    request: {url: %q}
    requests: 20
    concurrency: 2
    served_version: {header: X-App-Version}
    assert: ["error_rate < 0.5"]
`, srv.URL+"/"))
		res := run(t, c, tagged)
		wantOutcome(t, res, Fail, "error_rate = 1 (10 of 10 failed")
		if res.Vars["requests"] != 10 {
			t.Errorf("requests = %v, want the deploy's build's 10", res.Vars["requests"])
		}
		if tr := transcript(res); !strings.Contains(tr, "served version: 10 answers named 1.4.0+g3f2a1c, "+apart+": counted as the deploy's") ||
			!strings.Contains(tr, "10 answers from another version than v1.4.0 (such as 1.3.9+a1b2c3d) left out") {
			t.Errorf("transcript:\n%s", tr)
		}
	})

	t.Run("propagation", func(t *testing.T) {
		const lag = 600 * time.Millisecond
		f := newFeed()
		write := serve(t, versioned("1.4.0+g3f2a1c", f.writer(http.StatusCreated)))
		newNow := serve(t, versioned("1.4.0", f.replica(0)))
		rollingOut := serve(t, rolling(versioned("1.3.9", f.replica(0)), versioned("1.4.0+g3f2a1c", f.replica(lag))))
		c := buildOne(t, propagationYAML(write.URL, newNow.URL, rollingOut.URL,
			"    poll: 20ms\n    backoff: {factor: 1, max: 20ms}\n    served_version: {header: X-App-Version}\n"))
		res := run(t, c, tagged)
		wantOutcome(t, res, Pass)
		if got := time.Duration(res.Vars["readers"].(map[string]float64)["b"] * float64(time.Millisecond)); got < lag-150*time.Millisecond {
			t.Errorf("reader b measured %s: the old pods' answer, not the deploy's build's lag of %s", got, lag)
		}
		tr := transcript(res)
		for _, want := range []string{
			"served version: 1.4.0+g3f2a1c (header X-App-Version), " + apart,
			"answered by version 1.4.0+g3f2a1c, " + apart + "; ",
			"answers from another version (such as 1.3.9) left out",
		} {
			if !strings.Contains(tr, want) {
				t.Errorf("transcript lacks %q:\n%s", want, tr)
			}
		}
	})

	t.Run("heartbeat", func(t *testing.T) {
		clock := &fakeClock{now: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)}
		book := NewHeartbeats(clock.Now, nil)
		c := heartbeatCheck(t, book)
		deploy := &Deploy{ID: "d1", Service: "jobs", Version: "v1.4.0", StartedAt: clock.Now()}
		clock.Advance(time.Minute)
		book.Record(t.Context(), "nightly", Beat{Version: "1.4.0-rc.1"})
		wantOutcome(t, run(t, c, Input{Deploy: deploy}), Inconclusive, "no beat from version v1.4.0 yet")
		book.Record(t.Context(), "nightly", Beat{Version: "1.4.0+g3f2a1c"})
		res := run(t, c, Input{Deploy: deploy})
		wantOutcome(t, res, Pass)
		if res.Vars["deploy_version_beats"] != 1 || !strings.Contains(transcript(res), "beats from version 1.4.0+g3f2a1c, "+apart+", counted as the deploy's") {
			t.Errorf("deploy_version_beats = %v; transcript:\n%s", res.Vars["deploy_version_beats"], transcript(res))
		}
	})
}
