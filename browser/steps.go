package browser

// A visit's journey: navigations, waits, clicks, typing and text checks, each bounded by
// the visit's work deadline.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/vigil-monitor/vigil/internal/text"
)

// StepKind names a journey action.
type StepKind string

// Journey actions.
const (
	StepNavigate   StepKind = "navigate"
	StepClick      StepKind = "click"
	StepType       StepKind = "type"
	StepWaitFor    StepKind = "wait_for"
	StepAssertText StepKind = "assert_text"
	StepSleep      StepKind = "sleep"
)

// Step is one action of a journey.
type Step struct {
	Kind StepKind
	// URL for navigate.
	URL string
	// Selector is a CSS selector, for click, type, wait_for and assert_text.
	Selector string
	// Text is what type types (never logged: it may be a password) or what assert_text
	// expects the element's text to contain.
	Text string
	// Sleep for sleep.
	Sleep time.Duration
}

// String names the step in reasons and transcripts, without typed text.
func (s Step) String() string {
	switch s.Kind {
	case StepNavigate:
		return "navigate " + s.URL
	case StepType:
		return fmt.Sprintf("type %d characters into %s", len([]rune(s.Text)), s.Selector)
	case StepAssertText:
		return fmt.Sprintf("assert_text %s contains %q", s.Selector, s.Text)
	case StepSleep:
		return "sleep " + s.Sleep.String()
	}
	return string(s.Kind) + " " + s.Selector
}

// journey runs the steps. It returns an error only when the visit could not measure; a
// step the page fails is recorded in the report.
func (vr *visitRun) journey() error {
	navigated, settle := false, false
	for i, st := range vr.steps {
		label := fmt.Sprintf("step %d (%s)", i+1, st)
		if len(vr.steps) == 1 {
			label = st.String()
		}
		vr.logf("-- %s", label)
		failure, err := vr.step(st)
		if err != nil {
			return err
		}
		if vr.stopped() != "" {
			return nil // the page failed for good: what the step saw since is not its fault
		}
		if failure != "" {
			vr.rep.FailedStep, vr.rep.StepError = label, failure
			vr.logf("!! %s: %s", label, failure)
			return nil
		}
		vr.rep.Steps = i + 1
		// A journey that ends at a load event, with no wait_for after it, lets the page
		// settle (settle.go).
		settle = st.Kind == StepNavigate && vr.rep.Loaded
		if st.Kind == StepNavigate && !navigated {
			navigated = true
			if vr.v.WaitFor == "" {
				continue
			}
			settle = false
			if found, err := vr.waitFor(); err != nil || !found || vr.stopped() != "" {
				// The page did not render; the steps after this would only wait for
				// things that cannot appear. wait_for_found tells the story.
				return err
			}
		}
	}
	if settle {
		vr.settle()
	}
	return nil
}

// waitFor waits for the visit's WaitFor selector to become visible. err is set when the
// visit cannot go on measuring (crash, browser gone, caller gone).
func (vr *visitRun) waitFor() (bool, error) {
	begin := time.Now()
	_, err := bounded(vr.work, chromedp.WaitVisible(chromedp.CSS(vr.v.WaitFor)))
	if err == nil {
		vr.rep.WaitForFound = true
		vr.logf("wait_for %s: visible after %s", vr.v.WaitFor, since(begin))
		return true, nil
	}
	if f := vr.fatal(err); f != nil {
		vr.logf("wait_for %s: %v", vr.v.WaitFor, f)
		return false, f
	}
	if vr.stopped() != "" {
		vr.logf("wait_for %s: stopped waiting after %s", vr.v.WaitFor, since(begin))
		return false, nil
	}
	if vr.work.Err() != nil && vr.rec.documents() > 0 {
		// The page's time ran out, most often in the navigation (a subresource that never
		// answers keeps the load event from firing, and the navigation has the whole
		// timeout): one last look, from the evidence's reserve, at a page that answered. An
		// element shown all along was reported never visible.
		ctx, cancel := context.WithTimeout(vr.tabCtx, lastLook)
		_, err := bounded(ctx, chromedp.WaitVisible(chromedp.CSS(vr.v.WaitFor)))
		cancel()
		if err == nil {
			vr.rep.WaitForFound = true
			vr.logf("wait_for %s: visible at a last look once the page's time ran out (it was still loading)", vr.v.WaitFor)
			return true, nil
		}
	}
	vr.logf("wait_for %s: not visible after %s", vr.v.WaitFor, since(begin))
	return false, nil
}

// lastLook bounds waitFor's look at a page whose time ran out.
const lastLook = 300 * time.Millisecond

// step runs one action. failure says how the page failed it; err is set when the visit
// could not go on measuring.
func (vr *visitRun) step(st Step) (failure string, err error) {
	ctx := vr.work
	begin := time.Now()
	notFound := func(err error, verb string) (string, error) {
		if f := vr.fatal(err); f != nil {
			return "", f
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return fmt.Sprintf("no visible element matches %q after %s", st.Selector, since(begin)), nil
		}
		return fmt.Sprintf("%s %q: %v", verb, st.Selector, err), nil
	}
	switch st.Kind {
	case StepNavigate:
		return vr.navigate(st.URL)
	case StepClick:
		if _, err := bounded(ctx, chromedp.Click(chromedp.CSS(st.Selector))); err != nil {
			return notFound(err, "click")
		}
	case StepType:
		if _, err := bounded(ctx, chromedp.SendKeys(chromedp.CSS(st.Selector), st.Text, chromedp.NodeVisible)); err != nil {
			return notFound(err, "type into")
		}
	case StepWaitFor:
		if _, err := bounded(ctx, chromedp.WaitVisible(chromedp.CSS(st.Selector))); err != nil {
			return notFound(err, "wait for")
		}
	case StepAssertText:
		return vr.assertText(st)
	case StepSleep:
		t := time.NewTimer(st.Sleep)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			if f := vr.fatal(context.Cause(ctx)); f != nil {
				return "", f
			}
			return fmt.Sprintf("the visit's time ran out during the %s sleep", st.Sleep), nil
		}
	}
	vr.logf("done in %s", since(begin))
	return "", nil
}

// assertText waits until the element's visible text contains st.Text, as a person would
// wait for a page to settle, for at most 5 seconds.
func (vr *visitRun) assertText(st Step) (string, error) {
	ctx, cancel := context.WithTimeout(vr.work, 5*time.Second)
	defer cancel()
	last, found := "", false
	for {
		got, err := bounded(ctx, chromedp.Text(chromedp.CSS(st.Selector), chromedp.NodeVisible))
		if err == nil {
			found, last = true, got
			if strings.Contains(got, st.Text) {
				vr.logf("text of %s contains %q", st.Selector, st.Text)
				return "", nil
			}
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
			continue
		case <-ctx.Done():
			t.Stop()
		}
		if f := vr.fatal(context.Cause(ctx)); f != nil {
			return "", f
		}
		if !found {
			return fmt.Sprintf("no visible element matches %q", st.Selector), nil
		}
		return fmt.Sprintf("the text of %s is %q, which does not contain %q", st.Selector, text.Ellipsis(last, 300), st.Text), nil
	}
}

// navigate loads u and waits for its load event. No answer at all is an error (the page
// is unreachable); an answer whose page never finishes loading is recorded and the
// journey goes on, since the page may still be usable.
func (vr *visitRun) navigate(u string) (string, error) {
	ctx := vr.work
	var cancel context.CancelFunc = func() {}
	if d := vr.v.NavigationTimeout; d > 0 {
		ctx, cancel = context.WithTimeout(ctx, d)
	}
	defer cancel()
	begin := time.Now()
	docs := vr.rec.documents()
	downloads, _ := vr.rec.downloadsBegun()
	err := chromedp.Do(ctx, chromedp.Navigate(u))
	switch {
	case err == nil:
		vr.logf("< loaded %s in %s (status %d)", u, since(begin), vr.rec.docStatus())
		return "", nil
	case vr.stopped() != "":
		vr.logf("< stopped waiting for %s to load after %s (status %d)", u, since(begin), vr.rec.docStatus())
		return "", nil
	}
	vr.rep.Loaded = false
	switch {
	case errors.Is(err, chromedp.ErrPageLoad):
		var le *chromedp.LoadError
		if errors.As(err, &le) {
			if le.ErrorText == "net::ERR_INVALID_AUTH_CREDENTIALS" && vr.rec.documents() > docs {
				if lp := vr.loginPrompt(); lp != nil {
					vr.logf("!! %s answered %d: a sign-in prompt, not a page", u, lp.Status)
					return "", lp
				}
			}
			if le.ErrorText == "net::ERR_ABORTED" && vr.rec.documents() > docs {
				if ne := vr.noPage(); ne != nil {
					vr.logf("!! %s answered %d: no page to show", u, ne.Status)
					return "", ne
				}
				if de := vr.servedAsDownload(downloads); de != nil {
					vr.logf("!! %s was served as a download, not a page (%s)", u, de.sent())
					return "", de
				}
			}
			return "", &NavigationError{URL: u, Code: le.ErrorText}
		}
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	if f := vr.fatal(err); f != nil {
		return "", f
	}
	if vr.rec.documents() == docs {
		if errors.Is(err, context.DeadlineExceeded) {
			// The service's silence only when the navigation had a fair share of the visit's
			// time: one that vigil's own waiting (a browser slot, Chromium's start, a tab)
			// left with a fraction of a second says nothing of the service, and a deploy's
			// verification fails on the service's silence.
			waited, total := since(begin), vr.deadline.Sub(vr.called)
			if waited >= min(total/2, 5*time.Second) {
				return "", fmt.Errorf("GET %s: timed out: %w within %s", u, ErrNoResponse, waited)
			}
			return "", fmt.Errorf("GET %s: timed out after %s: vigil's own waiting (a browser slot, the browser's start, a tab) left the page %s of the run's %s, too little to judge the service by",
				u, waited.Round(time.Millisecond), waited.Round(time.Millisecond), total.Round(time.Millisecond))
		}
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	vr.rep.Pending = vr.rec.pending(5)
	vr.logf("!! %s answered but did not finish loading within %s; still loading: %s", u, since(begin),
		strings.Join(vr.rep.Pending, ", "))
	return "", nil
}
