// Package demo is `vigil demo`: a small sample app with a good and a broken version, and
// the script that deploys each and shows what vigil saw. The app is also what the end to
// end tests deploy, so the demo and the tests exercise the same story.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Versions of the sample app.
const (
	GoodVersion   = "v1"
	BrokenVersion = "v2"
)

// App is the sample app: a page with a JavaScript bundle, a login API, a cart journey,
// health and version endpoints, an admin endpoint that deploys a version, and the
// rollback webhook vigil calls (rollback.go). Its broken version breaks only the bundle,
// as in seed 003: every API answers, and only a real browser sees the page die.
type App struct {
	URL string

	mu      sync.Mutex
	version string
	history []string
	carts   map[int]string
	nextID  int

	srv *http.Server
	ln  net.Listener

	// RollbackSecret verifies vigil's rollback webhook; rollbacks are what it received.
	RollbackSecret []byte
	rollbacks      []Rollback
	seenKeys       map[string]bool
}

// StartApp serves the sample app on a free loopback port, running version.
func StartApp(version string) (*App, error) { return ListenApp("127.0.0.1:0", version) }

// ListenApp serves the sample app on addr, running version: `vigil demo app`, the
// stand-in for a real app in the Compose and Kubernetes sidecar examples.
func ListenApp(addr, version string) (*App, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sample app: %w", err)
	}
	a := &App{URL: "http://" + ln.Addr().String(), version: version, history: []string{version},
		carts: map[int]string{}, nextID: 41, ln: ln, seenKeys: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("GET /static/app.js", a.bundle)
	mux.HandleFunc("POST /api/login", a.login)
	mux.HandleFunc("POST /api/cart", a.createCart)
	mux.HandleFunc("GET /api/cart/{id}", a.getCart)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": a.Version()})
	})
	mux.HandleFunc("POST /admin/deploy", a.deploy)
	mux.HandleFunc("POST /admin/rollback", a.rollback)
	// Every answer names the version that gave it: the demo's checks read it
	// (served_version), so a verification judges the version it was asked about.
	named := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", a.Version())
		mux.ServeHTTP(w, r)
	})
	a.srv = &http.Server{Handler: named, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	return a, nil
}

// Close stops the app.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return a.srv.Shutdown(ctx)
}

// Version is the version being served.
func (a *App) Version() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.version
}

// Deploy switches the served version.
func (a *App) Deploy(version string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.version = version
	a.history = append(a.history, version)
}

// History lists every version deployed, in order.
func (a *App) History() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.history...)
}

func (a *App) broken() bool { return a.Version() == BrokenVersion }

func (a *App) deploy(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Version string `json:"version"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil || body.Version == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `send {"version":"v1"}`})
		return
	}
	a.Deploy(body.Version)
	writeJSON(w, http.StatusOK, map[string]string{"version": body.Version})
}

func (a *App) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, pageHTML, a.Version())
}

func (a *App) bundle(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/javascript")
	if a.broken() {
		fmt.Fprint(w, brokenBundle)
		return
	}
	fmt.Fprint(w, goodBundle)
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"token": "tok-" + strconv.FormatInt(time.Now().UnixNano(), 36)})
}

func (a *App) createCart(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.nextID++
	id := a.nextID
	a.carts[id] = "open"
	a.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "status": "open"})
}

func (a *App) getCart(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	a.mu.Lock()
	status, ok := a.carts[id]
	a.mu.Unlock()
	if err != nil || !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such cart"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "status": status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// pageHTML is the app shell. Its error reporting starts only after the bundle has run, as
// in the Mews incident: an exception thrown by the bundle's startup never reaches it.
const pageHTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>Sample shop %s</title></head>
<body>
<div id="app">loading...</div>
<script src="/static/app.js"></script>
<script>
  window.addEventListener('error', function (e) { e.preventDefault(); /* "reported" to a vendor */ });
</script>
</body></html>
`

const goodBundle = `(function () {
  function formatPrice(cents) { return (cents / 100).toFixed(2) + " EUR"; }
  var registry = { formatPrice: formatPrice };
  function start() {
    var el = document.getElementById("app");
    el.textContent = "Cart total: " + registry["formatPrice"](1999);
    el.setAttribute("data-ready", "1");
  }
  start();
})();
`

// brokenBundle is the same app after a minifier renamed formatPrice but the startup code
// still looks it up by name.
const brokenBundle = `(function () {
  function a(b) { return (b / 100).toFixed(2) + " EUR"; }
  var r = { a: a };
  function s() {
    var e = document.getElementById("app");
    e.textContent = "Cart total: " + r["formatPrice"](1999);
    e.setAttribute("data-ready", "1");
  }
  s();
})();
`
