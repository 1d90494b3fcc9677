// A stand-in for an error-reporting SDK: once initialised it takes over window.onerror
// and reports (and swallows) every later error. Startup errors happen before it exists.
export function initErrorReporting(endpoint) {
  window.addEventListener('error', (e) => {
    navigator.sendBeacon && navigator.sendBeacon(endpoint, String(e.message));
    e.preventDefault();
  });
  window.__reportingReady = true;
}
