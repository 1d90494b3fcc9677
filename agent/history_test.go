package agent

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// An agent restarted on a store with history reads it while its checks already run. Until
// it has, its pages and badges say so: the overview has a banner, the uptime figures whose
// window reaches back past what was read are in italics with the reason on hover, the
// check page says the same, and the uptime and response badges say "reading history"
// rather than a week's uptime from the runs read so far. Once read, none of that is left
// and the figures are the history's.
func TestPagesSayWhileHistoryIsRead(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	var recs []*store.RunRecord
	for i := range 100 { // three days of runs, one failed: 99.00% over the week
		o := "pass"
		if i == 50 {
			o = "fail"
		}
		recs = append(recs, &store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-time.Duration(i+1) * 40 * time.Minute),
			Duration: 20 * time.Millisecond, Outcome: o, Location: "local"},
			// another location's run of the check, in a store it shares: not this agent's view
			&store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-time.Duration(i+1) * 40 * time.Minute), Outcome: "fail", Location: "us-east"})
	}
	if err := st.SaveRuns(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	slow := &slowHistory{SQLite: st, slices: make(chan chan struct{})}
	tg := newTarget(t)
	l := launch(t, dir, webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 2"}.String(), Options{Store: slow})
	t.Cleanup(func() {
		go func() { // the history is read to its end, so that the agent stops
			for next := range slow.slices {
				close(next)
			}
		}()
		if err := l.stop(); err != nil {
			t.Errorf("agent.Run: %v", err)
		}
		close(slow.slices)
	})
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(l.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	partialCell := regexp.MustCompile(`<td class="num up [a-z]+ partial" title="counts the runs from \d\d:\d\d:\d\dZ on: the store&#39;s history before is still being read">`)

	close(<-slow.slices) // the first five minutes read
	next := <-slow.slices
	page := get("/")
	if !strings.Contains(page, `<div class="banner history" role="status"><strong>Uptime in part</strong>Figures in italics counts the runs from`) {
		t.Errorf("the overview has no banner while the history is read:\n%s", page)
	}
	if n := len(partialCell.FindAllString(page, -1)); n != 3 {
		t.Errorf("%d uptime cells marked partial while the history is read; want home's three:\n%s", n, page)
	}
	if p := get("/checks/home"); !strings.Contains(p, `id="history"`) || !strings.Contains(p, "still being read") {
		t.Errorf("the check page does not say its figures count part of their windows:\n%s", p)
	}
	for _, w := range []string{"1h", "24h", "7d"} {
		if b := get("/badges/home/uptime.svg?window=" + w); !strings.Contains(b, ">reading history<") {
			t.Errorf("the %s uptime badge while the history is read: %s", w, b)
		}
	}
	if b := get("/badges/home/shields.json?metric=response&window=7d"); !regexp.MustCompile(`"message":\s*"reading history"`).MatchString(b) {
		t.Errorf("the response time endpoint while the history is read: %s", b)
	}

	close(next)
	for read := false; !read; {
		select {
		case next := <-slow.slices:
			close(next)
		case <-l.a.HistoryRead():
			read = true
		case <-time.After(time.Minute):
			t.Fatal("the history was not read in a minute")
		}
	}
	page = get("/")
	if strings.Contains(page, `class="banner history"`) || strings.Contains(page, ` partial"`) {
		t.Errorf("the overview still says the history is being read once it is:\n%s", page)
	}
	if b := get("/badges/home/uptime.svg?window=7d"); !regexp.MustCompile(`>99\.\d\d%<`).MatchString(b) {
		t.Errorf("the 7d uptime badge once the history is read: %s; want 99.xx%%", b)
	}
	if b := get("/badges/home/uptime.svg?window=24h"); !regexp.MustCompile(`>(99\.\d\d|100)%<`).MatchString(b) {
		t.Errorf("the 24h uptime badge once the history is read: %s", b)
	}
}
