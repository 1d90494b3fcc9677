package checks

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/internal/backoff"
)

// fleetAskAgain is how often a starting instance is asked again: soon at first, then every
// couple of seconds, so a fleet of starting instances is not hammered.
var fleetAskAgain = backoff.Policy{First: 200 * time.Millisecond, Max: 2 * time.Second}

// settle gives the instances a rolling update is starting time to become healthy. In a
// deploy, an instance that fails is asked again until it is healthy or the run's deadline
// is one health.timeout away, and only then judged, when it may be starting: new to the
// baseline (a registry that lists instances before they are ready, a pod listed while it
// starts), or healthy in it (an instance at a fixed address restarted in place for the
// upgrade), or failing in it too (a rollout begun before its deploy was registered). A
// crash-looping new version still fails, later in the run. Outside a deploy nothing is
// starting that vigil knows of, and a failure is reported at once.
func (f *Fleet) settle(ctx context.Context, run *Run, found []*fleetInstance) []*fleetInstance {
	if run.Deploy == nil {
		return found
	}
	base, _ := fleetBaseline(run.Baseline)
	red := run.Transcript.Redactor()
	var waiting []int
	var why []string
	for i, in := range found {
		switch b, known := base[red.String(in.URL)]; {
		case in.Healthy:
		case known && !b.healthy:
			// Failing before the deploy too: broken, or starting already (a rollout begun
			// before its deploy was registered). Waiting costs time, not a verdict.
			waiting = append(waiting, i)
			why = append(why, "failing before the deploy too, and now (%s): maybe starting since")
		case known:
			waiting = append(waiting, i)
			why = append(why, "healthy before the deploy, and failing (%s): maybe restarting in place for the rollout")
		default:
			waiting = append(waiting, i)
			why = append(why, "new, not seen before the deploy, and failing (%s): maybe still starting")
		}
	}
	if len(waiting) == 0 {
		return found
	}
	deadline, ok := ctx.Deadline()
	until := deadline.Add(-f.timeout) // room for the last discovery request, and to judge
	if !ok || time.Until(until) <= 0 {
		run.Transcript.Printf("-- %d instances fail that may be starting, and the run has no time left to ask them again", len(waiting))
		return found
	}
	for k, i := range waiting {
		run.Transcript.Printf("%s: "+why[k]+"; asked again until it is healthy or %s before the check's deadline", found[i].URL, found[i].Problem, f.timeout)
	}
	wctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	start := time.Now()
	asked := map[int]int{}
	left := map[int]bool{}
	for attempt := 1; len(waiting) > 0; attempt++ {
		if !waitPoll(wctx, fleetAskAgain.Delay(attempt)) {
			break
		}
		waiting = f.dropLeavers(wctx, run, found, waiting, left)
		urls := make([]string, len(waiting))
		for k, i := range waiting {
			urls[k] = found[i].URL
		}
		again := f.probeAll(wctx, urls)
		if wctx.Err() != nil {
			// Answers cut by the wait's own deadline say nothing about the instances: an
			// instance is judged by its last whole answer.
			for k, in := range again {
				if in != nil && !in.Healthy {
					again[k] = nil
				}
			}
		}
		still := waiting[:0]
		for k, i := range waiting {
			in := again[k]
			if in == nil {
				still = append(still, i)
				continue
			}
			asked[i]++
			if in.Version == "" && found[i].Version != "" {
				// It cannot say now; it said before, maybe already on the new version.
				in.Version, in.Earlier = found[i].Version, true
			}
			if b, known := base[red.String(in.URL)]; in.Healthy && restartedOld(b, known, in.Version, run.Deploy.Version) {
				// Back, but on the version it ran before: nothing upgraded it, it went down
				// on its own (seed 004: old peers crash once the new version talks to them,
				// and their supervisor starts them again). It is judged as it failed.
				found[i].Problem += fmt.Sprintf("; then back on %s after %s, not upgraded: it went down during the deploy", in.Version, time.Since(start).Round(time.Millisecond))
				run.Transcript.Printf("%s: answers again on %s, the version it ran before the deploy of %s: it restarted without being upgraded, so it went down on its own; judged as failing", in.URL, in.Version, run.Deploy.Version)
				continue
			}
			found[i] = in
			if in.Healthy {
				run.Transcript.Printf("%s: healthy after %s (asked again %d times), version %s", in.URL, time.Since(start).Round(time.Millisecond), asked[i], orUnknown(in.Version))
				continue
			}
			still = append(still, i)
		}
		waiting = still
	}
	for _, i := range waiting {
		found[i].Waited = time.Since(start)
		run.Transcript.Printf("%s: still unhealthy after %s of asking again (%d times): %s", found[i].URL, found[i].Waited.Round(time.Millisecond), asked[i], found[i].Problem)
	}
	if len(left) == 0 {
		return found
	}
	kept := make([]*fleetInstance, 0, len(found))
	for i, in := range found {
		if !left[i] {
			kept = append(kept, in)
		}
	}
	return kept
}

// restartedOld says whether an instance that was healthy on version before the deploy
// (b), failed in it, and answers healthy again on that same version, which is not the
// deploy's (as sameVersion reads them), restarted without being upgraded.
func restartedOld(b baselineInstance, known bool, version, deployed string) bool {
	return known && b.healthy && b.version != "" && version == b.version && !sameVersion(version, deployed)
}

// dropLeavers asks discovery again while instances are waited for: one no longer listed
// left the fleet (a surge instance removed, a pod replaced) and is not waited for or judged.
func (f *Fleet) dropLeavers(ctx context.Context, run *Run, found []*fleetInstance, waiting []int, left map[int]bool) []int {
	if f.targets.discovery == nil {
		return waiting
	}
	listed, err := f.targets.relisted(ctx, nil)
	if err != nil {
		return waiting // asked again at the end of the run; judged then
	}
	still := waiting[:0]
	for _, i := range waiting {
		if !listed[found[i].URL] {
			run.Transcript.Printf("%s: left the fleet while it was asked again (%s, and no longer listed), not judged", found[i].URL, found[i].Problem)
			left[i] = true
			continue
		}
		still = append(still, i)
	}
	return still
}

// probeAll asks the instances at urls, with the check's concurrency; an instance not asked
// before ctx ended is nil.
func (f *Fleet) probeAll(ctx context.Context, urls []string) []*fleetInstance {
	out := make([]*fleetInstance, len(urls))
	sem := make(chan struct{}, f.concurrency)
	var wg sync.WaitGroup
	for k, u := range urls {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[k] = f.probeInstance(ctx, u)
		}()
	}
	wg.Wait()
	return out
}

func orUnknown(version string) string {
	if version == "" {
		return unknownVersion
	}
	return version
}
