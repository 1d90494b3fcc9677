package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	t.Parallel()
	p := Policy{First: time.Second, Max: 5 * time.Minute}
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		9: 256 * time.Second, 10: 5 * time.Minute, 64: 5 * time.Minute, 1000: 5 * time.Minute} {
		if got := p.Delay(attempt); got != want {
			t.Errorf("Delay(%d) = %s; want %s", attempt, got, want)
		}
	}
	p.Jitter = true
	for attempt := 1; attempt < 70; attempt++ {
		exact := Policy{First: p.First, Max: p.Max}.Delay(attempt)
		if got := p.Delay(attempt); got < exact/2 || got > exact {
			t.Fatalf("jittered Delay(%d) = %s; want within [%s, %s]", attempt, got, exact/2, exact)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"999999999999", 24 * time.Hour, true}, // a day at most
		{"Mon, 07 Dec 2026 10:00:30 GMT", 30 * time.Second, true},
		{"Mon, 07 Dec 2026 09:59:00 GMT", 0, true}, // past
		{"Mon, 07 Dec 2027 10:00:00 GMT", 24 * time.Hour, true},
	} {
		if d, ok := RetryAfter(c.v, now); d != c.want || ok != c.ok {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", c.v, d, ok, c.want, c.ok)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "-1", "Mon, 07 Dec 2026 10:00:30 GMT", "", "1e9"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, v string) {
		if d, ok := RetryAfter(v, now); d < 0 || d > 24*time.Hour || (!ok && d != 0) {
			t.Errorf("RetryAfter(%q) = %v, %v", v, d, ok)
		}
	})
}
