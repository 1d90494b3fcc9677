package agent

// A verification round's visitors. Behind a balancer that picks a pod per connection
// (kube-proxy, a cloud network load balancer), one run of an http check is one connection
// and so one pod: a Deployment with one broken pod of four, a quarter of its users failing,
// passed a verification of six one-run rounds one time in six (0.75^6), and a broken pod
// of ten two times in three. A round of such a check is verify.visitors runs at once,
// each on a connection of its own, and one failed run among them is the round's failure;
// with the defaults, 24 connections in a window, the broken pod of four passes one
// verification in a thousand. Kinds whose run already opens many connections (sla,
// propagation), judge the fleet as a whole (promql, logscan, fleet, heartbeat) or cost a
// browser each (browser) run once a round.

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
)

// oneClient lists the kinds whose run is one client on connections of its own.
var oneClient = map[string]bool{
	configs.KindHTTP: true, configs.KindScript: true, configs.KindGRPC: true,
	configs.KindWebSocket: true, configs.KindTCP: true, configs.KindTLS: true,
}

// visitorsOf is how many runs make a round of c under limits.
func visitorsOf(c *checks.Check, limits configs.Verify) int {
	if !oneClient[c.Kind] || limits.Visitors < 1 {
		return 1
	}
	return limits.Visitors
}

// round runs one round of c: its visitors at once, each taking a run slot as any run does
// (agent.concurrency bounds everything vigil sends at once), and records the one run that
// stands for the round (roundResult). ok is false when ctx ended first: the round is not a
// result.
func (a *Agent) round(ctx context.Context, c *checks.Check, in checks.Input, deployID string, limits configs.Verify) (*checks.Result, bool) {
	n := visitorsOf(c, limits)
	if n == 1 {
		release, ok := a.sched.Acquire(ctx, c)
		if !ok {
			return nil, false
		}
		defer release()
		return a.execute(ctx, c, in, deployID)
	}
	runs := make([]*checks.Result, n)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			release, ok := a.sched.Acquire(ctx, c)
			if !ok {
				return
			}
			defer release()
			runs[i] = a.attempt(ctx, c, in)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		a.log.Debug("round cancelled; not recorded", "check", c.Name, "deploy", deployID, "cause", context.Cause(ctx))
		return nil, false
	}
	return a.record(ctx, c, roundResult(runs), deployID), true
}

// roundResult is the run that stands for a round of visitors: a failed one (a visitor the
// new version answered wrongly; the verdict must not average it away among passes), else
// one that vigil could not measure (an error: the error rules judge it, and a visitor the
// service gave no answer is news of a pod that does not answer), else a pass (one that
// got its answer only on a retry after no answer first, if any: the rules on a service
// that keeps going away read it), else an inconclusive one. The first of its rank stands;
// its transcript begins with what every visitor got.
func roundResult(runs []*checks.Result) *checks.Result {
	rank := func(r *checks.Result) int {
		switch {
		case r.Outcome == checks.Fail:
			return 4
		case r.Outcome == checks.Error:
			return 3
		case r.Outcome == checks.Pass && r.RetriedSilence != "":
			return 2
		case r.Outcome == checks.Pass:
			return 1
		}
		return 0
	}
	pick := 0
	for i, r := range runs {
		if rank(r) > rank(runs[pick]) {
			pick = i
		}
	}
	got := make([]string, len(runs))
	for i, r := range runs {
		got[i] = fmt.Sprintf("%d %s", i+1, r.Outcome)
	}
	out := *runs[pick]
	out.Transcript = append([]string{fmt.Sprintf("== round of %d visitors, each on a connection of its own: %s; visitor %d's run follows",
		len(runs), strings.Join(got, ", "), pick+1)}, runs[pick].Transcript...)
	return &out
}
