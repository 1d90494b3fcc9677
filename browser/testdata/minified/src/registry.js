// Components register themselves and the startup code finds them by name, as a
// configuration-driven app does ("mount the component named in data-component").
const components = {};

export function register(fn) {
  components[fn.name] = fn;
}

export function mount(root) {
  const start = components[root.dataset.component];
  return start(root);
}
