package browser

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Which Chromium, in the README's order: browser.path, $VIGIL_BROWSER, Debian's binary
// behind its wrapper, then the usual names on PATH. A path that is set but does not work
// is an error, never a silent fallback.
func TestFindOrder(t *testing.T) {
	if want := []string{"/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}; !slices.Equal(candidates, want) {
		t.Errorf("candidates %v, want the README's order %v", candidates, want)
	}
	dir := t.TempDir()
	exe := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	configured, fromEnv := exe("configured"), exe("from-env")
	exe("chromium-browser")
	exe("google-chrome")
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) { return v, k == EnvPath && v != "" }
	}
	t.Setenv("PATH", dir)
	saved := candidates
	t.Cleanup(func() { candidates = saved })
	candidates = []string{filepath.Join(dir, "no-such-binary"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

	for _, c := range []struct {
		name, configured, env, want string
	}{
		{"browser.path first", configured, fromEnv, configured},
		{"then VIGIL_BROWSER", "", fromEnv, fromEnv},
		{"then the candidates in order", "", "", filepath.Join(dir, "chromium-browser")},
	} {
		if got, err := Find(c.configured, env(c.env)); err != nil || got != c.want {
			t.Errorf("%s: Find = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	for _, c := range []struct{ name, configured, env, source string }{
		{"a broken browser.path", filepath.Join(dir, "missing"), fromEnv, "browser.path"},
		{"a broken VIGIL_BROWSER", "", filepath.Join(dir, "missing"), EnvPath},
	} {
		got, err := Find(c.configured, env(c.env))
		var nf *NotFoundError
		if !errors.As(err, &nf) || nf.Source != c.source || !strings.Contains(err.Error(), "apt-get install -y chromium") {
			t.Errorf("%s: Find = %q, %v; want an error from %s with the install hint, no fallback", c.name, got, err, c.source)
		}
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := Find("", env("")); !errors.Is(err, ErrNotFound) {
		t.Errorf("no Chromium anywhere: %v", err)
	}
}

// cmdline is a process's command line.
func cmdline(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// The flags the README lists are the ones Chromium gets, with a fresh profile;
// browser.flags adds a switch, turns one off, and adds to --disable-features.
func TestChromiumFlags(t *testing.T) {
	needBrowser(t)
	has := func(args []string, f string) bool {
		return slices.ContainsFunc(args, func(a string) bool { return a == f || strings.HasPrefix(a, f+"=") })
	}
	value := func(args []string, f string) string {
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, f+"="); ok {
				return v
			}
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := shared.Start(ctx); err != nil {
		t.Fatal(err)
	}
	args := cmdline(t, shared.BrowserPID())
	for _, f := range []string{"--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-quic", "--disable-site-isolation-trials"} {
		if !has(args, f) {
			t.Errorf("Chromium runs without %s: %q", f, args)
		}
	}
	features := strings.Split(value(args, "--disable-features"), ",")
	for _, f := range []string{"site-per-process", "IsolateOrigins"} {
		if !slices.Contains(features, f) {
			t.Errorf("--disable-features lacks %s: %v", f, features)
		}
	}
	if profile := value(args, "--user-data-dir"); profile == "" || !strings.HasPrefix(profile, os.TempDir()) {
		t.Errorf("profile %q: want a fresh one in %s", profile, os.TempDir())
	}

	p := NewPool(Options{NoSpareTab: true, Flags: []string{"--lang=de", "--disable-quic=false", "--disable-features=Translate,AutofillServerCommunication"}})
	t.Cleanup(func() { p.Close() })
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	args = cmdline(t, p.BrowserPID())
	if value(args, "--lang") != "de" || has(args, "--disable-quic") {
		t.Errorf("browser.flags --lang=de --disable-quic=false: %q", args)
	}
	features = strings.Split(value(args, "--disable-features"), ",")
	if !slices.Contains(features, "AutofillServerCommunication") || !slices.Contains(features, "site-per-process") {
		t.Errorf("an operator's --disable-features replaced vigil's instead of adding to it: %v", features)
	}
}

// A wedged Chromium that /readyz (Pool.Check) found not answering three times in a row is
// replaced: the next visit passes in a new browser.
func TestHungBrowserFoundByReadinessIsReplaced(t *testing.T) {
	needBrowser(t)
	p := NewPool(Options{NoSpareTab: true})
	t.Cleanup(func() { p.Close() })
	s := newSite(t)
	s.html("/", `<!doctype html><title>ok</title><div id=app data-ready=1>ok</div>`)
	if _, _, err := visit(t, p, 20*time.Second, &Visit{URL: s.URL + "/"}); err != nil {
		t.Fatal(err)
	}
	pid := p.BrowserPID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT); _ = syscall.Kill(pid, syscall.SIGKILL) })
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := p.Check(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "does not answer") {
			t.Fatalf("readiness %d with the browser stopped: %v", i+1, err)
		}
	}
	rep, _, err := visit(t, p, 30*time.Second, &Visit{URL: s.URL + "/", WaitFor: "#app[data-ready]"})
	if err != nil || !rep.WaitForFound {
		t.Fatalf("the visit after three failed readiness checks: %v", err)
	}
	if np := p.BrowserPID(); np == pid || np == 0 {
		t.Errorf("browser pid %d after the hung one (%d) should have been replaced", np, pid)
	}
}
