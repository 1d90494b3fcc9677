package browser

// Preparing a visit's tab before any page script runs: viewport, cookies, first-party
// headers and a verification's revalidation of the page's documents. Opening the tab
// itself (a fresh isolated browser context with the error listeners) is in spare.go.

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// configureTab sets what this visit wants on its tab before the first navigation: the
// viewport, cookies and first-party headers (the error listeners were installed when the
// tab was opened).
func (vr *visitRun) configureTab() error {
	err := chromedp.Do(vr.tabCtx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if vp := vr.v.Viewport; vp.Width > 0 && vp.Height > 0 {
			if _, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
				Width: int64(vp.Width), Height: int64(vp.Height), DeviceScaleFactor: 1}); err != nil {
				return fmt.Errorf("setting the viewport: %w", err)
			}
		}
		if cookies := vr.cookies(); len(cookies) > 0 {
			if _, err := cdp.Call(ctx, t, network.SetCookies, network.SetCookiesParams{Cookies: cookies}); err != nil {
				return fmt.Errorf("setting cookies: %w", err)
			}
		}
		return nil
	}))
	if err == nil && (len(vr.v.Headers) > 0 || vr.v.revalidation() != nil) {
		err = vr.interceptHeaders()
	}
	if err != nil {
		if f := vr.fatal(err); f != nil {
			err = f
		}
		return fmt.Errorf("preparing the browser tab: %w", err)
	}
	return nil
}

// interceptHeaders adds the configured headers to first-party requests, and a
// verification's revalidation to the main frame's documents from those origins (Fetch
// domain). Revalidation alone pauses the documents only: the page's other requests go
// out untouched, with no round trip through vigil.
func (vr *visitRun) interceptHeaders() error {
	extra, revalidate := vr.v.Headers, vr.v.revalidation()
	var patterns []*fetch.RequestPattern
	seen := map[string]bool{}
	for _, st := range vr.steps {
		if st.Kind != StepNavigate {
			continue
		}
		if o := origin(st.URL); o != "" && !seen[o] {
			seen[o] = true
			p := &fetch.RequestPattern{URLPattern: o + "/*"}
			if len(extra) == 0 {
				p.ResourceType = network.ResourceTypeDocument
			}
			patterns = append(patterns, p)
		}
	}
	if len(patterns) == 0 {
		return nil
	}
	// Subscribe before enabling, so no paused request is missed: a paused request that is
	// never continued hangs the page.
	paused := chromedp.Events(vr.tabCtx, fetch.RequestPaused)
	t, rec := vr.target, vr.rec
	vr.p.bg.Go(func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			add := extra
			if revalidate != nil && rec.mainFrameDocument(ev.ResourceType, ev.FrameID) {
				add = make(map[string]string, len(extra)+len(revalidate))
				maps.Copy(add, extra)
				maps.Copy(add, revalidate)
			}
			cont := fetch.ContinueRequestParams{RequestID: ev.RequestID}
			if len(add) > 0 {
				cont.Headers = mergeHeaders(ev.Request, add)
			}
			_, _ = cdp.Call(vr.tabCtx, t, fetch.ContinueRequest, cont)
		}
	})
	return chromedp.Do(vr.tabCtx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, fetch.Enable, fetch.EnableParams{Patterns: patterns})
		return err
	}))
}

func mergeHeaders(req *network.Request, extra map[string]string) []*fetch.HeaderEntry {
	var out []*fetch.HeaderEntry
	if req != nil {
		for k, v := range req.Headers {
			if _, override := lookupFold(extra, k); override {
				continue
			}
			out = append(out, &fetch.HeaderEntry{Name: k, Value: fmt.Sprint(v)})
		}
	}
	for k, v := range extra {
		out = append(out, &fetch.HeaderEntry{Name: k, Value: v})
	}
	return out
}

func lookupFold(m map[string]string, key string) (string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

func (vr *visitRun) cookies() []*network.CookieParam {
	first := ""
	for _, st := range vr.steps {
		if st.Kind == StepNavigate {
			first = st.URL
			break
		}
	}
	var out []*network.CookieParam
	for _, c := range vr.v.Cookies {
		cp := &network.CookieParam{Name: c.Name, Value: c.Value, Path: c.Path}
		if c.Domain != "" {
			cp.Domain = c.Domain
			if cp.Path == "" {
				cp.Path = "/"
			}
		} else {
			cp.URL = first
		}
		out = append(out, cp)
	}
	return out
}
