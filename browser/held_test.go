package browser

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// pagesOf lists the page targets of inst's browser.
func pagesOf(t testing.TB, inst *instance) []*target.Info {
	t.Helper()
	ctx, cancel := context.WithTimeout(inst.ctx, 10*time.Second)
	defer cancel()
	res, err := cdp.Call(ctx, inst.browser, target.GetTargets, target.GetTargetsParams{})
	if err != nil {
		t.Fatalf("Target.getTargets: %v", err)
	}
	var out []*target.Info
	for _, info := range res.TargetInfos {
		if info.Type == "page" {
			out = append(out, info)
		}
	}
	return out
}

// heldCounts is how many held pages inst's routing keeps, and how many runs it watches.
func heldCounts(inst *instance) (tabs, runs int) {
	inst.held.mu.Lock()
	defer inst.held.mu.Unlock()
	return len(inst.held.tabs), len(inst.held.runs)
}

// current is p's running browser, with no reference kept (the test owns the pool).
func current(t testing.TB, p *Pool) *instance {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		t.Fatal("no browser runs")
	}
	return p.cur
}

// settled waits (a bound on hangs, not a speed) until the pool's browser has no page but
// its first blank tab and, with spare, the spare tab, routes nothing held and watches no
// run but the spare's, and fails with what is left otherwise.
func settled(t *testing.T, p *Pool, spare bool) {
	t.Helper()
	inst := current(t, p)
	keep, watched := 1, 0
	if spare {
		keep, watched = 2, 1
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		pages := pagesOf(t, inst)
		tabs, runs := heldCounts(inst)
		if len(pages) <= keep && tabs == 0 && runs == watched {
			return
		}
		if time.Now().After(deadline) {
			var urls []string
			for _, pg := range pages {
				urls = append(urls, pg.URL)
			}
			t.Fatalf("left behind: %d pages (want at most %d: %s), %d held pages routed to no run, %d runs watched (want %d)",
				len(pages), keep, strings.Join(urls, ", "), tabs, runs, watched)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// goroutinesBack waits (a bound on hangs) until no more goroutines run than base.
func goroutinesBack(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A page that opens 50 windows in a loop: the run watches 20, and every one of the 50 is
// let go, so each loads and tells its opener, which is then ready. A window left held
// would never load, and the opener would wait for it until the run's deadline.
func TestFiftyWindowsAreAllLetGo(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 1, NoSpareTab: true})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.html("/", `<!doctype html><title>Storm</title><div id=app></div><script>
let loaded = 0;
window.popped = () => { if (++loaded === 50) document.getElementById('app').dataset.ready = '1'; };
for (let i = 0; i < 50; i++) window.open('/pop?i=' + i, 'w' + i);
</script>`)
	s.html("/pop", `<!doctype html><title>Pop</title><script>console.error('pop ' + location.search);
addEventListener('load', () => opener.popped());</script>`)
	rep, took, err := visit(t, p, 40*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 40*time.Second)
	if err != nil || !rep.WaitForFound {
		t.Fatalf("err %v, found %v (the site saw %d of the 50 windows' pages); problems:\n%s",
			err, rep.WaitForFound, s.hitCount("/pop"), problems(rep))
	}
	if n := s.hitCount("/pop"); n != 50 {
		t.Errorf("the site saw %d of the 50 windows' pages", n)
	}
	if n := len(rep.ConsoleErrors); n != maxWindows {
		t.Errorf("%d console errors, want one from each of the %d windows watched:\n%s", n, maxWindows, problems(rep))
	}
	settled(t, p, false)
	for range 3 {
		if _, _, err := visit(t, p, 20*time.Second, &Visit{URL: s.URL + "/pop"}); err != nil {
			t.Fatalf("a run after the storm: %v", err)
		}
	}
	settled(t, p, false)
}

// A page that opens a window every few milliseconds until its run's deadline closes it:
// windows appear in the run's last moments and while its browser context is being closed,
// when no run watches them any more. None stays held or routed, and the next runs, whose
// own windows must be let go, are not held up.
func TestWindowsOpenedAsTheRunEnds(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 1, NoSpareTab: true})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.html("/storm", `<!doctype html><title>Storm</title><script>
let i = 0;
setInterval(() => window.open('/pop?i=' + (i++), '_blank'), 5);
</script>`)
	s.html("/pop", `<!doctype html><title>Pop</title>`)
	s.html("/", openerPage("/pay", "window"))
	s.html("/pay", `<!doctype html><title>Pay</title><script>console.error('declined');
opener.document.getElementById('app').dataset.ready = '1';</script>`)
	for round := range 3 {
		_, took, _ := visit(t, p, 3*time.Second, &Visit{URL: s.URL + "/storm", WaitFor: "#never"})
		checkEnded(t, took, 3*time.Second)
		t.Logf("round %d: the site saw %d windows so far", round, s.hitCount("/pop"))
		rep, took, err := visit(t, p, 15*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
		checkEnded(t, took, 15*time.Second)
		if err != nil || !rep.WaitForFound || len(rep.ConsoleErrors) != 1 {
			t.Fatalf("round %d, the run after the storm: err %v, found %v, problems:\n%s", round, err, rep.WaitForFound, problems(rep))
		}
	}
	settled(t, p, false)
}

// A run cancelled, or out of time, while its tab is being opened and held: nothing of it
// stays routed, no goroutine stays behind, no page is left, and the pool runs the next 20
// runs as before.
func TestRunsCutShortWhileTheirTabOpens(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 2, NoSpareTab: true})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.html("/", openerPage("/pay", "load"))
	s.html("/pay", `<!doctype html><title>Pay</title>`)
	if _, _, err := visit(t, p, 20*time.Second, &Visit{URL: s.URL + "/"}); err != nil {
		t.Fatal(err)
	}
	settled(t, p, false)
	base := runtime.NumGoroutine()

	for i := range 24 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		after := time.Duration(i%12) * 40 * time.Millisecond
		if i < 12 {
			// Out of time: the open's own limit ends it, wherever it is.
			cancel()
			ctx, cancel = context.WithTimeout(context.Background(), after+time.Millisecond)
		} else {
			time.AfterFunc(after, cancel)
		}
		_, err := p.Visit(ctx, &Visit{URL: s.URL + "/"})
		cancel()
		t.Logf("cut after %s: %v", after, err)
	}
	for i := range 20 {
		rep, took, err := visit(t, p, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
		checkEnded(t, took, 20*time.Second)
		if err != nil || !rep.WaitForFound {
			t.Fatalf("run %d after the cut ones: err %v, found %v", i, err, rep.WaitForFound)
		}
	}
	settled(t, p, false)
	goroutinesBack(t, base)
}

// heldWindow opens a tab in p's browser whose window stays held (a watch that never lets
// it go), and returns once Chromium reported the window held.
func heldWindow(t *testing.T, p *Pool, s *site) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.release(inst) })
	a := newTab(inst)
	a.open(spareLimit)
	if a.err != nil {
		t.Fatal(a.err)
	}
	t.Cleanup(a.close)
	held := make(chan target.ID, 1)
	stop := inst.held.watch(chromedp.FromContext(a.ctx).BrowserContextID, func(info *target.Info) {
		if info.TargetID != a.target.TargetID {
			select {
			case held <- info.TargetID:
			default:
			}
		}
	})
	t.Cleanup(stop)
	go func() { _ = chromedp.Do(a.ctx, chromedp.Navigate(s.URL+"/a")) }()
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the window was never reported held")
	}
}

// Chromium's renderer, then the browser itself, killed while a window is held: the runs
// after recover as after any crash (the same browser after a renderer, a new one after the
// browser), and their own windows are let go.
func TestCrashWhileAWindowIsHeld(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 2, NoSpareTab: true})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.html("/a", `<!doctype html><title>A</title><script>window.open('/a-pay', 'pay');</script>`)
	s.html("/a-pay", `<!doctype html><title>A pays</title>`)
	s.html("/", openerPage("/pay", "window"))
	s.html("/pay", `<!doctype html><title>Pay</title><script>console.error('declined');
opener.document.getElementById('app').dataset.ready = '1';</script>`)
	next := func(what string) {
		t.Helper()
		for i := range 3 {
			rep, took, err := visit(t, p, 30*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
			checkEnded(t, took, 30*time.Second)
			if err != nil || !rep.WaitForFound || len(rep.ConsoleErrors) != 1 {
				t.Fatalf("run %d after %s: err %v, found %v, problems:\n%s", i, what, err, rep.WaitForFound, problems(rep))
			}
		}
	}

	t.Run("renderer", func(t *testing.T) {
		heldWindow(t, p, s)
		pid := p.BrowserPID()
		killed := 0
		for _, r := range descendants(pid, "--type=renderer") {
			if syscall.Kill(r, syscall.SIGKILL) == nil {
				killed++
			}
		}
		if killed == 0 {
			t.Fatal("found no renderer process to kill")
		}
		next("killing the renderers of a held window")
		if p.BrowserPID() != pid {
			t.Errorf("a renderer crash should not cost the browser (pid %d, now %d)", pid, p.BrowserPID())
		}
	})
	t.Run("browser", func(t *testing.T) {
		heldWindow(t, p, s)
		pid := p.BrowserPID()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		next("killing the browser")
		if np := p.BrowserPID(); np == pid || np == 0 {
			t.Errorf("browser pid %d after the kill (was %d)", np, pid)
		}
	})
	settled(t, p, false)
}

// The spare tab is held like any new page, and let go once its recorder listens: it holds
// nothing routed, loads when a run takes it, and a spare never used (the pool closed) leaves
// no goroutine and no process.
func TestTheSpareTabIsLetGoAndLeavesNothing(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", openerPage("/pay", "window"))
	s.html("/pay", `<!doctype html><title>Pay</title><script>console.error('declined');
opener.document.getElementById('app').dataset.ready = '1';</script>`)
	base := runtime.NumGoroutine()
	p := NewPool(Options{Concurrency: 1})
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// spare waits for the spare tab to be open: it is opened once a visit's tab is closed,
	// after the visit returned.
	spare := func() *tab {
		t.Helper()
		for {
			p.mu.Lock()
			sp := p.spare
			p.mu.Unlock()
			if sp != nil {
				return sp
			}
			select {
			case <-ctx.Done():
				t.Fatal("no spare tab was opened")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	opened := func(sp *tab) *tab {
		t.Helper()
		select {
		case <-sp.ready:
		case <-ctx.Done():
			t.Fatal("the spare tab never opened")
		}
		if sp.err != nil {
			t.Fatal(sp.err)
		}
		return sp
	}
	for i := range 3 {
		opened(spare())
		if tabs, runs := heldCounts(current(t, p)); tabs != 0 || runs != 1 {
			t.Errorf("with the spare open: %d held pages routed to no run, %d runs watched (want 0, 1)", tabs, runs)
		}
		var took []string
		v := &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]", Logf: func(f string, a ...any) {
			if line := fmt.Sprintf(f, a...); strings.Contains(line, "ahead of need") {
				took = append(took, line)
			}
		}}
		rep, d, err := visit(t, p, 20*time.Second, v)
		checkEnded(t, d, 20*time.Second)
		if err != nil || !rep.WaitForFound || len(rep.ConsoleErrors) != 1 {
			t.Fatalf("run %d on a spare tab: err %v, found %v, problems:\n%s", i, err, rep.WaitForFound, problems(rep))
		}
		if len(took) != 1 {
			t.Fatalf("run %d did not take the spare tab", i)
		}
	}
	opened(spare())
	settled(t, p, true)
	pid := p.BrowserPID()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("Chromium (pid %d) after Close: %v", pid, err)
	}
	goroutinesBack(t, base)
}

// browserContexts is how many browser contexts inst's browser has, its default one aside.
func browserContexts(t testing.TB, inst *instance) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(inst.ctx, 10*time.Second)
	defer cancel()
	res, err := cdp.Call(ctx, inst.browser, target.GetBrowserContexts, cdp.Empty{})
	if err != nil {
		t.Fatalf("Target.getBrowserContexts: %v", err)
	}
	return len(res.BrowserContextIDs)
}

// Runs cut by their deadline while Chromium creates their tab's browser context (the
// browser, stopped with SIGSTOP, answers only after the run gave up, as a loaded one
// does): each context Chromium then creates is disposed of once its creation returns, so
// the count of browser contexts comes back to what it was, and the pool runs on.
func TestAnOpeningCutWhileItsContextIsCreated(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{Concurrency: 1, NoSpareTab: true})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.html("/", openerPage("/pay", "window"))
	s.html("/pay", `<!doctype html><title>Pay</title><script>console.error('declined');
opener.document.getElementById('app').dataset.ready = '1';</script>`)
	s.html("/plain", `<!doctype html><title>Plain</title>`)
	if _, _, err := visit(t, p, 20*time.Second, &Visit{URL: s.URL + "/plain"}); err != nil {
		t.Fatal(err)
	}
	settled(t, p, false)
	inst := current(t, p)
	base := browserContexts(t, inst)
	pid := p.BrowserPID()
	const cuts = 3
	for i := range cuts {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		// Below a second: a cut this short does not count towards replacing the browser.
		_, took, err := visit(t, p, 400*time.Millisecond, &Visit{URL: s.URL + "/"})
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		checkEnded(t, took, 400*time.Millisecond)
		if err == nil {
			t.Fatalf("cut %d: a run whose browser was stopped succeeded", i)
		}
		t.Logf("cut %d: %v", i, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for n := browserContexts(t, inst); n != base; n = browserContexts(t, inst) {
		if time.Now().After(deadline) {
			t.Fatalf("%d browser contexts after %d runs cut while their context was created, %d before", n, cuts, base)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep, took, err := visit(t, p, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil || !rep.WaitForFound || len(rep.ConsoleErrors) != 1 {
		t.Fatalf("the run after the cut ones: err %v, found %v, problems:\n%s", err, rep.WaitForFound, problems(rep))
	}
	if p.BrowserPID() != pid {
		t.Errorf("the browser was replaced (pid %d, now %d)", pid, p.BrowserPID())
	}
	settled(t, p, false)
	if n := browserContexts(t, inst); n != base {
		t.Errorf("%d browser contexts at the end, %d before", n, base)
	}
}
