package browser

// A visit's evidence: the report filled while the tab is open, the screenshot and the
// timings, each with its own short deadline.

import (
	"context"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// collect fills the report and takes the screenshot while the tab is still open. The
// screenshot comes first when the page already failed, so a slow renderer spends the
// evidence budget on the picture, not on timings; the timings' round trip to the renderer
// then flushes late events (an exception from a timer) into a second look.
func (vr *visitRun) collect(visitErr error) {
	rep := vr.rep
	alive := func() bool {
		return vr.target != nil && vr.rec.crashReason() == "" && !vr.inst.gone() && vr.caller.Err() == nil && vr.p.closing.Err() == nil
	}
	if alive() {
		ctx, cancel := context.WithTimeout(vr.tabCtx, collectTimeout)
		if info, err := cdp.Call(ctx, vr.inst.browser, target.GetTargetInfo, target.GetTargetInfoParams{TargetID: vr.target.TargetID}); err == nil && info.TargetInfo != nil {
			rep.URL, rep.Title = info.TargetInfo.URL, info.TargetInfo.Title
		}
		cancel()
	}
	vr.rec.fill(rep)
	if !alive() {
		return
	}
	shot := visitErr != nil || vr.wantEvidence()
	if shot {
		vr.screenshot()
	}
	if rep.Unresponsive > 0 {
		// Nothing more can come from a page that answers nothing; the evidence reserve is
		// not spent asking.
		what := "no timings"
		if vr.v.VersionSelector != "" {
			what = "no timings, no served version"
		}
		vr.logf("%s: the page does not respond", what)
		return
	}
	if vr.v.VersionSelector != "" && alive() {
		vr.readVersion()
		vr.rec.fill(rep)
	}
	if rep.Loaded && visitErr == nil && rep.StoppedEarly == "" && alive() {
		vr.timings()
		vr.rec.fill(rep)
		if !shot && alive() && vr.wantEvidence() {
			vr.screenshot()
		}
	}
}

func (vr *visitRun) wantEvidence() bool {
	if vr.v.Evidence != nil {
		return vr.v.Evidence(vr.rep)
	}
	return hasProblems(vr.rep)
}

// screenshot keeps a PNG of the viewport, within its own short deadline.
func (vr *visitRun) screenshot() {
	begin := time.Now()
	// What the visit has left, less the version's and the timings' reads after it.
	wait := min(max(time.Until(vr.deadline)-2*collectTimeout, screenshotTimeout), screenshotMax)
	if vr.rep.Unresponsive > 0 {
		wait = screenshotTimeout // a frozen page draws nothing however long it is given
	}
	ctx, cancel := context.WithTimeout(vr.tabCtx, wait)
	defer cancel()
	if vr.rec.openedWindows() {
		// A window the page opened is in front, and a page behind it draws nothing.
		_, _ = chromedp.Call(ctx, page.BringToFront, cdp.Empty{})
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		if d := vr.rep.Unresponsive; d > 0 {
			vr.logf("no screenshot: Chromium draws the page on its main thread, which has not responded for %s (%v)", (d + since(begin)).Round(100*time.Millisecond), err)
			return
		}
		vr.logf("no screenshot: the page did not answer within %s (%v)", since(begin), err)
		return
	}
	vr.rep.Screenshot = png
	vr.logf("screenshot: %d KiB in %s", (len(png)+1023)/1024, since(begin))
}

// timings reads Navigation Timing and LCP. The round trip to the renderer also makes sure
// every event the page sent before it has reached the recorder.
func (vr *visitRun) timings() {
	ctx, cancel := context.WithTimeout(vr.tabCtx, collectTimeout)
	defer cancel()
	t, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]float64](timingsScript, chromedp.EvalAwaitPromise))
	if err != nil {
		vr.logf("no timings: %v", err)
		return
	}
	ms := func(k string) time.Duration { return time.Duration(t[k] * float64(time.Millisecond)) }
	vr.rep.Timings = Timings{TTFB: ms("ttfb"), DOMContentLoaded: ms("dcl"), Load: ms("load"), LCP: ms("lcp")}
}

// hasProblems is the default Evidence: anything a person would want to see.
func hasProblems(r *Report) bool {
	return len(r.Exceptions)+len(r.ConsoleErrors)+len(r.FailedRequests) > 0 || !r.WaitForFound ||
		r.StepError != "" || !r.Loaded || r.Status >= 400 || r.Unresponsive > 0
}
