package agent

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/pgtest"
	"github.com/vigil-monitor/vigil/store"
)

// A cancel of the deploy verifying and the registration of a newer one at the same instant
// (Argo Rollouts aborts v_n as the pipeline pushes v_n+1), over and over, on SQLite and on
// PostgreSQL: each deploy ends cancelled or superseded, never both, the tracker that heard
// it start hears exactly one of deploy_cancelled and deploy_superseded, once, and the
// timeline records exactly one ending. The cancel answers 200 when it won and 409 with the
// supersede when it lost.
func TestACancelAndASupersedeAtOnceEndTheDeployOnce(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			tg := newTarget(t)
			tracker := loopback.NewWebhook(t)
			yaml := webConfig{url: tg.srv.URL, verify: "initial_delay: 1m, interval: 1s, count: 2", service: "on_failure: [tracker]",
				top: "notifiers:" + webhookNotifier("tracker", "", tracker)}.String()
			var h *harness
			if driver == "sqlite" {
				h = startAgent(t, "", yaml)
			} else {
				dsn := pgtest.Start(t, pgtest.Options{}).Database(t)
				h = startAgentWith(t, t.TempDir(), yaml+fmt.Sprintf("\nstore: {driver: postgres, dsn: %q}\n", dsn),
					Options{Store: openPostgres(t, dsn)})
			}

			const rounds = 12
			ids := []string{h.deploy("web", "v0")}
			answers := make([]int, rounds)
			for i := range rounds {
				prev := ids[len(ids)-1]
				h.outboxSettled(prev+":deploy_started", map[string]string{"tracker": store.OutboxDelivered})
				var wg sync.WaitGroup
				var next string
				wg.Go(func() {
					// The registration reads the baseline before it supersedes: the cancel
					// goes a little later now and then, so that either may win.
					time.Sleep(time.Duration(i%6) * 3 * time.Millisecond)
					answers[i], _ = h.request("POST", "/api/v1/deploys/"+prev+"/cancel", `{"reason":"aborted"}`)
				})
				wg.Go(func() { next = h.deploy("web", fmt.Sprint("v", i+1)) })
				wg.Wait()
				ids = append(ids, next)
			}
			ways := map[string]int{}
			for i, id := range ids[:rounds] {
				d, err := h.a.store.Deploy(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				ways[d.Status]++
				cancelled, superseded := id+":deploy_cancelled", id+":deploy_superseded"
				switch d.Status {
				case store.StatusCancelled:
					h.outboxSettled(cancelled, map[string]string{"tracker": store.OutboxDelivered})
					h.outboxSettled(superseded, nil)
					if answers[i] != 200 {
						t.Errorf("%s was cancelled and the cancel answered %d; want 200", id, answers[i])
					}
				case store.StatusSuperseded:
					h.outboxSettled(superseded, map[string]string{"tracker": store.OutboxDelivered})
					h.outboxSettled(cancelled, nil)
					if answers[i] != 409 {
						t.Errorf("%s was superseded and the cancel answered %d; want 409", id, answers[i])
					}
				default:
					t.Errorf("%s is %s; want cancelled or superseded", id, d.Status)
				}
				if n, m := tracker.Count(cancelled), tracker.Count(superseded); n+m != 1 {
					t.Errorf("%s (%s): the tracker got deploy_cancelled %d times and deploy_superseded %d times; want one of them, once", id, d.Status, n, m)
				}
				evs, err := h.a.store.DeployEvents(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				endings := 0
				for _, e := range evs {
					if e.Kind == "deploy_cancelled" || e.Kind == "deploy_superseded" {
						endings++
					}
				}
				if endings != 1 {
					t.Errorf("%s (%s): %d endings on the timeline; want one", id, d.Status, endings)
				}
			}
			t.Logf("%d deploys: %v", rounds, ways)
		})
	}
}
