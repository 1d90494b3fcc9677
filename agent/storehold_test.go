package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
	"github.com/vigil-monitor/vigil/store"
)

// A second agent started on the SQLite file another agent runs on refuses to run, naming
// who holds it; one started while the first is still stopping takes the file once it has
// stopped. Two agents on one file ran every check twice, and the second, under the same
// name, took back the notifications the first was delivering.
func TestASecondAgentOnTheSameFileRefuses(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	yaml := webConfig{url: tg.srv.URL, verify: "interval: 1h, count: 2", every: "1s"}.String()
	first := startAgent(t, dir, yaml)

	second := func(wait time.Duration) (*Agent, *vigiltest.Buffer, chan error, func()) {
		cfg, err := configs.Load(first.cfgPath, configs.Options{Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(t.Context(), filepath.Join(dir, "vigil.db"))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		logs := &vigiltest.Buffer{}
		a, err := New(Options{Config: cfg, Store: st, Listener: ln, Registry: prometheus.NewRegistry(), NoStartRuns: true,
			Logger: slog.New(slog.NewTextHandler(logs, nil)), StoreHoldWait: wait})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		t.Cleanup(func() { st.Close() })
		return a, logs, done, cancel
	}

	_, logs, done, stop := second(500 * time.Millisecond)
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
			t.Errorf("the second agent's Run: %v (want it refused as in use, naming this process)", err)
		}
		if !strings.Contains(logs.String(), "held by another agent") {
			t.Errorf("the second agent did not say it waited:\n%s", logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a second agent on the same SQLite file ran beside the first")
	}
	stop()

	// One that waits long enough takes over once the first has stopped.
	a, logs, done, stop := second(time.Minute)
	defer stop()
	eventually(t, 10*time.Second, "the second agent waiting", func() bool { return strings.Contains(logs.String(), "held by another agent") })
	select {
	case err := <-done:
		t.Fatalf("the waiting agent's Run ended while the first held the file: %v", err)
	default:
	}
	first.stop()
	select {
	case <-a.started:
	case err := <-done:
		t.Fatalf("the waiting agent did not take the file the first left: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting agent did not start within 30s of the first stopping")
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("the second agent's Run: %v", err)
	}
}
