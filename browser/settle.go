package browser

// Letting a page settle after its last load event when nothing else proves it started. A
// visit without wait_for was done at the load event, but a single-page app's startup goes
// on past it: the route's chunk is fetched with import() in a task after the module ran
// (React.lazy, a router), which does not hold the load event back. After a deploy that
// chunk may be missing (a hashed file an old server does not have), and its failure came
// just after the run had ended: passed. So such a visit waits, after the load event, until
// the page has sent and received nothing for settleQuiet and none of its scripts or
// stylesheets is still on its way, for at most settleMax; an open long poll or event
// stream with nothing on it is quiet. A failure in that time ends the wait at once
// (Visit.Stop), as anywhere.

import (
	"context"
	"time"

	"github.com/chromedp/cdproto/network"
)

const (
	settleQuiet = 500 * time.Millisecond
	settleMax   = 3 * time.Second
)

// noteActivity records when the page last sent a request or had one end; it runs on the
// event loop.
func (r *recorder) noteActivity(ev any) {
	switch ev.(type) {
	case *network.EventRequestWillBeSent, *network.EventResponseReceived, *network.EventLoadingFinished, *network.EventLoadingFailed:
		r.active.Store(time.Now().UnixNano())
	}
}

// settle waits until the page's network has been quiet for settleQuiet (since its last
// activity, or since settle began) with no script or stylesheet in flight, for at most
// settleMax of the visit's work time.
func (vr *visitRun) settle() {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(vr.work, settleMax)
	defer cancel()
	for {
		last := begin
		if a := time.Unix(0, vr.rec.active.Load()); a.After(last) {
			last = a
		}
		wait := settleQuiet - time.Since(last)
		if wait <= 0 && vr.rec.loadingCode() {
			wait = settleQuiet / 5
		} else if wait <= 0 {
			vr.logf("settled: nothing sent or received for %s after the load event (%s)", settleQuiet, since(begin))
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if vr.work.Err() == nil {
				vr.logf("the page was still sending, receiving or loading code %s after the load event: judged as it is", settleMax)
			}
			return
		}
	}
}

// loadingCode reports whether a script or stylesheet of the page is still on its way: the
// page is not settled while its code loads, however long it has been quiet.
func (r *recorder) loadingCode() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.requests {
		if q.typ == network.ResourceTypeScript || q.typ == network.ResourceTypeStylesheet {
			return true
		}
	}
	return false
}
