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
