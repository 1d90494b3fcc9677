// Package vigiltest holds what the tests of several packages share: a buffer that a
// process or a logger writes while the test reads it, a config written to a temporary
// folder and loaded the way vigil loads one, and a count of what is under way at once. Test helpers that start real parts live in
// their own packages (promtest, jaegertest, alerting/loopback).
package vigiltest

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vigil-monitor/vigil/configs"
)

// Buffer is a bytes.Buffer safe for one writer and concurrent readers (a child process's
// output, a logger's), capped at Max bytes (0: 16 MiB) so a runaway writer cannot fill
// memory.
type Buffer struct {
	Max int
	mu  sync.Mutex
	b   bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := b.Max
	if limit <= 0 {
		limit = 16 << 20
	}
	if b.b.Len() < limit {
		b.b.Write(p[:min(len(p), limit-b.b.Len())])
	}
	return len(p), nil
}

// String is what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// WriteConfig writes yaml to a vigil.yaml in dir (a new temporary folder when "") and
// returns its path.
func WriteConfig(t testing.TB, dir, yaml string) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// LoadConfig writes yaml as WriteConfig does and loads it with environ as the whole
// environment (nil: none), failing the test on any problem.
func LoadConfig(t testing.TB, dir, yaml string, environ ...string) *configs.Config {
	t.Helper()
	if environ == nil {
		environ = []string{}
	}
	cfg, err := configs.Load(WriteConfig(t, dir, yaml), configs.Options{Environ: environ})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// InFlight counts what is under way at once (requests at a test server, runs a scheduler
// started) and the most that were at once.
type InFlight struct{ now, peak atomic.Int32 }

// Enter counts one more under way until leave is called.
func (f *InFlight) Enter() (leave func()) {
	n := f.now.Add(1)
	for {
		if p := f.peak.Load(); n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return func() { f.now.Add(-1) }
}

// Now is how many are under way.
func (f *InFlight) Now() int32 { return f.now.Load() }

// Peak is the most that were under way at once since the start or the last ResetPeak.
func (f *InFlight) Peak() int32 { return f.peak.Load() }

// ResetPeak starts counting the peak again from what is under way now.
func (f *InFlight) ResetPeak() { f.peak.Store(f.now.Load()) }
