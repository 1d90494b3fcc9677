package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memoryCgroup makes a cgroup v1 memory cgroup under the test's own, limited to limit
// bytes, and returns its cgroup.procs file; the test is skipped where it cannot (not
// root, no v1 memory controller, a read-only cgroup filesystem).
func memoryCgroup(t *testing.T, limit int64) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip("no /proc/self/cgroup:", err)
	}
	own := ""
	for _, line := range strings.Split(string(b), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && strings.Contains(","+parts[1]+",", ",memory,") {
			own = parts[2]
		}
	}
	if own == "" {
		t.Skip("no cgroup v1 memory controller here")
	}
	dir := filepath.Join("/sys/fs/cgroup/memory", own, fmt.Sprintf("vigil-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skip("cannot make a memory cgroup here:", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil { // empty once the agent is gone
			t.Errorf("removing the test's cgroup: %v", err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(fmt.Sprint(limit)), 0o644); err != nil {
		t.Skip("cannot limit a memory cgroup here:", err)
	}
	return filepath.Join(dir, "cgroup.procs")
}

// An agent in a container with a memory limit sets Go's soft limit to 0.9 of it, or to
// the share --memory-limit-ratio gives; GOMEMLIMIT wins, and 0 turns it off. Read back
// from the agent's own go_gc_gomemlimit_bytes.
func TestAgentMemoryLimitFromCgroup(t *testing.T) {
	const limit = 256 << 20
	procs := memoryCgroup(t, limit)
	_, cfg := gateSetup(t)
	gomemlimit := regexp.MustCompile(`(?m)^go_gc_gomemlimit_bytes (\S+)$`)
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want float64
		log  string
	}{
		{"default ratio", nil, nil, 241591910, "container_limit_bytes=268435456"}, // 0.9 of it
		{"a ratio given", nil, []string{"--memory-limit-ratio", "0.5"}, limit / 2, "go_limit_bytes=134217728"},
		{"GOMEMLIMIT wins", []string{"GOMEMLIMIT=100MiB"}, nil, 100 << 20, "GOMEMLIMIT is set"},
		{"turned off", nil, []string{"--memory-limit-ratio", "0"}, math.MaxInt64, "turned off"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := freeAddr(t)
			args := append([]string{"-c", `echo $$ > "$0" && exec "$@"`, procs, vigilBinary(t), "agent", "-c", cfg, "--listen", addr, "--log-level", "debug"}, c.args...)
			cmd := exec.Command("sh", args...) // into the cgroup before vigil starts
			cmd.Env = append(os.Environ(), c.env...)
			p := runAgentCmd(t, cmd, addr)
			_, body := p.get("/metrics")
			m := gomemlimit.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("no go_gc_gomemlimit_bytes in /metrics")
			}
			if got, err := strconv.ParseFloat(m[1], 64); err != nil || got != c.want {
				t.Errorf("go_gc_gomemlimit_bytes %s, want %.0f", m[1], c.want)
			}
			t.Logf("reliability: in a cgroup limited to 256 MiB, %s (%s): go_gc_gomemlimit_bytes %s", c.name, strings.Join(append(c.env, c.args...), " "), m[1])
			if !strings.Contains(p.logs.String(), c.log) {
				t.Errorf("the log does not say %q:\n%s", c.log, p.logs.String())
			}
			if code := p.terminate(); code != 0 {
				t.Errorf("exit code %d", code)
			}
		})
	}

	// A pod resized in place: the agent follows its container's new limit.
	t.Run("resized", func(t *testing.T) {
		addr := freeAddr(t)
		cmd := exec.Command("sh", "-c", `echo $$ > "$0" && exec "$@"`, procs, vigilBinary(t), "agent", "-c", cfg, "--listen", addr)
		p := runAgentCmd(t, cmd, addr)
		if err := os.WriteFile(filepath.Join(filepath.Dir(procs), "memory.limit_in_bytes"), []byte(fmt.Sprint(512<<20)), 0o644); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute) // the agent reads it every 10 s
		for {
			_, body := p.get("/metrics")
			if m := gomemlimit.FindStringSubmatch(body); m != nil {
				if v, _ := strconv.ParseFloat(m[1], 64); v == 483183820 { // 0.9 of 512 MiB
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("go_gc_gomemlimit_bytes did not follow the new limit:\n%s", p.logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !strings.Contains(p.logs.String(), "the container's memory limit changed") {
			t.Errorf("the change is not logged:\n%s", p.logs.String())
		}
		t.Logf("reliability: the cgroup's limit raised to 512 MiB while the agent runs: go_gc_gomemlimit_bytes 483183820")
	})

	// A ratio that is not a share is a usage error, before anything starts.
	out, err := exec.Command(vigilBinary(t), "agent", "-c", cfg, "--memory-limit-ratio", "1.5").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--memory-limit-ratio") {
		t.Errorf("ratio 1.5: %v\n%s", err, out)
	}
}

// The agent paces the collector from its heap unless --gc-percent fixes it, and GOGC wins
// over both; a negative percentage is a usage error. Read back from the agent's own
// go_gc_gogc_percent: a paced agent starts at 50, then shows the pace's decisions, each
// from 50 to 100 (memlimit's tests hold which: this test's own scrapes are part of what
// the agent allocates).
func TestAgentGCPercent(t *testing.T) {
	_, cfg := gateSetup(t)
	gogc := regexp.MustCompile(`(?m)^go_gc_gogc_percent (\S+)$`)
	decided := regexp.MustCompile(`the collector's percentage follows the heap" gc_percent=(\d+)`)
	start := func(t *testing.T, env, args []string) *agentProc {
		addr := freeAddr(t)
		cmd := exec.Command(vigilBinary(t), append([]string{"agent", "-c", cfg, "--listen", addr, "--log-level", "debug"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		if len(env) == 0 { // not the test's own GOGC, if it has one
			cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, "GOGC=") })
		}
		return runAgentCmd(t, cmd, addr)
	}
	percent := func(t *testing.T, p *agentProc) string {
		_, body := p.get("/metrics")
		m := gogc.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no go_gc_gogc_percent in /metrics")
		}
		return m[1]
	}
	stop := func(t *testing.T, p *agentProc) {
		if code := p.terminate(); code != 0 {
			t.Errorf("exit code %d", code)
		}
	}

	t.Run("paced", func(t *testing.T) {
		p := start(t, nil, nil)
		if got := percent(t, p); got != "50" && !decided.MatchString(p.logs.String()) {
			t.Errorf("go_gc_gogc_percent %s before the first decision, want 50", got)
		}
		// The first decision needs a collection, which a small agent reaches as it is
		// scraped; then the gauge is the last decision.
		var got string
		var last []string
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			got = percent(t, p)
			if all := decided.FindAllStringSubmatch(p.logs.String(), -1); len(all) > 0 {
				if last = all[len(all)-1]; last[1] == got {
					break
				}
			}
		}
		if last == nil || last[1] != got {
			t.Fatalf("go_gc_gogc_percent %s, the pace's last decision %v:\n%s", got, last, p.logs.String())
		}
		if n, _ := strconv.Atoi(got); n < 50 || n > 100 {
			t.Errorf("paced at %d, outside 50-100", n)
		}
		stop(t, p)
	})
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
		log  string
	}{
		{"a percentage given", nil, []string{"--gc-percent", "80"}, "80", ""},
		{"GOGC wins", []string{"GOGC=120"}, []string{"--gc-percent", "80"}, "120", "GOGC is set"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, c.env, c.args)
			if got := percent(t, p); got != c.want {
				t.Errorf("go_gc_gogc_percent %s, want %s", got, c.want)
			}
			stop(t, p)
			if !strings.Contains(p.logs.String(), c.log) || decided.MatchString(p.logs.String()) {
				t.Errorf("the log does not say %q, or the percentage was paced:\n%s", c.log, p.logs.String())
			}
		})
	}
	for _, bad := range []string{"-5", "fifty"} {
		out, err := exec.Command(vigilBinary(t), "agent", "-c", cfg, "--gc-percent", bad).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--gc-percent") {
			t.Errorf("--gc-percent %s: %v\n%s", bad, err, out)
		}
	}
}
