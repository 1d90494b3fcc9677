package agent

import (
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/store"
)

// A deploy superseded while it verifies (a newer deploy of its service registered: a
// pipeline's retry, the next release) is on the timeline as a cancelled one is: a
// deploy_superseded event on its own page and the status page, naming the deploy that
// superseded it, once.
func TestASupersededDeployIsOnTheTimeline(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "initial_delay: 1m, interval: 1s, count: 2"}.String())
	v2 := h.deploy("web", "v2")
	v3 := h.deploy("web", "v3")
	h.deploy("web", "v4") // supersedes v3; v2 is decided already and gets no second event

	events, err := h.a.store.DeployEvents(t.Context(), v2)
	if err != nil {
		t.Fatal(err)
	}
	var superseded []*store.Event
	for _, e := range events {
		if e.Kind == "deploy_"+store.StatusSuperseded {
			superseded = append(superseded, e)
		}
	}
	want := "web v2: superseded by web v3 (deploy " + v3 + ")"
	if len(superseded) != 1 || superseded[0].Summary != want || superseded[0].Service != "web" {
		t.Fatalf("v2's events %v; want one deploy_superseded saying %q", describeEvents(events), want)
	}
	deployPage := h.page("/deploys/" + v2)
	for _, w := range []string{"deploy of web superseded</strong>", want} {
		if !strings.Contains(deployPage, w) {
			t.Errorf("v2's page lacks %q", w)
		}
	}
	index := h.page("/")
	if n := strings.Count(index, "deploy of web superseded</strong>"); n != 2 {
		t.Errorf("the status page's timeline shows %d supersedes; want 2 (v2 by v3, v3 by v4)", n)
	}
	if !strings.Contains(index, want) {
		t.Errorf("the status page's timeline does not say %q", want)
	}
}

func describeEvents(events []*store.Event) string {
	var out []string
	for _, e := range events {
		out = append(out, e.Kind+": "+e.Summary)
	}
	return "[" + strings.Join(out, "; ") + "]"
}
