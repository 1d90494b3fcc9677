package vigiltest

import (
	"strings"
	"sync"
	"testing"
)

func TestBufferIsSafeAndCapped(t *testing.T) {
	t.Parallel()
	b := &Buffer{Max: 10}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("abc"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := b.String(); len(got) != 10 || strings.Trim(got, "abc") != "" {
		t.Errorf("buffer = %q; want 10 bytes of what was written", got)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cfg := LoadConfig(t, "", `checks: [{name: up, kind: http, request: {url: "${T}/"}}]`, "T=http://127.0.0.1:1")
	if len(cfg.Checks) != 1 || cfg.Checks[0].Name != "up" {
		t.Errorf("checks: %+v", cfg.Checks)
	}
}

// InFlight's peak is the most under way at once, counted from any number of goroutines.
func TestInFlight(t *testing.T) {
	var f InFlight
	const n = 8
	var entered, release sync.WaitGroup
	entered.Add(n)
	release.Add(1)
	var done sync.WaitGroup
	for range n {
		done.Go(func() {
			leave := f.Enter()
			entered.Done()
			release.Wait()
			leave()
		})
	}
	entered.Wait()
	if f.Now() != n || f.Peak() != n {
		t.Errorf("%d goroutines inside: now %d, peak %d", n, f.Now(), f.Peak())
	}
	release.Done()
	done.Wait()
	if f.Now() != 0 || f.Peak() != n {
		t.Errorf("all left: now %d, peak %d; want 0 and %d", f.Now(), f.Peak(), n)
	}
	f.ResetPeak()
	leave := f.Enter()
	leave()
	if f.Peak() != 1 {
		t.Errorf("after ResetPeak, one at a time: peak %d, want 1", f.Peak())
	}
}
