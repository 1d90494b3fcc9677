package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/store"
)

// BenchmarkBoardEncode encodes the board of 1,000 checks with a week of history, a run in
// every five minutes of it (every bucket of every ring has runs), a part at a time as the
// agent saves it.
func BenchmarkBoardEncode(b *testing.B) {
	now := time.Now()
	bd := wholeBoard()
	for c := range 1000 {
		name := fmt.Sprintf("c%d", c)
		for at := now.Add(-7 * 24 * time.Hour); at.Before(now); at = at.Add(5 * time.Minute) {
			bd.add(name, at, 20*time.Millisecond, checks.Pass, now)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for range b.N {
		// As the agent saves it: a part at a time, each handed to the store and reused.
		n = 0
		if _, err := bd.encodeParts(store.BoardPart, func(part []byte) error { n += len(part); return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/1024, "KiB")
}
