package browser

// Launching Chromium for the pool: its flags, the process and the watch on it.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// start launches Chromium for at.
func (p *Pool) start(at *startAttempt) {
	defer p.bg.Done()
	inst, err := p.launch()
	p.mu.Lock()
	switch {
	case err != nil:
		at.err = err
	case p.closed:
		p.pids[inst.pid] = true
		inst.retired = true
		p.shutdownLocked(inst)
		at.err = ErrClosed
	default:
		p.cur = inst
		p.pids[inst.pid] = true
		p.bg.Go(func() { p.watch(inst) })
	}
	p.starting = nil
	p.mu.Unlock()
	close(at.done)
}

func (p *Pool) launch() (*instance, error) {
	path, err := Find(p.opts.Path, p.opts.LookupEnv)
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.DisableGPU, chromedp.ExecPath(path),
		// Outbound network is often closed where vigil runs, and a monitor should not phone
		// home: without these Chromium keeps retrying update, sync and QUIC connections.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		// Every frame in the page's own process, so that the page's session sees it all from
		// its first script: an iframe from another site (a checkout or widget served from
		// another domain) otherwise runs in a process of its own, and its exceptions, console
		// errors, failed requests and dialogs never reach the page's listeners.
		chromedp.Flag("disable-site-isolation-trials", true),
	)
	disabled := []string{"Translate", "BlinkGenPropertyTrees", "site-per-process", "IsolateOrigins"}
	for _, f := range p.opts.Flags {
		name, value := parseFlag(f)
		switch v, isString := value.(string); {
		case name == "":
		case name == "disable-features" && isString:
			// Added to vigil's list, not in its place: a feature turned off for the
			// operator's reasons must not turn site isolation back on.
			disabled = append(disabled, strings.Split(v, ",")...)
		default:
			opts = append(opts, chromedp.Flag(name, value))
		}
	}
	opts = append(opts, chromedp.Flag("disable-features", strings.Join(disabled, ",")))
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithBrowserOption(
		chromedp.WithBrowserLogf(func(string, ...any) {}),
		chromedp.WithBrowserErrorf(func(f string, a ...any) { p.log.Debug("chromium: " + fmt.Sprintf(f, a...)) }),
	))

	// The first Do must get the browser's own context: the browser lives as long as the
	// context of its first Do. The start is bounded from outside instead.
	stop := context.AfterFunc(p.closing, cancel)
	defer stop()
	timer := time.AfterFunc(p.opts.StartTimeout, cancel)
	defer timer.Stop()
	begin := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		allocCancel()
		if p.closing.Err() != nil {
			return nil, ErrClosed
		}
		if time.Since(begin) >= p.opts.StartTimeout {
			return nil, fmt.Errorf("starting Chromium (%s): no answer within %s; check that it runs: %s --headless --dump-dom about:blank", path, p.opts.StartTimeout, path)
		}
		return nil, fmt.Errorf("starting Chromium (%s): %w", path, err)
	}
	inst := &instance{ctx: ctx, cancel: cancel, allocCancel: allocCancel, started: time.Now()}
	if c := chromedp.FromContext(ctx); c != nil && c.Browser != nil {
		inst.browser = c.Browser
		if proc := c.Browser.Process(); proc != nil {
			inst.pid = proc.Pid
		}
		if err := holdNewPages(ctx, inst.browser, &inst.held); err != nil {
			cancel()
			allocCancel()
			return nil, fmt.Errorf("starting Chromium (%s): asking it to hold new pages until their run listens: %w", path, err)
		}
	}
	p.log.Info("browser started", "path", path, "pid", inst.pid, "took", time.Since(begin).Round(time.Millisecond))
	return inst, nil
}

// watch notices when a browser dies on its own, so the next visit starts a new one at once
// and the helper processes it left are reaped.
func (p *Pool) watch(inst *instance) {
	<-inst.ctx.Done()
	p.mu.Lock()
	expected := inst.down || p.closed
	if !expected {
		p.log.Warn("the browser exited; the next browser check starts a new one", "pid", inst.pid,
			"cause", context.Cause(inst.ctx))
		inst.retired = true
		p.dropSpareLocked(inst)
		if p.cur == inst {
			p.cur = nil
		}
		if inst.refs == 0 {
			p.shutdownLocked(inst)
		}
	}
	p.mu.Unlock()
}

// parseFlag turns "--name=value" or "--name" into a chromedp flag; "false" and "true"
// become booleans so a default can be switched off.
func parseFlag(f string) (string, any) {
	f = strings.TrimLeft(strings.TrimSpace(f), "-")
	name, value, hasValue := strings.Cut(f, "=")
	if !hasValue {
		return name, true
	}
	switch value {
	case "true":
		return name, true
	case "false":
		return name, false
	}
	return name, value
}
