/* frontdesk agent console: the inbox (README, "Inbox"). Every conversation,
 * newest activity first, with a search box, filters and "More" paging over
 * GET /api/v1/agent/inbox; a row opens the conversation in the console's
 * view, and a closed conversation gets a "Reopen" button there. Hooks into
 * the console through window.frontdeskConsole (see the top of agent.js);
 * every text from a visitor is inserted as text, never as HTML. */
(function () {
  'use strict';
  var desk = window.frontdeskConsole;
  if (!desk) return;
  var el = desk.el, button = desk.button;
  var box = document.getElementById('inbox');
  if (!box) return;
  var cursor = null, pages = 0, typing = null, pending = null, seq = 0;

  function field(label, input) {
    var wrap = el('div', 'field');
    var l = el('label', null, label);
    l.htmlFor = input.id;
    wrap.append(l, input);
    return wrap;
  }
  function select(id, options) {
    var s = el('select');
    s.id = id;
    options.forEach(function (o) {
      var opt = el('option', null, o[1]);
      opt.value = o[0];
      s.append(opt);
    });
    return s;
  }
  var q = el('input');
  q.id = 'inbox-q'; q.type = 'search'; q.maxLength = 200; q.autocomplete = 'off';
  q.placeholder = 'Words, a name, an email, an intent';
  var state = select('inbox-state', [['', 'Any state'], ['bot', 'With the bot'], ['queued', 'Waiting'],
    ['with_agent', 'With an agent'], ['closed', 'Closed']]);
  var agent = select('inbox-agent', [['', 'Anyone'], ['@me', 'Me']]);
  var reason = select('inbox-reason', [['', 'Any reason'], ['asked', 'Asked for a person'],
    ['negative_sentiment', 'Upset'], ['repeated_fallback', 'Bot kept failing'], ['low_confidence', 'Bot unsure'],
    ['intent_action', 'Intent hands off'], ['agent_took_over', 'Taken over / reopened']]);
  var rating = select('inbox-rating', [['', 'Any rating'], ['5', '5'], ['4', '4'], ['3', '3'], ['2', '2'], ['1', '1']]);
  var from = el('input'); from.id = 'inbox-from'; from.type = 'date';
  var to = el('input'); to.id = 'inbox-to'; to.type = 'date';
  var form = el('form', 'inbox-form');
  form.setAttribute('role', 'search');
  form.setAttribute('aria-label', 'Search conversations');
  form.append(field('Search', q), field('State', state), field('Agent', agent), field('Handoff reason', reason),
    field('Rating', rating), field('Active from', from), field('Active until', to));
  var status = el('p', 'muted');
  status.id = 'inbox-status';
  status.setAttribute('role', 'status');
  var list = el('ul');
  list.id = 'inbox-list';
  var more = button('More', function () { load(false); });
  more.id = 'inbox-more';
  more.hidden = true;
  box.append(form, status, list, more);

  function day(v, plus) {
    var d = new Date(v + 'T00:00:00');
    if (isNaN(d)) return '';
    if (plus) d.setDate(d.getDate() + 1);
    return String(d.getTime());
  }
  function params() {
    var p = new URLSearchParams();
    var me = desk.me();
    if (q.value.trim()) p.set('q', q.value.trim());
    if (state.value) p.set('state', state.value);
    if (agent.value === '@me' && me) p.set('agent', me.name);
    if (reason.value) p.set('reason', reason.value);
    if (rating.value) p.set('rating', rating.value);
    if (from.value) p.set('from', day(from.value, false));
    if (to.value) p.set('to', day(to.value, true));
    p.set('limit', '25');
    return p;
  }
  function when(ms) {
    var d = new Date(ms), now = new Date();
    var sameDay = d.toDateString() === now.toDateString();
    return sameDay ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : d.toLocaleDateString([], { day: 'numeric', month: 'short' }) + ' ' +
        d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
  var STATES = { bot: 'with the bot', queued: 'waiting', with_agent: 'with an agent', closed: 'closed' };
  function row(it) {
    var li = el('li', 'inbox-row');
    var open = button(it.title, function () { desk.open(it.id); });
    open.className = 'inbox-title';
    open.setAttribute('data-id', it.id);
    var t = el('time', 'muted', when(it.last_activity_ms));
    t.dateTime = new Date(it.last_activity_ms).toISOString();
    var bits = [STATES[it.state] || it.state];
    if (it.agent) bits.push(it.state === 'with_agent' ? it.agent : 'last: ' + it.agent);
    if (it.reason) bits.push(it.reason.replace(/_/g, ' '));
    if (it.rating) bits.push('rated ' + it.rating + '/5');
    li.append(open, ' ', t, el('div', 'muted', bits.join(' · ')));
    if (it.preview) li.append(el('div', 'muted inbox-preview', it.preview));
    return li;
  }
  // First page (`fresh`) or the next one; answers that come back after a
  // newer request started are dropped.
  function load(fresh) {
    var p = params();
    if (!fresh && cursor) p.set('cursor', cursor);
    var mine = ++seq;
    clearTimeout(pending);
    fetch('/api/v1/agent/inbox?' + p.toString(), { headers: { authorization: 'Bearer ' + desk.token() } })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) { return { r: r, j: j }; });
      })
      .then(function (x) {
        if (mine !== seq) return;
        if (x.r.status === 503) {
          status.textContent = 'The inbox is being prepared after a restart…';
          var secs = Number(x.r.headers.get('retry-after')) || 2;
          pending = setTimeout(function () { load(true); }, secs * 1000);
          return;
        }
        if (x.r.status === 400 && x.j.error && x.j.error.code === 'cursor_expired') { load(true); return; }
        if (!x.r.ok) { status.textContent = (x.j.error && x.j.error.message) || ('HTTP ' + x.r.status); return; }
        if (fresh) { list.textContent = ''; pages = 0; }
        pages++;
        x.j.items.forEach(function (it) { list.append(row(it)); });
        cursor = x.j.next_cursor || null;
        more.hidden = !cursor;
        var n = x.j.total;
        status.textContent = n === 0 ? 'No conversation matches.'
          : n + (n === 1 ? ' conversation' : ' conversations') + (cursor ? ', newest first' : '');
      }, function (e) { if (mine === seq) status.textContent = 'The inbox did not load: ' + e.message; });
  }
  q.addEventListener('input', function () {
    clearTimeout(typing);
    typing = setTimeout(function () { load(true); }, 250);
  });
  form.addEventListener('submit', function (e) { e.preventDefault(); load(true); });
  [state, agent, reason, rating, from, to].forEach(function (s) { s.addEventListener('change', function () { load(true); }); });

  desk.on('login', function () { load(true); });
  // New traffic: the first page follows it (not while the agent pages on).
  var later = null;
  desk.on('socket', function (d) {
    if (d.kind !== 'record' || pages > 1) return;
    clearTimeout(later);
    later = setTimeout(function () { if (pages <= 1) load(true); }, 2000);
  });
  // A closed conversation can be reopened from its view.
  var reopen = button('Reopen', function () {
    var id = desk.current();
    if (id) desk.act(id, 'reopen').then(function () { load(true); });
  });
  reopen.id = 'reopen-btn';
  reopen.hidden = true;
  desk.on('open', function (t) {
    var bar = document.querySelector('#reply-form .row');
    if (bar && !reopen.parentNode) bar.append(reopen);
    reopen.hidden = t.phase !== 'closed';
  });
})();
