/* frontdesk agent console: queue, transcripts with decision traces,
 * suggested replies, and the agent's actions. Plain JavaScript; every text
 * from a visitor or an agent is inserted as text, never as HTML. It
 * recovers by itself from a dropped network or a laptop's sleep: the socket
 * reconnects with backoff and the page fetches the queue and the open
 * transcript again, so nothing is missed. */
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var token = localStorage.getItem('frontdesk:agent') || '';
  var me = null, current = null, shown = null, seen = {}, ws = null, tries = 0, timer = null, lastQueue = 0;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function button(text, fn, cls) {
    var b = el('button', cls, text);
    b.type = 'button';
    b.addEventListener('click', fn);
    return b;
  }
  function api(method, path, body) {
    return fetch('/api/v1' + path, {
      method: method,
      headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (r.status === 401) { logout(); }
        if (!r.ok) throw new Error((j.error && j.error.message) || ('HTTP ' + r.status));
        return j;
      });
    });
  }
  function say(text) { $('announce').textContent = text; }
  // Extension point for the console's other scripts (one file a feature,
  // loaded after this one): they reach the shared helpers here and hear of
  // what happens through `on`. `render[type]` draws an event type this file
  // does not know (return an element, or nothing to skip it).
  var listeners = {};
  function emit(name) {
    var args = Array.prototype.slice.call(arguments, 1);
    (listeners[name] || []).forEach(function (fn) { try { fn.apply(null, args); } catch (e) { console.error(e); } });
  }
  var desk = window.frontdeskConsole = {
    api: api, el: el, button: button, say: say,
    me: function () { return me; },
    current: function () { return current; },
    token: function () { return token; },
    open: function (id) { open(id); },
    refresh: function () { refresh(); },
    act: function (id, what, body) { return act(id, what, body); },
    render: {},
    on: function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); }
  };
  function fail(e) { $('action-error').textContent = e.message || String(e); }

  // ---- login ----------------------------------------------------------------
  $('login-form').addEventListener('submit', function (e) {
    e.preventDefault();
    token = $('token').value.trim();
    start();
  });
  $('logout').addEventListener('click', logout);
  function logout() {
    localStorage.removeItem('frontdesk:agent');
    token = '';
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    $('app').hidden = true; $('login').hidden = false; $('presence').hidden = true; $('logout').hidden = true;
    $('me').textContent = '';
  }
  function start() {
    api('GET', '/agent/me').then(function (m) {
      me = m;
      localStorage.setItem('frontdesk:agent', token);
      $('login').hidden = true; $('app').hidden = false;
      $('presence').hidden = false; $('logout').hidden = false;
      $('presence').value = m.presence;
      $('me').textContent = m.name + (m.admin ? ' (admin)' : '');
      $('login-error').textContent = '';
      emit('login', m);
      refresh();
      connect();
    }, function (e) { $('login-error').textContent = 'Log in failed: ' + e.message; });
  }
  $('presence').addEventListener('change', function () {
    api('PUT', '/agent/presence', { presence: $('presence').value }).then(function (m) { me = m; mine(); }, fail);
  });

  // ---- lists ------------------------------------------------------------------
  function refresh() {
    api('GET', '/agent/me').then(function (m) { me = m; mine(); });
    api('GET', '/agent/queue').then(queue);
    api('GET', '/agent/live').then(live);
    if (current) open(current);
  }
  function who(s) {
    var v = s.visitor || {};
    return v.name || v.email || 'Visitor';
  }
  function mins(secs) { return secs < 60 ? secs + ' s' : Math.round(secs / 60) + ' min'; }
  function queue(q) {
    var ul = $('queue');
    ul.textContent = '';
    $('q-count').textContent = '(' + q.waiting.length + ')';
    q.waiting.forEach(function (w) {
      var li = el('li');
      li.append(el('strong', null, '#' + w.position + ' ' + who(w.summary)),
        el('div', 'muted', w.reason.replace(/_/g, ' ') + ' · waited ' + mins(w.waited_secs) + (w.priority ? ' · upset' : '')),
        el('div', 'muted', 'intents: ' + (w.summary.intents.join(', ') || 'none')),
        button('Open', function () { open(w.conversation); }),
        button('Claim', function () { act(w.conversation, 'claim'); }, 'primary'));
      ul.append(li);
    });
    if (q.waiting.length > lastQueue) notify('New chat waiting (' + q.waiting.length + ' in the queue)');
    lastQueue = q.waiting.length;
    document.title = (q.waiting.length ? '(' + q.waiting.length + ') ' : '') + 'frontdesk agent';
  }
  function live(list) {
    var ul = $('live');
    ul.textContent = '';
    list.slice(0, 20).forEach(function (l) {
      var li = el('li');
      li.append(el('strong', null, who(l.summary)),
        el('div', 'muted', 'intents: ' + (l.summary.intents.join(', ') || 'none')),
        button('Open', function () { open(l.conversation); }),
        button('Take over', function () { act(l.conversation, 'claim'); }));
      ul.append(li);
    });
  }
  function mine() {
    var ul = $('mine');
    ul.textContent = '';
    (me.active || []).forEach(function (id) {
      var li = el('li');
      li.append(button(id === current ? id + ' (open)' : id, function () { open(id); }));
      ul.append(li);
    });
  }
  function notify(text) {
    say(text);
    if (window.Notification && Notification.permission === 'granted' && document.hidden) {
      try { new Notification('frontdesk', { body: text }); } catch (e) { /* not allowed here */ }
    }
  }
  document.addEventListener('click', function askOnce() {
    if (window.Notification && Notification.permission === 'default') Notification.requestPermission();
    document.removeEventListener('click', askOnce);
  });

  // ---- a conversation -------------------------------------------------------------
  // The records the socket brought for the open conversation: a re-read
  // that was answered before the newest of them were stored must not drop
  // them from the view.
  var recent = [];
  function open(id) {
    if (id !== current) recent = [];
    current = id;
    api('GET', '/agent/conversations/' + id).then(function (t) {
      if (current !== id) return;
      seen = {};
      // The same conversation read again (an event that changes its
      // phase) keeps the agent's place; another one opens at the end.
      var again = id === shown, b = $('events'), place = b.scrollTop;
      if (!again) following = true;
      // Scrolled up with the scroll event still to come: the agent's
      // place is kept.
      else if (scrolledUp(b)) following = false;
      shown = id;
      $('events').textContent = '';
      $('c-h').textContent = 'Conversation ' + id + ' · ' + t.phase.replace(/_/g, ' ') + (t.agent ? ' · ' + t.agent : '');
      var s = t.summary, v = s.visitor || {};
      var lines = [
        'Visitor: ' + ([v.name, v.email, v.id].filter(Boolean).join(' · ') || 'unknown'),
        'Page: ' + (v.page_url || 'unknown'),
        'Handed off because: ' + (s.reason ? s.reason.replace(/_/g, ' ') : '—'),
        'Intents: ' + (s.intents.join(', ') || 'none'),
        'Slots: ' + (s.slots.map(function (x) { return x[1] + '=' + x[2]; }).join(', ') || 'none')
      ];
      $('summary').textContent = '';
      lines.forEach(function (l) { $('summary').append(el('div', null, l)); });
      $('summary').append(identityLine(v));
      t.events.forEach(record);
      var last = t.events.length ? t.events[t.events.length - 1].seq : 0;
      recent.forEach(function (r) { if (r.seq > last) record(r); });
      suggestions(t.suggestions.filter(function (x) { return x.seq === lastVisitorSeq(t.events); }));
      $('actions').hidden = false;
      $('claim-btn').hidden = t.agent === me.name || t.phase === 'closed';
      var mineNow = t.agent === me.name;
      $('return-btn').hidden = !mineNow;
      $('close-btn').hidden = t.phase === 'closed';
      mine();
      emit('open', t);
      // Opened at the newest message, with the reply box in view (once
      // the actions below the messages have their final size).
      $('actions').scrollIntoView({ block: 'nearest' });
      if (following) { pinned = 0; stick(); } else $('events').scrollTop = place;
    }, fail);
  }
  // Identity verification (README): only an id the shop's HMAC proved is
  // "verified"; any other id is what the page claimed, so said plainly.
  function identityLine(v) {
    var state = v.id ? (v.verified ? 'verified' : 'claimed') : 'none';
    var d = el('div', 'identity', 'Identity: ' + (state === 'verified' ? '✔ verified id ' + v.id :
      state === 'claimed' ? 'claimed id ' + v.id + ' (NOT verified)' : 'anonymous'));
    d.setAttribute('data-identity', state);
    return d;
  }
  function lastVisitorSeq(events) {
    var s = 0;
    events.forEach(function (r) { if (r.event.type === 'visitor_message') s = r.seq; });
    return s;
  }
  function words(code) { return code.replace(/_/g, ' '); }
  function percent(x) { return typeof x === 'number' && isFinite(x) ? Math.round(x * 100) + '%' : ''; }
  // The bot line: from the stored decision (intent · confidence%, or the
  // kind of turn and, for a turn the visitor's choice decided, why); records
  // stored before decisions were kept fall back to the event's own fields,
  // where only a reply has a confidence.
  function botLabel(e) {
    var d = e.decision, parts = ['Bot'];
    if (d) {
      parts.push(d.intent || words(d.kind));
      var sure = d.candidates && d.candidates.length ? percent(d.confidence) : '';
      parts.push(sure || words(d.reason));
    } else if (e.intent) {
      parts.push(e.intent);
      if (percent(e.confidence)) parts.push(percent(e.confidence));
    } else {
      parts.push(words(e.type));
    }
    return parts.join(' · ');
  }
  function record(r) {
    if (seen[r.seq]) return;
    seen[r.seq] = 1;
    var e = r.event, box = $('events'), d;
    switch (e.type) {
      case 'visitor_message': d = el('div', 'ev visitor'); d.append(el('span', 'who', 'Visitor'), document.createTextNode(e.text)); break;
      case 'agent_message': d = el('div', 'ev agent'); d.append(el('span', 'who', e.agent), document.createTextNode(e.text)); break;
      case 'internal_note': d = el('div', 'ev note'); d.append(el('span', 'who', 'Note by ' + e.agent), document.createTextNode(e.text)); break;
      case 'bot_reply': case 'fallback': case 'clarification': case 'slot_prompt': case 'handoff_offered':
        d = el('div', 'ev');
        d.append(el('span', 'who', botLabel(e)), document.createTextNode(e.text));
        if (e.trace) {
          var det = el('details'), sum = el('summary', null, 'Decision trace');
          det.append(sum, el('pre', null, e.trace));
          d.append(det);
        }
        break;
      case 'handoff': d = el('div', 'ev sys', 'Handed off: ' + e.reason.replace(/_/g, ' ')); break;
      case 'queued': d = el('div', 'ev sys', 'Queued at #' + e.position); break;
      case 'agent_joined': d = el('div', 'ev sys', e.agent + ' joined'); break;
      case 'transfer': d = el('div', 'ev sys', 'Transferred from ' + e.from + ' to ' + e.to); break;
      case 'returned_to_bot': d = el('div', 'ev sys', 'Returned to the bot by ' + e.agent); break;
      case 'closed': d = el('div', 'ev sys', 'Closed by ' + e.by); break;
      case 'rating': d = el('div', 'ev sys', 'Rated ' + e.score + '/5' + (e.comment ? ': ' + e.comment : '')); break;
      case 'email_left': d = el('div', 'ev sys', 'Left email: ' + e.email); break;
      case 'started': d = el('div', 'ev sys', 'Conversation started'); break;
      case 'identified':
        d = el('div', 'ev sys', (e.verified ? 'Identified (verified): ' : 'Claimed identity (NOT verified): ') + [e.name, e.email, e.id].filter(Boolean).join(' · '));
        // The summary's line follows the newest identity (events come in
        // order, so a re-read ends where the summary began).
        var was = $('summary').querySelector('[data-identity]');
        if (was) was.replaceWith(identityLine({ id: e.id, verified: e.verified }));
        break;
      default:
        d = desk.render[e.type] && desk.render[e.type](e, r);
        if (!d) return;
    }
    box.append(d);
  }
  // The view follows new messages unless the agent has scrolled up to
  // read: `following` is whether the view was at the end when last
  // scrolled, and whatever changes the messages or the room they have (a
  // new line, a thumbnail that loads, the other scripts filling the
  // controls below) keeps a following view at the end.
  // `pinned` is where stick() last left the view: a view above it was
  // moved up by the agent (or a script) in a way whose scroll event has
  // not come yet (those come with the next frame, the observers before
  // it), unless it is at the end, where a taller box or shorter content
  // clamps it.
  var following = true, pinned = 0;
  // Whether the view, followed so far, is above where stick() last
  // pinned it and above the end: the agent scrolled up, and the scroll
  // event has not come yet.
  function scrolledUp(b) {
    return following && b.scrollTop < pinned - 1 && b.scrollTop < b.scrollHeight - b.clientHeight - 1;
  }
  function stick() {
    var b = $('events');
    if (scrolledUp(b)) following = false;
    if (!following) return;
    b.scrollTop = b.scrollHeight;
    pinned = b.scrollTop;
  }
  $('events').addEventListener('scroll', function () {
    var b = $('events');
    following = b.scrollHeight - b.scrollTop - b.clientHeight < 48;
    pinned = following ? b.scrollTop : 0;
  });
  $('events').addEventListener('load', stick, true);
  new MutationObserver(stick).observe($('events'), { childList: true, subtree: true });
  if (window.ResizeObserver) new ResizeObserver(stick).observe($('events'));
  function suggestions(list) {
    var box = $('suggestions');
    box.textContent = '';
    list.forEach(function (s) {
      var b = button('Use ' + s.intent + ': ' + s.answer.slice(0, 80), function () {
        $('reply').value = s.answer;
        $('reply').focus();
      });
      b.title = s.answer;
      box.append(b);
    });
  }
  function act(id, what, body) {
    $('action-error').textContent = '';
    return api('POST', '/agent/conversations/' + id + '/' + what, body).then(function () {
      refresh();
      open(id);
    }, fail);
  }
  $('reply-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var text = $('reply').value.trim();
    if (!text || !current) return;
    act(current, 'messages', { text: text }).then(function () { $('reply').value = ''; });
  });
  $('reply').addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('reply-form').requestSubmit(); }
  });
  var lastTyping = 0;
  $('reply').addEventListener('input', function () {
    if (ws && ws.readyState === 1 && current && Date.now() - lastTyping > 3000) {
      lastTyping = Date.now();
      ws.send(JSON.stringify({ kind: 'typing', conversation: current }));
    }
  });
  $('note-btn').addEventListener('click', function () {
    var text = $('reply').value.trim();
    if (!text || !current) return;
    act(current, 'notes', { text: text }).then(function () { $('reply').value = ''; });
  });
  $('claim-btn').addEventListener('click', function () { if (current) act(current, 'claim'); });
  $('return-btn').addEventListener('click', function () { if (current) act(current, 'return'); });
  $('close-btn').addEventListener('click', function () { if (current) act(current, 'close'); });
  $('transfer-form').addEventListener('submit', function (e) {
    e.preventDefault();
    if (current) act(current, 'transfer', { to: $('transfer-to').value.trim() });
  });

  // ---- the socket -------------------------------------------------------------------
  var typingTimer = null;
  function connect() {
    if (!token || (ws && ws.readyState < 2)) return;
    clearTimeout(timer);
    var proto = location.protocol === 'https:' ? 'wss://' : 'ws://';
    var s = new WebSocket(proto + location.host + '/api/v1/agent/ws?token=' + encodeURIComponent(token));
    ws = s;
    s.onopen = function () {
      // Back after a drop: fetch everything again rather than trust what
      // was on screen.
      if (tries > 0) refresh();
      tries = 0;
      $('action-error').textContent = '';
    };
    s.onmessage = function (m) {
      var d;
      try { d = JSON.parse(m.data); } catch (e) { return; }
      emit('socket', d);
      if (d.kind === 'queue') { queue(d.queue); api('GET', '/agent/live').then(live); }
      else if (d.kind === 'record') {
        if (d.conversation === current) {
          recent.push(d.record);
          if (recent.length > 100) recent.shift();
          record(d.record);
          $('typing').hidden = true;
          if (d.record.event.type === 'visitor_message') suggestions(d.suggestions || []);
          if (/agent_joined|closed|transfer|returned_to_bot/.test(d.record.event.type)) open(current);
        } else if (d.record.event.type === 'visitor_message') {
          notify('New message in ' + d.conversation);
        }
        if (/agent_joined|closed|transfer|returned_to_bot/.test(d.record.event.type)) {
          api('GET', '/agent/me').then(function (x) { me = x; mine(); });
        }
      } else if (d.kind === 'typing' && d.conversation === current) {
        $('typing').hidden = false;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { $('typing').hidden = true; }, 5000);
      } else if (d.kind === 'resync') refresh();
    };
    s.onclose = function () {
      if (ws !== s) return;
      ws = null;
      if (!token) return;
      $('action-error').textContent = 'Connection lost; reconnecting…';
      tries++;
      timer = setTimeout(connect, Math.min(30000, 500 * Math.pow(2, tries)) * (0.5 + Math.random() / 2));
    };
  }
  function wake() { if (token && (!ws || ws.readyState > 1)) { tries = Math.max(tries, 1); clearTimeout(timer); connect(); } }
  document.addEventListener('visibilitychange', function () { if (!document.hidden) wake(); });
  window.addEventListener('online', wake);
  // The waited times tick on.
  setInterval(function () { if (token && !document.hidden && (!ws || ws.readyState !== 1)) wake(); }, 10000);

  if (token) start();
})();
