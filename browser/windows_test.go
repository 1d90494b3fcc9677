package browser

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// openerPage opens path in a new window and marks #app ready when: "now", "load" (a
// little after the window's load event) or "window" (never: the window does it).
func openerPage(path, when string) string {
	return `<!doctype html><title>Checkout</title><div id=app></div><script>
const ready = () => { document.getElementById('app').dataset.ready = '1'; };
const pay = window.open('` + path + `', 'pay');
switch ('` + when + `') {
case 'now': ready(); break;
case 'load': pay.addEventListener('load', () => setTimeout(ready, 500)); break;
}
</script>`
}

// A checkout whose payment window throws, logs an error, misses a script and alerts is
// broken though the checkout page itself is fine: all of it is the run's, named by the
// window's address, and the window's dialog is answered so nothing stalls.
func TestProblemsInAWindowThePageOpens(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", openerPage("/pay", "window"))
	// The exception and console error come at once; the request and the dialog three
	// seconds after the window loaded, then the window tells its opener it is done (a
	// window whose first script does it all at once: TestAWindowIsSeenFromItsFirstMoment).
	s.html("/pay", `<!doctype html><title>Pay</title>
<script>console.error('3-D Secure unavailable');</script>
<script>addEventListener('load', () => setTimeout(() => {
  const s = document.createElement('script'); s.src = '/gone.js'; document.head.append(s);
  s.onerror = () => { alert('card declined'); opener.document.getElementById('app').dataset.ready = '1'; };
}, 3000));</script>
<script>var form = null;
form.submit();</script>`)
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	if !rep.WaitForFound {
		t.Fatalf("the window never loaded; got:\n%s", problems(rep))
	}
	source := "window " + s.URL + "/pay"
	if len(rep.Exceptions) != 1 || rep.Exceptions[0].Source != source || !strings.Contains(rep.Exceptions[0].Message, "submit") || rep.Exceptions[0].URL != s.URL+"/pay" || rep.Exceptions[0].Line != 8 {
		t.Fatalf("want the window's TypeError at /pay:8, once; got:\n%s", problems(rep))
	}
	if want := source + ": TypeError: "; !strings.HasPrefix(rep.Exceptions[0].String(), want) {
		t.Errorf("%q does not start with %q", rep.Exceptions[0].String(), want)
	}
	if c := rep.ConsoleErrors; len(c) != 1 || c[0].Source != source || c[0].Text != "3-D Secure unavailable" {
		t.Errorf("console errors: %+v", c)
	}
	if f := rep.FailedRequests; len(f) != 1 || f[0].Source != source || f[0].URL != s.URL+"/gone.js" || f[0].Status != 404 {
		t.Errorf("failed requests: %+v", f)
	}
	if d := rep.Dialogs; len(d) != 1 || d[0].Message != "card declined" || d[0].Accepted {
		t.Errorf("dialogs: %+v", d)
	}
	// The evidence is the page's: it is brought in front of its window for the picture.
	if len(rep.Screenshot) == 0 {
		t.Error("no screenshot of the page behind its window")
	}
}

// The passing counterparts: a window that loads cleanly adds nothing, and one whose
// document never answers neither fails nor holds up the run.
func TestWindowsThatAreFineOrNeverLoad(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", openerPage("/pay", "load"))
	s.html("/pay", `<!doctype html><title>Pay</title><script>console.log('ok');</script>`)
	rep, took, err := visit(t, shared, 20*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 20*time.Second)
	if err != nil || !rep.WaitForFound || len(rep.Problems()) != 0 || len(rep.Dialogs) != 0 {
		t.Fatalf("a clean window: err %v, found %v, problems:\n%s", err, rep.WaitForFound, problems(rep))
	}

	started := make(chan struct{}, 1)
	s.mux.HandleFunc("/hang", hang(started))
	s.html("/hangs", openerPage("/hang", "now"))
	rep, took, err = visit(t, shared, 8*time.Second, &Visit{URL: s.URL + "/hangs", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 8*time.Second)
	if err != nil || !rep.WaitForFound || len(rep.Problems()) != 0 {
		t.Fatalf("a window that never loads: err %v, found %v, problems:\n%s", err, rep.WaitForFound, problems(rep))
	}
	select {
	case <-started:
	default:
		t.Error("the window's document was never requested")
	}
}

// A payment window whose first script throws at once, then fetches a missing address,
// logs an error and alerts, all before any timer: vigil sees every bit of it, and the
// alert, shown while the window was still loading, stalls nothing. Chromium holds each new
// window before its first request until the run's session on it is ready, so nothing the
// window does comes before vigil listens. A checkout often opens its window blank, at the
// click (popup blockers allow no later), and sends it to the payment page once its own
// request answered: that later navigation is seen the same way.
func TestAWindowIsSeenFromItsFirstMoment(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/", openerPage("/pay", "window"))
	s.html("/blank-first", `<!doctype html><title>Checkout</title><div id=app></div><script>
const pay = window.open('', 'pay');
setTimeout(() => { pay.location = '/pay'; }, 300);
</script>`)
	s.html("/pay", `<!doctype html><title>Pay</title>
<script>null.submit();</script>
<script>fetch('/gone');
console.error('3-D Secure unavailable');
alert('card declined');
opener.document.getElementById('app').dataset.ready = '1';</script>`)
	for _, page := range []string{"/", "/blank-first"} {
		t.Run(page, func(t *testing.T) {
			rep, took, err := visit(t, shared, 15*time.Second, &Visit{URL: s.URL + page, WaitFor: "#app[data-ready]"})
			checkEnded(t, took, 15*time.Second)
			if err != nil {
				t.Fatalf("visit: %v", err)
			}
			if !rep.WaitForFound {
				t.Fatalf("the window's alert stalled it and its opener; got:\n%s", problems(rep))
			}
			source := "window " + s.URL + "/pay"
			if e := rep.Exceptions; len(e) != 1 || e[0].Source != source || !strings.Contains(e[0].Message, "submit") || e[0].Line != 2 {
				t.Errorf("want the window's TypeError at /pay:2, once; got:\n%s", problems(rep))
			}
			if c := rep.ConsoleErrors; len(c) != 1 || c[0].Source != source || c[0].Text != "3-D Secure unavailable" {
				t.Errorf("console errors: %+v", c)
			}
			if f := rep.FailedRequests; len(f) != 1 || f[0].Source != source || f[0].URL != s.URL+"/gone" || f[0].Status != 404 {
				t.Errorf("failed requests: %+v", f)
			}
			if d := rep.Dialogs; len(d) != 1 || d[0].Message != "card declined" || d[0].Accepted {
				t.Errorf("dialogs: %+v", d)
			}
		})
	}

	// The opener can also write into the window's blank first document at once: its
	// window.open returns only once the window is let go, so vigil is on the window when
	// that script throws, logs and alerts (the alert stops the window and its opener until
	// vigil answers it). Its requests: TestRequestsOfAWindowItsOpenerScripts.
	s.html("/written", `<!doctype html><title>Checkout</title><div id=app></div><script>
const pay = window.open('', 'pay');
pay.document.write('<script>console.error("3-D Secure unavailable"); alert("card declined"); null.submit();<\/script>');
document.getElementById('app').dataset.ready = '1';
</script>`)
	rep, took, err := visit(t, shared, 15*time.Second, &Visit{URL: s.URL + "/written", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 15*time.Second)
	if err != nil || !rep.WaitForFound {
		t.Fatalf("a window written into by its opener: err %v, found %v, problems:\n%s", err, rep.WaitForFound, problems(rep))
	}
	if e, c, d := rep.Exceptions, rep.ConsoleErrors, rep.Dialogs; len(e) != 1 || e[0].Source != "window" || !strings.Contains(e[0].Message, "submit") ||
		len(c) != 1 || c[0].Text != "3-D Secure unavailable" || len(d) != 1 || d[0].Message != "card declined" {
		t.Errorf("a window written into by its opener: dialogs %+v, problems:\n%s", d, problems(rep))
	}
}

// Chromium holds every new page of the shared browser until the run it belongs to lets it
// go: one run's held window must hold no other run. A's window is kept held (its run is
// slow to let it go) while B loads a page whose own window reports to B; only then is A's
// let go. The order the site saw is the proof: B's window loaded and B's run ended before
// A's window asked for its page.
func TestAHeldWindowHoldsNoOtherRun(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.html("/a", `<!doctype html><title>A</title><script>window.open('/a-pay', 'pay');</script>`)
	s.html("/a-pay", `<!doctype html><title>A pays</title>`)
	s.html("/b", openerPage("/b-pay", "window"))
	s.html("/b-pay", `<!doctype html><title>B pays</title><script>console.error('B declined');
opener.document.getElementById('app').dataset.ready = '1';</script>`)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := shared.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.release(inst)
	a := newTab(inst)
	a.open(spareLimit)
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.close()
	held := make(chan target.ID, 1)
	stop := inst.held.watch(chromedp.FromContext(a.ctx).BrowserContextID, func(info *target.Info) {
		if info.TargetID != a.target.TargetID {
			select { // on the browser connection's reader: it must not block
			case held <- info.TargetID:
			default:
			}
		}
	})
	defer stop()
	// The opener's load waits for its held window: navigate without waiting.
	go func() { _ = chromedp.Do(a.ctx, chromedp.Navigate(s.URL+"/a")) }()
	var window target.ID
	select {
	case window = <-held:
	case <-ctx.Done():
		t.Fatal("A's window was never reported held")
	}

	rep, took, err := visit(t, shared, 15*time.Second, &Visit{URL: s.URL + "/b", WaitFor: "#app[data-ready]"})
	checkEnded(t, took, 15*time.Second)
	if err != nil || !rep.WaitForFound {
		t.Fatalf("B, beside A's held window: err %v, found %v, problems:\n%s", err, rep.WaitForFound, problems(rep))
	}
	if c := rep.ConsoleErrors; len(c) != 1 || c[0].Text != "B declined" || c[0].Source != "window "+s.URL+"/b-pay" {
		t.Errorf("B's console errors: %+v", c)
	}
	if n := s.hitCount("/a-pay"); n != 0 {
		t.Fatalf("A's window asked for its page %d times while held", n)
	}

	go attachWindow(a.ctx, window, newRecorder())
	for s.hitCount("/a-pay") == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("A's window never loaded once let go")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A checkout that opens its payment window blank, at the click, and scripts it at once:
// writes a script into it that posts to the payment API, calls the window's own fetch, or
// sends it to a page. Chromium holds the window, and with it the opener's window.open
// (they share a process), until the run's session on it listens with its Network domain
// on: each request the window makes, answered 500 by the site, which records it, is the
// run's failed request, its method included (which only the request's own event tells).
func TestRequestsOfAWindowItsOpenerScripts(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	ready := `opener.app.dataset.ready = 1`
	s.mux.HandleFunc("/api/pay", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "payment service down", http.StatusInternalServerError)
	})
	s.mux.HandleFunc("/pay-down", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `<!doctype html><title>Down</title><script>`+ready+`</script>`)
	})
	for _, c := range []struct {
		name, script, source, method, url, typ string
	}{
		{"written", `pay.document.write('<script>fetch("/api/pay?via=written", {method: "POST"}).finally(() => { ` + ready + `; });<\/script>');`,
			"window", "POST", "/api/pay?via=written", "fetch"},
		{"window-fetch", `pay.fetch('/api/pay?via=window-fetch', {method: 'PUT'}).finally(() => { pay.eval("` + ready + `"); });`,
			"window", "PUT", "/api/pay?via=window-fetch", "fetch"},
		{"location", `pay.location = '/pay-down';`,
			"window " + s.URL + "/pay-down", "GET", "/pay-down", "document"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.html("/"+c.name, `<!doctype html><title>Checkout</title><div id=app></div><script>
const pay = window.open('', 'pay');
`+c.script+`
</script>`)
			rep, took, err := visit(t, shared, 15*time.Second, &Visit{URL: s.URL + "/" + c.name, WaitFor: "#app[data-ready]"})
			checkEnded(t, took, 15*time.Second)
			if err != nil || !rep.WaitForFound {
				t.Fatalf("err %v, found %v, problems:\n%s", err, rep.WaitForFound, problems(rep))
			}
			path, _, _ := strings.Cut(c.url, "?")
			if got := s.requestsTo(path); len(got) == 0 || got[len(got)-1].Method != c.method {
				t.Fatalf("the site did not get the window's %s %s", c.method, c.url)
			}
			f := rep.FailedRequests
			if len(f) != 1 || f[0].Source != c.source || f[0].Method != c.method || f[0].URL != s.URL+c.url || f[0].Status != 500 || f[0].Type != c.typ {
				t.Fatalf("want the window's %s %s answered 500 (%s), as %q, once; got:\n%s", c.method, c.url, c.typ, c.source, problems(rep))
			}
		})
	}
}

// Why the requests of a blank window its opener scripts are seen: the opener stays in its
// window.open while the window is held, even once a session is on the window, and goes on
// (and scripts the window) only once the window is let go.
func TestAnOpenerStaysInWindowOpenWhileItsWindowIsHeld(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	s.mux.HandleFunc("/api/pay", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "payment service down", http.StatusInternalServerError)
	})
	s.html("/a", `<!doctype html><title>A</title><script>
window.step = 'opening';
const pay = window.open('', 'pay');
window.step = 'opened';
pay.document.write('<script>fetch("/api/pay")<\/script>');
</script>`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := shared.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.release(inst)
	a := newTab(inst)
	a.open(spareLimit)
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.close()
	held := make(chan target.ID, 1)
	stop := inst.held.watch(chromedp.FromContext(a.ctx).BrowserContextID, func(info *target.Info) {
		if info.TargetID != a.target.TargetID {
			select { // on the browser connection's reader: it must not block
			case held <- info.TargetID:
			default:
			}
		}
	})
	defer stop()
	go func() { _ = chromedp.Do(a.ctx, chromedp.Navigate(s.URL+"/a")) }()
	var window target.ID
	select {
	case window = <-held:
	case <-ctx.Done():
		t.Fatal("the window was never reported held")
	}
	step := func() string {
		t.Helper()
		res, err := cdp.Call(ctx, a.target, runtime.Evaluate, runtime.EvaluateParams{Expression: "String(window.step)"})
		if err != nil {
			t.Fatalf("reading the opener's step: %v", err)
		}
		return strings.Trim(string(res.Result.Value), `"`)
	}
	// On the window, as a run is before it lets it go: attached, Network on.
	wctx, wcancel := chromedp.NewContext(a.ctx, chromedp.WithTargetID(window))
	defer wcancel()
	if err := chromedp.Do(wctx, chromedp.Func(func(context.Context, *chromedp.Target) error { return nil })); err != nil {
		t.Fatalf("attaching to the held window: %v", err)
	}
	time.Sleep(time.Second) // a window for the opener to go on in, if it could
	if got, n := step(), s.hitCount("/api/pay"); got != "opening" || n != 0 {
		t.Fatalf("while its window is held the opener is at %q and the site saw %d window requests; want \"opening\" and none", got, n)
	}
	if err := chromedp.Do(wctx, chromedp.Func(func(ctx context.Context, w *chromedp.Target) error {
		_, err := cdp.Call(ctx, w, runtime.RunIfWaitingForDebugger, cdp.Empty{})
		return err
	})); err != nil {
		t.Fatalf("letting the window go: %v", err)
	}
	for step() != "opened" || s.hitCount("/api/pay") == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("once the window was let go the opener is at %q and the site saw %d window requests", step(), s.hitCount("/api/pay"))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
