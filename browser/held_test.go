package browser

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
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
