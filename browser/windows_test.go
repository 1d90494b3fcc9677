package browser

import (
	"strings"
	"testing"
	"time"
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
	// The exception and console error come at once (Chromium replays them to a session
	// that attaches late); the request and the dialog three seconds after the window loaded
	// (vigil's session sees those from the attach on, which on a loaded machine can come
	// well after the window opened), then the window tells its opener it is done.
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
