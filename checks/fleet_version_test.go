package checks

import (
	"net/http"
	"strings"
	"testing"
)

// TestFleetVersionWrittenApart: a deploy is registered with the version its pipeline
// knows, its git tag (v1.4.0), and the binary says its own, 1.4.0+g3f2a1c, with the
// commit as semver build metadata (`git describe`, goreleaser, Go's build info). They name
// one version. Before, the fleet compared them as strings, and:
//   - a config change rolled out as an in-place restart of 1.4.0+g3f2a1c (deploy v1.4.0)
//     failed and halted: each instance came back on the version it ran before, "not
//     upgraded: it went down during the deploy";
//   - a new version that crashed after its upgrade was blamed on old-version peers
//     (old_version_unhealthy, halt), not on itself;
//   - seed 004's halt said "(0 instances run it)" of the version that was running.
//
// Two builds that both carry metadata and differ are two versions (TestSameVersion).
func TestFleetVersionWrittenApart(t *testing.T) {
	up := func(*fleetNode) (int, string) { return http.StatusOK, "" }
	asserts := `["unhealthy == 0", "regressed == 0", "old_version_unhealthy == 0"]`

	t.Run("in-place restart of the same build", func(t *testing.T) {
		a, b := newFleetNode(t, "1.4.0+g3f2a1c", up).pin(), newFleetNode(t, "1.4.0+g3f2a1c", up)
		c := buildOne(t, staticFleetYAML(asserts, a, b))
		baseline := c.Baseline(baselineRuns(t, c, 2), 5)
		restartInPlace(t, a, "1.4.0+g3f2a1c", up)
		res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v1.4.0"}, Baseline: baseline})
		wantOutcome(t, res, Pass)
		if res.Halt != "" {
			t.Fatalf("halted a rolling restart: %q", res.Halt)
		}
	})

	t.Run("upgraded in place, then crashed", func(t *testing.T) {
		a, b := newFleetNode(t, "1.3.0+e41d0b2", up).pin(), newFleetNode(t, "1.3.0+e41d0b2", up)
		c := buildOne(t, staticFleetYAML(asserts, a, b))
		baseline := c.Baseline(baselineRuns(t, c, 2), 5)
		dies := &countingHealth{at: func(k int) (int, string) {
			if k == 2 {
				a.crash()
			}
			return http.StatusServiceUnavailable, "warming up"
		}}
		restartInPlace(t, a, "1.4.0+g3f2a1c", dies.health)
		res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v1.4.0"}, Baseline: baseline})
		wantOutcome(t, res, Fail, "unhealthy = 1 ("+a.URL()+" (", "on 1.4.0+g3f2a1c when it last answered")
		if res.Vars["old_version_unhealthy"] != 0 || res.Halt != "" {
			t.Fatalf("old_version_unhealthy = %v, halt %q: a ran the deploy's version when it failed", res.Vars["old_version_unhealthy"], res.Halt)
		}
		if dies.count() < 2 {
			t.Fatalf("a answered %d requests on the new version; the test needs it to answer before it crashes", dies.count())
		}
	})

	t.Run("seed 004 counts the new version's instances", func(t *testing.T) {
		reg := &fleetRegistry{}
		health := func(n *fleetNode) (int, string) {
			if strings.HasPrefix(n.Version(), "1.3.0") {
				for _, peer := range reg.list() {
					if strings.HasPrefix(peer.Version(), "1.4.0") {
						return 0, ""
					}
				}
			}
			return http.StatusOK, ""
		}
		nodes := []*fleetNode{newFleetNode(t, "1.3.0", health), newFleetNode(t, "1.3.0", health), newFleetNode(t, "1.3.0", health)}
		reg.add(nodes...)
		c := buildOne(t, fleetYAML(serve(t, reg).URL, asserts))
		baseline := c.Baseline(baselineRuns(t, c, 2), 5)
		nodes[0].setVersion("1.4.0+g3f2a1c")
		res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "web", Version: "v1.4.0"}, Baseline: baseline})
		wantOutcome(t, res, Fail, "old_version_unhealthy = 2 ")
		if !strings.Contains(res.Halt, "2 instances on older versions failed once v1.4.0 appeared (1 instances run it)") {
			t.Fatalf("halt reason: %q", res.Halt)
		}
		if strings.Contains(res.Halt, nodes[0].URL()) {
			t.Fatalf("halt names the instance that runs the deploy's version: %q", res.Halt)
		}
	})
}

func TestSameVersion(t *testing.T) {
	for _, c := range []struct {
		reported, deployed string
		same               bool
	}{
		{"1.4.0", "1.4.0", true},
		{"1.4.0", "v1.4.0", true},
		{"V1.4.0", "1.4.0", true},
		{"1.4.0+g3f2a1c", "1.4.0", true},
		{"1.4.0+g3f2a1c", "v1.4.0", true},
		{"1.4.0", "v1.4.0+build.7", true},
		{"1.4.0+g3f2a1c", "1.4.0+g3f2a1c", true},
		{"1.4.0+aaa", "1.4.0+bbb", false}, // two builds of one version: a rebuild is a deploy
		{"1.4.0", "1.4.1", false},
		{"1.4.0-rc.1", "1.4.0", false}, // a pre-release is another version
		{"1.4.0-rc.1+abc", "v1.4.0-rc.1", true},
		{"v", "", false},
		{"+abc", "+def", false},
		{"+abc", "", false},
		{"vnext", "next", false}, // a v not before a digit is part of the name
		{"main-3f2a1c", "main-3f2a1c", true},
	} {
		if got := sameVersion(c.reported, c.deployed); got != c.same {
			t.Errorf("sameVersion(%q, %q) = %v, want %v", c.reported, c.deployed, got, c.same)
		}
	}
}
