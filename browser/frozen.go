package browser

// Frozen pages. A script busy in a loop (while (true) {}, a runaway recursion over a huge
// list) holds the page's main thread: the page answers nothing, and every wait of the
// visit runs out as if an element were merely slow to show. While the visit's work runs,
// its pulse asks the page for a trivial evaluation, one at a time; when a wait ran out,
// how long the oldest unanswered one has waited is how long the page has not responded
// (Report.Unresponsive), and the report says so instead of "not visible".

import (
	"context"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

const (
	// pulseInterval is the pause between one answered evaluation and the next.
	pulseInterval = 250 * time.Millisecond
	// unresponsiveAfter is how long the page must have answered nothing, when its wait ran
	// out, to be reported as not responding: a busy renderer on a loaded machine answers
	// late, a frozen one never.
	unresponsiveAfter = 2 * time.Second
)

// pulse asks the page's main thread for a sign of life while the visit's work runs.
type pulse struct {
	stop context.CancelFunc
	done chan struct{}

	mu sync.Mutex
	// asked is when the evaluation still unanswered was sent; zero when none waits.
	asked time.Time
}

// startPulse starts asking; end stops it. It asks through the tab's session directly, not
// through an element query, so nothing of chromedp's frame bookkeeping can hold it up.
func (vr *visitRun) startPulse() *pulse {
	ctx, cancel := context.WithCancel(vr.work)
	p := &pulse{stop: cancel, done: make(chan struct{})}
	t := vr.target
	silent := true
	go func() {
		defer close(p.done)
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			p.mu.Lock()
			p.asked = time.Now()
			p.mu.Unlock()
			// Any answer, an error included ("context destroyed" during a navigation), is
			// the renderer answering.
			_, err := cdp.Call(ctx, t, runtime.Evaluate, runtime.EvaluateParams{Expression: "0", Silent: &silent})
			if err != nil && ctx.Err() != nil {
				return // unanswered: asked stays set
			}
			p.mu.Lock()
			p.asked = time.Time{}
			p.mu.Unlock()
			timer.Reset(pulseInterval)
		}
	}()
	return p
}

// end stops the pulse and returns how long the page had answered nothing when it was
// stopped (0 when nothing was waiting).
func (p *pulse) end() time.Duration {
	now := time.Now()
	p.stop()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.asked.IsZero() {
		return 0
	}
	return now.Sub(p.asked)
}

// noteSilence records, once the work is done, a page that did not respond for silent
// while one of its waits ran out (the load event, wait_for, a step): that is why it ran
// out. A page that did all it was asked is not judged by its silence at that moment.
func (vr *visitRun) noteSilence(silent time.Duration, workErr error) {
	rep := vr.rep
	waitRanOut := !rep.Loaded || !rep.WaitForFound || rep.StepError != ""
	if workErr != nil || silent < unresponsiveAfter || !waitRanOut {
		return
	}
	rep.Unresponsive = silent
	vr.logf("!! the page did not respond for %s: its main thread answered nothing vigil asked (a script busy in a loop?)", silent.Round(100*time.Millisecond))
}

// bounded runs a on the tab and returns when it ends or when ctx does, whichever comes
// first. chromedp's element queries take the frame's lock, which its event loop holds while
// it asks the renderer for the new document after DOM.documentUpdated: on a page whose main
// thread is stuck that question is never answered, and a query would wait past ctx until
// the tab closes, turning a frozen page into the visit's timeout. The query left behind
// ends when the tab closes, at the end of the visit at the latest.
func bounded[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := chromedp.Run(ctx, a)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-ch: // it ended too: its own result says more
			return r.v, r.err
		default:
		}
		var zero T
		return zero, ctx.Err()
	}
}
