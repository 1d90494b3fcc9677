package checks

// A service's own rate limiter in a deploy's verification. A verification sends far more
// than the scheduled runs whose passes made the baseline: verify.visitors runs of every
// http and script check at once, every round, from one address. A rate limiter that
// counts per client address (nginx's limit_req, Envoy's local rate limit, an API
// gateway's) refuses part of that with 429, and a good deploy behind a limit of two
// requests a second failed its first round in 21 ms, "status == 200 is false: status =
// 429", and was rolled back. A 429 is the limiter's answer, not the service's: in a
// verification a run that fails on one asks again after the wait the answer asks for
// (its Retry-After; 1 s without one, as nginx sends none), as a client that backs off does,
// while the run's deadline leaves room, and is judged by the answer it then gets. A
// limiter that still refuses after vigil waited as it asked refuses the service's users
// too: the run fails on it. One whose wait ends past the run's deadline leaves the service
// behind it unasked: the run is inconclusive, not failed. A 429 the assertions accept
// (a check that expects the limiter to refuse) is judged as it is, and outside a
// verification nothing changes: the answer is what visitors get.

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/vigil-monitor/vigil/internal/backoff"
)

const (
	// limitWaitDefault is the wait after a 429 that names none.
	limitWaitDefault = time.Second
	// limitWaitLeast is the shortest wait after a 429 (a Retry-After of 0 asks for none:
	// asking again at once would only spend the limit).
	limitWaitLeast = 100 * time.Millisecond
	// limitRoom is the least time an answer to a request asked again gets before the
	// run's deadline: less, and asking again could only end in the deadline.
	limitRoom = time.Second
)

// limitResender marks the kinds whose run a 429 sends again in a verification (http;
// script does it per step).
type limitResender interface{ resendsAfter429() }

func (*HTTP) resendsAfter429() {}

// rateLimited is what a run's answer says of a rate limiter: whether it is a 429 in a
// deploy's verification, and how long it asks vigil to wait.
func rateLimited(run *Run, vars map[string]any) (wait time.Duration, asked string, limited bool) {
	if run.Deploy == nil || vars["status"] != http.StatusTooManyRequests {
		return 0, "", false
	}
	headers, _ := vars["headers"].(map[string]string)
	if d, ok := backoff.RetryAfter(headers["Retry-After"], time.Now()); ok {
		return max(d, limitWaitLeast), "as its Retry-After asks", true
	}
	return limitWaitDefault, "(it gives no Retry-After)", true
}

// limitWait waits as a 429 asks before the request is sent again: false when the wait
// and an answer after it do not fit before ctx's deadline, or ctx ended meanwhile.
func limitWait(ctx context.Context, t *Transcript, what string, wait time.Duration, asked string) bool {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+limitRoom {
		return false
	}
	t.Printf("%s answered 429: a rate limiter refusing the verification's requests (its visitors and rounds send more than "+
		"scheduled runs); waiting %s %s, then asking again", what, wait.Round(time.Millisecond), asked)
	return waitPoll(ctx, wait)
}

// limitOutcome is the word on a run still refused by a rate limiter once it can wait no
// more: after waiting at least once, a failure (the limiter refuses the service's users
// too; note is added to the reason); else inconclusive.
func limitOutcome(waited int, wait time.Duration, asked, what string) (note string, inconclusive error) {
	if waited > 0 {
		return fmt.Sprintf(" (a rate limiter's 429, still after vigil waited as it asked %d× before asking again)", waited), nil
	}
	return "", Inconclusivef("rate limited: %s answered 429 and asks to wait %s %s, past what is left of the run's timeout: the "+
		"service behind the limiter was not asked (a verification sends verify.visitors runs of each check at once, every "+
		"round): exempt vigil's requests from the limit (by their User-Agent), lower verify.visitors, or give the check a longer timeout",
		what, wait.Round(time.Millisecond), asked)
}

// probeJudged probes and judges a run; in a verification, a run of a limitResender that
// fails on a 429 is sent again after the wait it asks for, while the deadline leaves room
// (see the top of this file). run is the run judged last.
func (c *Check) probeJudged(ctx context.Context, run *Run, start time.Time) (_ *Run, outcome Outcome, reasons []string, err error) {
	_, resends := c.prober.(limitResender)
	for waited := 0; ; waited++ {
		if err = c.probe(ctx, run); err != nil {
			return run, "", nil, err
		}
		if _, set := run.Vars["duration_ms"]; !set {
			run.Vars["duration_ms"] = ms(time.Since(start)) // the kinds that time no part of their own
		}
		outcome, reasons = c.judge(run)
		wait, asked, limited := rateLimited(run, run.Vars)
		if outcome != Fail || !resends || !limited {
			return run, outcome, reasons, nil
		}
		if !limitWait(ctx, run.Transcript, "the service", wait, asked) {
			note, inc := limitOutcome(waited, wait, asked, "the service")
			if inc != nil {
				return run, "", nil, inc
			}
			reasons[len(reasons)-1] += note
			return run, outcome, reasons, nil
		}
		run, start = &Run{Input: run.Input, Vars: make(map[string]any, 24), Transcript: run.Transcript}, time.Now()
	}
}
