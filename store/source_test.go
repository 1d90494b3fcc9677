package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A deploy with a Source does not supersede a deploy of its source verifying another
// environment: CreateDeploy refuses it with a SourceConflictError naming that deploy, and
// writes nothing (no deploy, no supersede, its Superseder not called). The same
// environment supersedes; a deploy of another source (no Source, or keys of another
// prefix) supersedes whatever verifies; once the other environment's deploy is decided,
// the registration goes through.
func TestASourceDoesNotSupersedeItsOtherEnvironment(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		s := drv.fresh(t)
		told := 0
		tell := func(old *Deploy) []*OutboxEntry { told++; return supersededEntry(old) }
		hook := func(id, env string, at time.Duration) *Deploy {
			return &Deploy{ID: id, Service: "web", Version: id, Environment: env, CreatedAt: t0.Add(at), Status: StatusVerifying,
				RequestKey: "hook:" + id, Source: "hook:"}
		}
		status := func(id string) string {
			d, err := s.Deploy(ctx, id)
			if err != nil {
				return err.Error()
			}
			return d.Status
		}
		if _, err := s.CreateDeploy(ctx, hook("s1", "staging", 0), tell); err != nil {
			t.Fatal(err)
		}
		sup, err := s.CreateDeploy(ctx, hook("p1", "prod", time.Minute), tell)
		var conflict *SourceConflictError
		if !errors.As(err, &conflict) || conflict.Verifying.ID != "s1" || conflict.Verifying.Environment != "staging" || sup != nil {
			t.Fatalf("prod's deploy while staging's verifies: %v %v; want a SourceConflictError naming s1", sup, err)
		}
		if got := status("p1"); got != ErrNotFound.Error() || status("s1") != StatusVerifying || told != 0 {
			t.Fatalf("after the refusal: p1 %s, s1 %s, Superseder told %d times; want p1 not recorded, s1 verifying, no call", got, status("s1"), told)
		}
		// under a key of the other environment's deploy (the same canary checksum): still the conflict
		same := hook("p1", "prod", time.Minute)
		same.RequestKey = "hook:s1"
		if _, err := s.CreateDeploy(ctx, same, tell); !errors.As(err, &conflict) {
			t.Fatalf("prod's deploy under staging's key: %v; want a SourceConflictError, not the key's deploy", err)
		}

		if sup, err := s.CreateDeploy(ctx, hook("s2", "staging", 2*time.Minute), tell); err != nil || len(sup) != 1 || sup[0] != "s1" {
			t.Fatalf("staging's next deploy: superseded %v (%v); want s1", sup, err)
		}
		pipeline := &Deploy{ID: "c1", Service: "web", Version: "v9", Environment: "prod", CreatedAt: t0.Add(3 * time.Minute), Status: StatusVerifying, RequestKey: "ci-7"}
		if sup, err := s.CreateDeploy(ctx, pipeline, tell); err != nil || len(sup) != 1 || sup[0] != "s2" {
			t.Fatalf("a pipeline's deploy of prod: superseded %v (%v); want s2: it has no Source", sup, err)
		}
		other := hook("o1", "staging", 4*time.Minute)
		other.RequestKey, other.Source = "other:o1", "other:"
		if sup, err := s.CreateDeploy(ctx, hook("p2", "prod", 4*time.Minute), tell); err != nil || len(sup) != 1 || sup[0] != "c1" {
			t.Fatalf("prod's hook deploy while the pipeline's verifies: superseded %v (%v); want c1, of another source", sup, err)
		}
		if sup, err := s.CreateDeploy(ctx, other, tell); err != nil || len(sup) != 1 || sup[0] != "p2" {
			t.Fatalf("another source's deploy of staging: superseded %v (%v); want p2, whose key is not of its source", sup, err)
		}
		if ok, err := s.DecideDeploy(ctx, &Decision{DeployID: "o1", Status: StatusPassed, At: t0.Add(5 * time.Minute)}); !ok || err != nil {
			t.Fatalf("deciding o1: %v %v", ok, err)
		}
		if _, err := s.CreateDeploy(ctx, hook("s3", "staging", 6*time.Minute), tell); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.DecideDeploy(ctx, &Decision{DeployID: "s3", Status: StatusPassed, At: t0.Add(7 * time.Minute)}); !ok || err != nil {
			t.Fatalf("deciding s3: %v %v", ok, err)
		}
		if sup, err := s.CreateDeploy(ctx, hook("p3", "prod", 8*time.Minute), tell); err != nil || len(sup) != 0 {
			t.Fatalf("prod's deploy after staging's was decided: superseded %v (%v); want it registered", sup, err)
		}
	})
}

// Two agents sharing the store register deploys of one source in two environments at
// once, with nothing verifying: one is registered and the other refused, never both
// registered (the later superseding the earlier), whichever comes first.
func TestTwoEnvironmentsOfASourceAtOnceRegisterOne(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv driver) {
		ctx := context.Background()
		path := drv.where(t)
		agents := []testStore{drv.openAt(t, path), drv.openAt(t, path)}
		const rounds = 30
		for round := range rounds {
			envs := []string{"staging", "prod"}
			ids := make([]string, 2)
			errs := make([]error, 2)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range envs {
				ids[i] = fmt.Sprintf("r%d-%s", round, envs[i])
				// Odd rounds: both under one key, as two namespaces' canaries of one checksum.
				key := "hook:" + ids[i]
				if round%2 == 1 {
					key = fmt.Sprintf("hook:r%d", round)
				}
				d := &Deploy{ID: ids[i], Service: "web", Version: ids[i], Environment: envs[i], CreatedAt: t0.Add(time.Duration(round) * time.Minute),
					Status: StatusVerifying, RequestKey: key, Source: "hook:"}
				wg.Go(func() {
					<-start
					_, errs[i] = agents[(i+round)%2].CreateDeploy(ctx, d, supersededEntry)
				})
			}
			close(start)
			wg.Wait()
			won := -1
			for i, err := range errs {
				var conflict *SourceConflictError
				switch {
				case err == nil && won == -1:
					won = i
				case errors.As(err, &conflict) && conflict.Verifying.ID == ids[1-i]:
				default:
					t.Fatalf("round %d: %s's registration: %v, the other's: %v; want one registered, the other refused naming it", round, envs[i], err, errs[1-i])
				}
			}
			if won == -1 {
				t.Fatalf("round %d: both refused: %v", round, errs)
			}
			if _, err := agents[0].Deploy(ctx, ids[1-won]); !errors.Is(err, ErrNotFound) {
				t.Fatalf("round %d: %s's deploy was recorded (%v); want only %s's", round, envs[1-won], err, envs[won])
			}
			if ok, err := agents[0].DecideDeploy(ctx, &Decision{DeployID: ids[won], Status: StatusPassed, At: t0.Add(time.Duration(round)*time.Minute + time.Second)}); !ok || err != nil {
				t.Fatalf("round %d: deciding %s: %v %v; want it still verifying", round, ids[won], ok, err)
			}
		}
	})
}
