package checks

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestPropagationReaderBehindAConnectionBalancer: in a rollout, the reader is a
// connection-level balancer (kube-proxy, a network load balancer) over an old pod (v1, which
// shows the marker at once) and a new one (v2, 200 ms behind). A kept-alive connection stays
// on the pod it was given, so polling over one connection asked v1 alone until the timeout:
// the new version's propagation was never measured (inconclusive). An answer from another
// version is left out and the next read goes out on a new connection, which the balancer
// gives to another pod.
func TestPropagationReaderBehindAConnectionBalancer(t *testing.T) {
	f := newFeed()
	w := serve(t, versioned("v2", f.writer(http.StatusCreated)))
	oldPod := serve(t, versioned("v1", f.replica(0)))
	newPod := serve(t, versioned("v2", f.replica(200*time.Millisecond)))
	lb := newL4Balancer(t, oldPod.URL, newPod.URL)
	c := buildOne(t, fmt.Sprintf(`
checks:
  - name: feed-propagation
    kind: propagation
    timeout: 3s
    poll: 50ms
    write: {url: "%s/api/items", body: '{"marker":"{{ .Nonce }}"}', headers: {Content-Type: application/json}}
    read: [{name: replicas, request: {url: "%s/api/items"}, match: {path: "items.#.marker"}}]
    served_version: {header: X-App-Version}
`, w.URL, lb.URL()))
	res := run(t, c, Input{Deploy: &Deploy{ID: "d1", Service: "feed", Version: "v2"}})
	wantOutcome(t, res, Pass)
	got := res.Vars["readers"].(map[string]float64)["replicas"]
	if got < 190 { // the lag counts from the commit, a little before the write's answer
		t.Fatalf("propagation to the new pod measured %.0fms; it is 200ms behind", got)
	}
	t.Logf("measured %.0fms over %d connections to the balancer", got, lb.Conns())
}
