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
