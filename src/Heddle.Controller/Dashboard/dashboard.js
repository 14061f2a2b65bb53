// Heddle's dashboard: keeps the page's live part (<main id="live">) current without a reload. The server says over
// server-sent events when its store changed; the page then fetches its own live part again. Filters and a log tail
// sit outside that part, so an update never takes what someone is typing or reading.
(() => {
  'use strict';
  const live = document.getElementById('live');
  const connection = document.getElementById('connection');
  let busy = false;
  let again = false;
  let updates = 0;

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const response = await fetch(location.href, { headers: { 'X-Heddle-Fragment': 'live' }, cache: 'no-store', credentials: 'same-origin', redirect: 'manual' });
      if (response.type === 'opaqueredirect' || response.status === 401) { location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search)); return; }
      if (response.ok || response.status === 404) {
        live.innerHTML = await response.text();
        live.dataset.updates = String(++updates);
        tick();
      }
    } catch (e) {
      // The controller is away: the next change message (after the stream reconnects) tries again.
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }

  function follow() {
    if (!live) return;
    const follow = live.dataset.follow ? '&follow=' + encodeURIComponent(live.dataset.follow) : '';
    const source = new EventSource('/ui/live?v=' + encodeURIComponent(live.dataset.version || '') + follow);
    source.addEventListener('open', () => { connection.className = 'connection up'; connection.title = 'live: updates arrive as they happen'; });
    source.addEventListener('error', () => { connection.className = 'connection down'; connection.title = 'not connected to the controller: retrying'; });
    source.addEventListener('change', refresh);
  }

  // Countdowns (an upgrade gate) run here between updates: data-deadline is an ISO time.
  function tick() {
    for (const e of document.querySelectorAll('[data-deadline]')) {
      const left = Math.max(0, (Date.parse(e.dataset.deadline) - Date.now()) / 1000);
      e.textContent = left.toFixed(0) + ' s';
    }
  }

  // A live tail of one instance's log: the response is the log followed, read as it grows.
  let tail = null;
  async function startTail(form) {
    if (tail) tail.abort();
    const output = document.getElementById('log-output');
    const instance = form.elements.instance.value;
    if (!instance) return;
    const parts = instance.split('/');
    const stream = form.elements.stream.value;
    output.textContent = '';
    tail = new AbortController();
    try {
      const response = await fetch('/ui/logs/' + parts.map(encodeURIComponent).join('/') + '?tail=200&follow=true&stream=' + encodeURIComponent(stream),
        { signal: tail.signal, credentials: 'same-origin', cache: 'no-store' });
      if (!response.ok) { output.textContent = 'no log: ' + response.status + ' ' + (await response.text()); return; }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const atEnd = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
        output.textContent += value;
        if (output.textContent.length > 200000) output.textContent = output.textContent.slice(-150000);
        if (atEnd) output.scrollTop = output.scrollHeight;
      }
    } catch (e) {
      if (e.name !== 'AbortError') output.textContent += '\n[log ended: ' + e.message + ']';
    }
  }

  document.addEventListener('submit', (event) => {
    if (event.target.id === 'log-form') { event.preventDefault(); startTail(event.target); }
  });
  document.addEventListener('click', (event) => {
    const button = event.target.closest('[data-tail]');
    if (!button) return;
    const form = document.getElementById('log-form');
    if (!form) return;
    const select = form.elements.instance;
    if (![...select.options].some(o => o.value === button.dataset.tail)) {
      select.add(new Option(button.dataset.tail, button.dataset.tail)); // an instance placed since the page loaded
    }
    select.value = button.dataset.tail;
    startTail(form);
    form.scrollIntoView();
  });

  tick();
  setInterval(tick, 250);
  follow();
})();
