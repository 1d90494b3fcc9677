package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/binpages"
)

// The agent maps only the pages of its binary it runs (--lazy-binary-pages, the default):
// the same binary and config with it off holds more of the binary, and with it on the
// checks still run, through the drops.
func TestAgentLazyBinaryPages(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads Linux's /proc")
	}
	dir := t.TempDir()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == 0x01021994 || fs.Type == 0x858458f6 { // tmpfs, ramfs
		t.Skip("the temporary directory is in memory: its page cache cannot be dropped")
	}
	// A copy of the binary no other test's agent maps (a page another process maps stays
	// cached, and the kernel maps it around the pages run), written just before it runs.
	bin := filepath.Join(dir, "vigil")
	copyFile(t, vigilBinary(t), bin)

	var requests atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer target.Close()
	cfg := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
store: {dsn: %q}
checks:
  - {name: home, kind: http, every: 1s, request: {url: %q}, assert: ["status == 200"]}
`, filepath.Join(dir, "v.db"), target.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	passed := regexp.MustCompile(`(?m)^vigil_check_runs_total\{check="home",kind="http",result="pass"\} [1-9]`)
	failed := regexp.MustCompile(`(?m)^vigil_check_runs_total\{check="home",kind="http",result="(fail|error)"\} [1-9]`)
	dropped := regexp.MustCompile(`binary pages it no longer runs are unmapped" rss_file_bytes_before=(\d+) rss_file_bytes_after=(\d+)`)

	// rssFile runs the agent and reads its RssFile (KiB) twice: when it drops its pages again
	// after the start (with the flag on, as it logs it; the same time with it off), which
	// shows what the start's drop left mapped in the first seconds, and a while after,
	// with the check running on.
	rssFile := func(t *testing.T, args ...string) (first, later int) {
		addr := freeAddr(t)
		cmd := exec.Command(bin, append([]string{"agent", "-c", cfg, "--listen", addr, "--log-level", "debug"}, args...)...)
		p := runAgentCmd(t, cmd, addr)
		defer p.terminate()
		read := func() int {
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`RssFile:\s+(\d+) kB`).FindSubmatch(status)
			if m == nil {
				t.Fatalf("no RssFile in %s", status)
			}
			kb, _ := strconv.Atoi(string(m[1]))
			return kb
		}
		lazy := !strings.Contains(strings.Join(args, " "), "=false")
		if lazy && !strings.Contains(p.logs.String(), `the agent's binary is mapped as it runs" rss_file_bytes_before=`) {
			t.Fatalf("the agent did not drop its binary's pages as it started:\n%s", p.logs.String())
		}
		deadline := time.Now().Add(binpages.KeepFirst + 20*time.Second)
		if lazy {
			for time.Now().Before(deadline) && !dropped.MatchString(p.logs.String()) {
				time.Sleep(100 * time.Millisecond)
			}
			m := dropped.FindStringSubmatch(p.logs.String())
			if m == nil {
				t.Fatalf("the agent did not drop its binary's pages again %s after it listened:\n%s", binpages.KeepFirst, p.logs.String())
			}
			bytes, _ := strconv.Atoi(m[1])
			first = bytes >> 10
		} else {
			time.Sleep(binpages.KeepFirst)
			first = read()
			if dropped.MatchString(p.logs.String()) {
				t.Fatalf("--lazy-binary-pages=false, but the agent dropped its pages:\n%s", p.logs.String())
			}
		}
		// What stays mapped while the check runs on, once every page it runs has come back
		// (with the cached pages around it, where they are cached).
		time.Sleep(5 * time.Second)
		for n := requests.Load(); requests.Load() < n+2; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline.Add(30 * time.Second)) {
				t.Fatalf("the check stopped running:\n%s", p.logs.String())
			}
		}
		if code, body := p.get("/metrics"); code != 200 || !passed.MatchString(body) || failed.MatchString(body) {
			t.Fatalf("/metrics: %d, want the check's runs passed, none failed:\n%.3000s", code, body)
		}
		return first, read()
	}

	lazyFirst, lazy := rssFile(t) // first: from a copy just written, as a binary installed just before it starts
	kernelFirst, kernel := rssFile(t, "--lazy-binary-pages=false")
	t.Logf("the binary's pages mapped after %s: %d KiB lazily, %d KiB by the kernel; 5 s later: %d and %d KiB", binpages.KeepFirst, lazyFirst, kernelFirst, lazy, kernel)
	if lazyFirst*3 > kernelFirst*2 || lazy*3 > kernel*2 {
		t.Errorf("lazily the agent maps %d then %d KiB of its binary, the kernel %d then %d KiB: want at least a third less", lazyFirst, lazy, kernelFirst, kernel)
	}
}

// copyFile copies a file. Its pages are not written back yet when the agent starts, as
// when a binary is built or installed just before it runs.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
