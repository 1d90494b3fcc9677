import { register, mount } from './registry.js';
import { initErrorReporting } from './reporting.js';

function BookingWidget(root) {
  root.textContent = 'Book a room';
  root.dataset.ready = '1';
}

register(BookingWidget);
mount(document.getElementById('app'));
initErrorReporting('/report');
