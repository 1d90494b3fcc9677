package browser

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// EnvPath is the environment variable that names the Chromium binary when the config does not.
const EnvPath = "VIGIL_BROWSER"

// InstallHint is the exact way out when no Chromium is found; every "not found" error ends with it.
const InstallHint = "install it with `sudo apt-get install -y chromium`, or set browser.path in the config " +
	"(or " + EnvPath + " in the environment) to a Chromium or Chrome binary"

// candidates are tried in order when neither the config nor the environment names a binary.
// Debian's /usr/bin/chromium is a shell wrapper that adds flags from /etc/chromium.d, so the
// binary behind it comes first: vigil sets its own flags.
var candidates = []string{"/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// NotFoundError says that no usable Chromium binary was found, and where vigil looked.
type NotFoundError struct {
	// Source is what named the binary: "browser.path", EnvPath, or "" for the search.
	Source string
	Path   string
	Err    error
	Tried  []string
}

func (e *NotFoundError) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("Chromium not found: %s is %q: %v; %s", e.Source, e.Path, e.Err, InstallHint)
	}
	return fmt.Sprintf("Chromium not found (looked for %s); %s", strings.Join(e.Tried, ", "), InstallHint)
}

// NoConfigError is Error for a command that reads no config (vigil demo): the hint names
// only what such a command can be given, the environment.
func (e *NotFoundError) NoConfigError() string {
	hint := "install it with `sudo apt-get install -y chromium`, or set " + EnvPath + " in the environment to a Chromium or Chrome binary"
	if e.Source != "" {
		return fmt.Sprintf("Chromium not found: %s is %q: %v; %s", e.Source, e.Path, e.Err, hint)
	}
	return fmt.Sprintf("Chromium not found (looked for %s); %s", strings.Join(e.Tried, ", "), hint)
}

func (e *NotFoundError) Unwrap() error { return e.Err }

// ErrNotFound matches every NotFoundError with errors.Is.
var ErrNotFound = errors.New("chromium not found")

// Is makes errors.Is(err, ErrNotFound) true for a NotFoundError.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Find returns the Chromium binary to run: configured (the config's browser.path), then
// $VIGIL_BROWSER, then the usual install locations and names on PATH. An explicit path that
// does not work is an error, never a silent fallback to another browser.
func Find(configured string, lookupEnv func(string) (string, bool)) (string, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if configured != "" {
		return checkExecutable("browser.path", configured)
	}
	if p, ok := lookupEnv(EnvPath); ok && p != "" {
		return checkExecutable(EnvPath, p)
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", &NotFoundError{Tried: candidates}
}

func checkExecutable(source, p string) (string, error) {
	found, err := exec.LookPath(p)
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err
		}
		return "", &NotFoundError{Source: source, Path: p, Err: err}
	}
	return found, nil
}
