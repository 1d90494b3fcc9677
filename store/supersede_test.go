package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// supersededEntry is what the agent writes for a superseded deploy, as a Superseder gives it.
func supersededEntry(old *Deploy) []*OutboxEntry {
	return []*OutboxEntry{{Notifier: "slack", Event: "deploy_superseded", Key: old.ID + ":deploy_superseded", Incident: old.ID,
		Payload: []byte(`{"superseded_by":"` + old.SupersededBy + `"}`), CreatedAt: old.DecidedAt}}
}

// A registration that supersedes the deploy verifying writes, in its transaction, what the
// Superseder gives for it, told the deploy as it stands after (superseded, by whom); a
// registration that supersedes nothing, or one sent again under its key, calls it not.
func TestASupersedeWritesWhatItsSupersederGives(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		var told []*Deploy
		tell := func(old *Deploy) []*OutboxEntry {
			told = append(told, old)
			return supersededEntry(old)
		}
		web := func(id string, at time.Duration) *Deploy {
			return &Deploy{ID: id, Service: "web", Version: id, CreatedAt: t0.Add(at), Status: StatusVerifying, RequestKey: "key-" + id}
		}
		if sup, err := s.CreateDeploy(ctx, web("d1", 0), tell); err != nil || len(sup) != 0 || len(told) != 0 {
			t.Fatalf("the first deploy: superseded %v, told %d, %v; want nothing", sup, len(told), err)
		}
		sup, err := s.CreateDeploy(ctx, web("d2", time.Minute), tell)
		if err != nil || len(sup) != 1 || sup[0] != "d1" {
			t.Fatalf("d2 superseded %v (%v); want d1", sup, err)
		}
		if len(told) != 1 || told[0].ID != "d1" || told[0].Status != StatusSuperseded || told[0].SupersededBy != "d2" ||
			told[0].Version != "d1" || !told[0].DecidedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("the Superseder was told %+v; want d1 once, superseded by d2 at its registration", told)
		}
		entries, err := s.OutboxByKey(ctx, "d1:deploy_superseded")
		if err != nil || len(entries) != 1 || entries[0].Status != OutboxPending || string(entries[0].Payload) != `{"superseded_by":"d2"}` {
			t.Fatalf("d1's deploy_superseded: %+v (%v); want one entry, pending", entries, err)
		}
		if _, err := s.CreateDeploy(ctx, web("d2", 2*time.Minute), tell); err == nil || len(told) != 1 {
			t.Fatalf("d2 sent again: %v, told %d times; want a RegisteredError and no call", err, len(told))
		}
		if sup, err := s.CreateDeploy(ctx, &Deploy{ID: "a1", Service: "api", Version: "v1", CreatedAt: t0, Status: StatusVerifying}, tell); err != nil ||
			len(sup) != 0 || len(told) != 1 {
			t.Fatalf("another service's deploy: superseded %v, told %d (%v); want nothing of web's", sup, len(told), err)
		}
	})
}

// A failing verdict reported for a deploy while a newer deploy of its service registers,
// from two agents sharing the store: either the verdict comes first (the deploy failed, its
// rollback is written, and the registration supersedes nothing) or the supersede does (its
// deploy_superseded is written, and the verdict decides nothing). Never both, never neither.
func TestAVerdictAndASupersedeAtOnceWriteOneOfTheirs(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		path := drv.where(t)
		agentA, agentB := drv.openAt(t, path), drv.openAt(t, path)
		rollback := func(id string) *OutboxEntry {
			return &OutboxEntry{Notifier: "rollback", Event: "deploy_failed", Key: id + ":deploy_failed", Incident: id, Payload: []byte(`{}`), CreatedAt: t0}
		}
		var mu sync.Mutex
		told := map[string]int{}
		tell := func(old *Deploy) []*OutboxEntry {
			mu.Lock()
			told[old.ID]++
			mu.Unlock()
			return supersededEntry(old)
		}
		const rounds = 60
		id := func(i int) string { return fmt.Sprint("d", i) }
		deploy := func(i int) *Deploy {
			return &Deploy{ID: id(i), Service: "web", Version: id(i), CreatedAt: t0.Add(time.Duration(i) * time.Second), Status: StatusVerifying}
		}
		if _, err := agentA.CreateDeploy(ctx, deploy(0), tell); err != nil {
			t.Fatal(err)
		}
		for i := range rounds {
			// Which one starts first varies by round, by up to a few milliseconds, so both
			// orders happen, and every overlap between them.
			lead := time.Duration(i%12) * 250 * time.Microsecond
			verdictAfter, registerAfter := lead, time.Duration(0)
			if i%2 == 1 {
				verdictAfter, registerAfter = 0, lead
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			var verdictErr, registerErr error
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				time.Sleep(verdictAfter)
				_, _, verdictErr = agentA.ReportLocation(ctx, id(i), nil, decideAs(StatusFailed, "home failed", rollback(id(i))))
			}()
			go func() {
				defer wg.Done()
				<-start
				time.Sleep(registerAfter)
				_, registerErr = agentB.CreateDeploy(ctx, deploy(i+1), tell)
			}()
			close(start)
			wg.Wait()
			if verdictErr != nil || registerErr != nil {
				t.Fatalf("round %d: verdict %v, registration %v", i, verdictErr, registerErr)
			}
		}
		ways := map[string]int{}
		for i := range rounds {
			d, err := agentA.Deploy(ctx, id(i))
			if err != nil {
				t.Fatal(err)
			}
			failed, _ := agentA.OutboxByKey(ctx, id(i)+":deploy_failed")
			superseded, _ := agentA.OutboxByKey(ctx, id(i)+":deploy_superseded")
			ways[d.Status]++
			switch {
			case d.Status == StatusFailed && len(failed) == 1 && len(superseded) == 0 && told[d.ID] == 0:
			case d.Status == StatusSuperseded && len(failed) == 0 && len(superseded) == 1 && told[d.ID] == 1:
			default:
				t.Errorf("%s is %s with %d deploy_failed and %d deploy_superseded written, its Superseder told %d times; "+
					"want one of them, the one its status says", d.ID, d.Status, len(failed), len(superseded), told[d.ID])
			}
		}
		t.Logf("%d rounds: %v", rounds, ways)
	})
}
