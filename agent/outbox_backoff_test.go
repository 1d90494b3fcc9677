package agent

import (
	"testing"
	"time"
)

// The retry schedule WEBHOOKS.md states: exponential from 1 s, with jitter, at most 5
// minutes apart.
func TestOutboxBackoffSchedule(t *testing.T) {
	for range 50 {
		for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second,
			9: 256 * time.Second, 10: 5 * time.Minute, 40: 5 * time.Minute} {
			if d := outboxBackoff.Delay(attempt); d < want/2 || d > want {
				t.Fatalf("retry %d waits %s; want %s to %s", attempt, d, want/2, want)
			}
		}
	}
}
