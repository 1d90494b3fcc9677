package agent

import (
	"fmt"
	"testing"

	"github.com/vigil-monitor/vigil/store"
)

// A cancelled deploy closes what its deploy_started opened: the Slack thread that said
// "verifying" gets a reply and its root says cancelled, with the reason; the deploy
// tracker's webhook gets deploy_cancelled once, under its Idempotency-Key; the rollback
// webhook is never called, and PagerDuty (a change event at the start, nothing paged) is
// sent nothing. A cancel sent again sends nothing again.
func TestACancelledDeployClosesWhatItsStartOpened(t *testing.T) {
	d := startDeploy(t, "v3")
	status, out := d.h.request("POST", "/api/v1/deploys/"+d.id+"/cancel", `{"reason":"Argo Rollouts aborted web"}`)
	if status != 200 || out["status"] != store.StatusCancelled {
		t.Fatalf("cancel: %d %v", status, out)
	}
	cancelled := closing{event: "deploy_cancelled", summary: "cancelled: Argo Rollouts aborted web",
		reply: "Cancelled: Argo Rollouts aborted web", root: []string{"*Status:* Cancelled: Argo Rollouts aborted web"},
		payload: func(p map[string]any) string {
			if fmt.Sprint(p["deploy"]) == "<nil>" {
				return "(no deploy)"
			}
			return ""
		}}
	d.closed(cancelled)

	// The cancel sent again decides nothing, so it writes and sends nothing more.
	if status, _ := d.h.request("POST", "/api/v1/deploys/"+d.id+"/cancel", ""); status != 200 {
		t.Fatalf("the cancel again: %d", status)
	}
	d.closedOnce(cancelled)
}
