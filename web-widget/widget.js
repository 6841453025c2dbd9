/* frontdesk chat widget: one tag on any page.
 *   <script src="https://bot.example.com/widget.js" data-title="Help" data-color="#0b6e4f" async></script>
 * Plain JavaScript, no build step. Renders in a shadow root with a
 * constructed stylesheet (no inline styles or scripts, so it works under a
 * strict Content-Security-Policy); every message is inserted as text. */
(function () {
  'use strict';
  if (window.__frontdesk) return;
  var script = document.currentScript;
  var base = new URL(script.src, location.href).origin;
  var wsBase = base.replace(/^http/, 'ws');
  var ds = script.dataset;
  var KEY = 'frontdesk:' + base;
  // The server fills SERVED in when it sends this file: the `[texts]` of
  // frontdesk.toml in its language (`lang`), so every line the visitor
  // reads comes from the server's one table. A page may still override any
  // string with data-strings='{"send":"…"}' and the title with data-title.
  var SERVED = {};
  var S = Object.assign({}, SERVED.strings);
  if (ds.title) S.title = ds.title;
  try { Object.assign(S, JSON.parse(ds.strings || '{}')); } catch (e) { /* keep the server's */ }
  // What the server lets the widget offer (`GET /api/v1/widget`): email
  // only with an SMTP server, the pre-chat form when the shop turned it on.
  var CONF = SERVED.config || {};
  function t(key, vars) {
    return String(S[key] != null ? S[key] : key).replace(/\{(\w+)\}/g, function (m, k) { return vars && k in vars ? vars[k] : m; });
  }

  var CSS = ':host{all:initial}' +
    '.root{all:initial;position:fixed;right:20px;bottom:20px;z-index:2147483000;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;--c:var(--frontdesk-color,#1f5fbf);--bg:var(--frontdesk-background,#fff)}' +
    '.root *{box-sizing:border-box;font:inherit;color:inherit;margin:0;letter-spacing:normal;text-transform:none}' +
    'button{cursor:pointer;border:0;background:none}' +
    'button:focus-visible,input:focus-visible,textarea:focus-visible{outline:3px solid #f0a500;outline-offset:2px}' +
    '.launch{position:relative;display:flex;align-items:center;justify-content:center;margin-left:auto;width:60px;height:60px;border-radius:50%;background:var(--c);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.3)}' +
    '.launch svg{width:28px;height:28px;fill:currentColor}' +
    '.badge{position:absolute;top:-2px;right:-2px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#b3261e;color:#fff;font-size:13px;font-weight:700;line-height:22px;text-align:center}' +
    '.badge[hidden]{display:none}' +
    '.msg a{color:inherit;text-decoration:underline}' +
    '.panel{display:flex;flex-direction:column;width:370px;max-width:calc(100vw - 24px);height:560px;max-height:calc(100vh - 110px);background:var(--bg);border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.3);overflow:hidden;margin-bottom:12px}' +
    '.panel[hidden]{display:none}' +
    '.head{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--c);color:#fff}' +
    '.head h2{flex:1;font-weight:600;font-size:16px}' +
    '.x{color:#fff;font-size:22px;width:32px;height:32px;border-radius:6px}' +
    '.log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f5f6f8}' +
    '.msg{max-width:85%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid #dde1e6}' +
    '.me{align-self:flex-end;background:var(--c);color:#fff;border-color:var(--c)}' +
    '.agent{border-color:#8a6d00;background:#fff8e1}' +
    '.who{display:block;font-size:12px;font-weight:600;color:#4a4a4a}' +
    '.me .who{color:#fff}' +
    '.av{display:inline-flex;align-items:center;justify-content:center;min-width:22px;height:22px;padding:0 3px;border-radius:11px;margin-right:6px;color:#fff;font-size:11px;font-weight:700;vertical-align:middle}' +
    '.sys{align-self:center;font-size:13px;color:#4a4a4a;text-align:center}' +
    '.pending{opacity:.7}' +
    '.status{padding:6px 12px;font-size:13px;background:#eef3fb;color:#1b1b1b}' +
    '.status[hidden],.typing[hidden],.qr[hidden],.extra[hidden]{display:none}' +
    '.err{background:#fdecea;color:#8a1c10}' +
    '.typing{padding:2px 14px;font-size:13px;color:#4a4a4a;background:#f5f6f8}' +
    '.qr{display:flex;flex-wrap:wrap;gap:6px;padding:8px 12px 0}' +
    '.qr button,.person,.extra button{padding:6px 11px;border:1px solid var(--c);border-radius:16px;color:var(--c);background:#fff}' +
    '.extra{display:flex;flex-wrap:wrap;gap:6px;align-items:center;padding:8px 12px 0}' +
    '.extra input{flex:1;min-width:140px;padding:7px 9px;border:1px solid #8d949e;border-radius:8px}' +
    '.bar{display:flex;gap:8px;padding:10px 12px;align-items:flex-end}' +
    '.bar textarea{flex:1;resize:none;height:42px;max-height:120px;padding:9px 10px;border:1px solid #8d949e;border-radius:10px;background:#fff}' +
    '.send{padding:9px 14px;border-radius:10px;background:var(--c);color:#fff;font-weight:600}' +
    '.foot{padding:0 12px 10px}' +
    '.fb{display:flex;flex-wrap:wrap;align-items:center;gap:6px;align-self:flex-start;font-size:13px;color:#4a4a4a;margin-top:-4px}' +
    '.fb button{padding:2px 10px;border:1px solid #6b7280;border-radius:12px;background:#fff;color:#1b1b1b}' +
    '.fb button[aria-pressed=true]{background:var(--c);border-color:var(--c);color:#fff;font-weight:600}' +
    '.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}' +
    '.rate-c{flex-basis:100%}' +
    // Attachments (attachControl, attachment below).
    '.clip{display:flex;align-items:center;justify-content:center;width:42px;height:42px;border:1px solid #8d949e;border-radius:10px;background:#fff;color:#1b1b1b;font-size:20px}' +
    '.clip input{position:absolute;width:1px;height:1px;opacity:0;overflow:hidden}' +
    '.clip:focus-within{outline:3px solid #f0a500;outline-offset:2px}' +
    '.att img{display:block;max-width:200px;max-height:160px;margin-top:4px;border-radius:6px;background:#fff}' +
    '.pre{display:flex;flex-direction:column;gap:6px;padding:10px 12px}' +
    '.pre label{font-size:13px;font-weight:600}' +
    '.pre input,.tx input{padding:7px 9px;border:1px solid #8d949e;border-radius:8px;background:#fff}' +
    '.pre input[aria-invalid=true]{border-color:#b3261e}' +
    '.pre .send{align-self:flex-end}' +
    '.pre-err{font-size:13px;color:#8a1c10}' +
    '.tx{display:flex;flex-wrap:wrap;gap:6px;align-self:center;align-items:center}' +
    '.tx button{padding:6px 11px;border:1px solid var(--c);border-radius:16px;color:var(--c);background:#fff}' +
    '.pre[hidden],.bar[hidden],.foot[hidden],.pre-err[hidden]{display:none}' +
    // A phone: the open panel is the whole screen, the launcher hidden
    // under it (the panel's own close button closes it).
    '@media (max-width:480px){.root{right:8px;bottom:8px;left:8px}.root.open{top:0;right:0;bottom:0;left:0}.open .panel{width:100%;max-width:none;height:100%;max-height:none;border-radius:0;margin:0}.open .launch{display:none}}';

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function btn(cls, text, fn) {
    var b = el('button', cls, text);
    b.type = 'button';
    b.addEventListener('click', fn);
    return b;
  }

  // ---- state -----------------------------------------------------------
  var saved = {};
  try { saved = JSON.parse(localStorage.getItem(KEY) || '{}') || {}; } catch (e) { saved = {}; }
  var conv = saved.conv || null;       // {id, token}
  var isOpen = !!saved.open;           // the panel was open when the page was left
  var lastSeq = 0;                     // newest seq rendered
  var outbox = saved.outbox || [];     // [{text, client_id}] not yet acknowledged
  var identity = {};
  var bySeq = {};
  var ws = null, wsTries = 0, wsTimer = null, flushing = false, creating = null;
  var acked = {};                       // client ids the server has
  // Another tab may have queued messages in the same storage: keep theirs.
  function persist() {
    try {
      var stored = (JSON.parse(localStorage.getItem(KEY) || '{}') || {}).outbox || [];
      var mine = {};
      outbox.forEach(function (i) { mine[i.client_id] = 1; });
      var theirs = stored.filter(function (i) { return !mine[i.client_id] && !acked[i.client_id]; });
      localStorage.setItem(KEY, JSON.stringify({ conv: conv, outbox: outbox.concat(theirs), open: isOpen }));
    } catch (e) { /* private mode */ }
  }
  function rid() {
    var a = new Uint8Array(9);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  // ---- the DOM -----------------------------------------------------------
  var host = document.createElement('frontdesk-widget');
  // Inline !important beats any page rule aimed at the host element.
  ['all:initial', 'position:fixed', 'z-index:2147483000', 'right:0', 'bottom:0', 'width:0', 'height:0', 'display:block']
    .forEach(function (d) { var kv = d.split(':'); host.style.setProperty(kv[0], kv[1], 'important'); });
  var root = host.attachShadow({ mode: 'open' });
  var sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  root.adoptedStyleSheets = [sheet];
  var wrap = el('div', 'root');
  if (SERVED.lang) wrap.setAttribute('lang', SERVED.lang);
  if (ds.color && /^#[0-9a-fA-F]{3,8}$/.test(ds.color)) wrap.style.setProperty('--c', ds.color);
  var panel = el('div', 'panel');
  panel.hidden = true;
  panel.id = 'fd-panel';
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-label', S.title);
  var head = el('div', 'head');
  var title = el('h2', null, S.title);
  var x = btn('x', '×', function () { setOpen(false); });
  x.setAttribute('aria-label', S.close);
  head.append(title, x);
  var log = el('div', 'log');
  log.setAttribute('role', 'log');
  log.setAttribute('aria-live', 'polite');
  log.tabIndex = 0;
  var status = el('div', 'status');
  status.setAttribute('role', 'status');
  status.hidden = true;
  var typing = el('div', 'typing', S.typing);
  typing.hidden = true;
  var qr = el('div', 'qr');
  qr.hidden = true;
  var extra = el('div', 'extra');
  extra.hidden = true;
  var form = el('form', 'bar');
  var label = el('label', 'sr', S.placeholder);
  label.htmlFor = 'fd-input';
  var input = el('textarea');
  input.id = 'fd-input';
  input.placeholder = S.placeholder;
  input.rows = 1;
  input.maxLength = 2000;
  var send = el('button', 'send', S.send);
  send.type = 'submit';
  form.append(label, input, attachControl(), send);
  var foot = el('div', 'foot');
  var person = btn('person', S.person, function () { askPerson(); });
  foot.append(person);
  panel.append(head, log, status, typing, qr, extra, form, foot);
  var launch = btn('launch', null, function () { setOpen(panel.hidden); });
  // An inline drawing, not an emoji: a page without an emoji font showed
  // an empty box.
  var SVG = 'http://www.w3.org/2000/svg';
  var icon = document.createElementNS(SVG, 'svg');
  icon.setAttribute('viewBox', '0 0 24 24');
  icon.setAttribute('aria-hidden', 'true');
  var path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z');
  icon.append(path);
  var badge = el('span', 'badge');
  badge.hidden = true;
  badge.setAttribute('aria-hidden', 'true');
  launch.append(icon, badge);
  launch.setAttribute('aria-label', S.open);
  launch.setAttribute('aria-expanded', 'false');
  launch.setAttribute('aria-controls', 'fd-panel');
  wrap.append(panel, launch);
  root.append(wrap);
  log.append(el('div', 'sys', S.welcome));

  // Replies that came while the panel was closed, shown on the launcher.
  var unread = 0;
  var live = false;                    // past the history shown at load
  function setUnread(n) {
    unread = n;
    badge.hidden = !n;
    badge.textContent = n > 9 ? '9+' : String(n);
    if (panel.hidden) launch.setAttribute('aria-label', n ? t('unread', { n: n }) : S.open);
  }
  // `quiet`: restoring the panel after a reload, without taking the
  // page's focus.
  function setOpen(open, quiet) {
    panel.hidden = !open;
    wrap.classList.toggle('open', open);
    launch.setAttribute('aria-expanded', String(open));
    launch.setAttribute('aria-label', open ? S.close : S.open);
    if (open) setUnread(0);
    isOpen = open;
    persist();
    if (quiet) return;                 // start() connects after the history
    if (open) { (preShown() ? preFirst() : input).focus(); connect(); } else { launch.focus(); }
  }
  panel.addEventListener('keydown', function (e) { if (e.key === 'Escape') setOpen(false); });
  form.addEventListener('submit', function (e) { e.preventDefault(); submit(); });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); submit(); }
  });
  var lastTyping = 0;
  input.addEventListener('input', function () {
    var now = Date.now();
    if (ws && ws.readyState === 1 && now - lastTyping > 3000) {
      lastTyping = now;
      ws.send('{"kind":"typing"}');
    }
  });

  function showStatus(text, error) {
    status.hidden = !text;
    status.textContent = text || '';
    status.className = error ? 'status err' : 'status';
  }
  var typingTimer = null;
  function showTyping(on, ms) {
    clearTimeout(typingTimer);
    typing.hidden = !on;
    // Never stuck: it goes away by itself.
    if (on) typingTimer = setTimeout(function () { typing.hidden = true; }, ms || 8000);
  }
  function scroll() { log.scrollTop = log.scrollHeight; }
  // Text with its http(s) addresses as links: each piece is inserted as
  // text, the address only ever as an href of a new tab that gets no
  // handle on this page. A sentence's closing punctuation is not part of
  // the address.
  var URL_RE = /https?:\/\/[^\s<>"']+/g;
  function linked(d, text) {
    var at = 0, m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text))) {
      var url = m[0].replace(/[.,;:!?)\]]+$/, '');
      if (m.index > at) d.append(document.createTextNode(text.slice(at, m.index)));
      var a = el('a', null, url);
      a.href = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      d.append(a);
      at = m.index + url.length;
      URL_RE.lastIndex = at;
    }
    if (at < text.length) d.append(document.createTextNode(text.slice(at)));
  }
  function bubble(cls, who, text) {
    var d = el('div', 'msg ' + cls);
    d.append(el('span', 'who', who));
    linked(d, text);
    log.append(d);
    scroll();
    return d;
  }
  function sys(text) { log.append(el('div', 'sys', text)); scroll(); }
  // Agents as people (issue 18): an agent's message shows initials drawn
  // from the name the visitor sees (the agent's display name), in a colour
  // of that name; no image is downloaded.
  function initials(name) {
    var words = String(name || '?').trim().split(/\s+/);
    var first = Array.from(words[0] || '?')[0] || '?';
    var last = words.length > 1 ? Array.from(words[words.length - 1])[0] : '';
    return (first + last).toUpperCase();
  }
  function agentBubble(e) {
    var d = bubble('agent', e.agent, e.text), av = el('span', 'av', initials(e.agent)), h = 0;
    for (var i = 0; i < e.agent.length; i++) h = (h * 31 + e.agent.charCodeAt(i)) % 360;
    av.style.background = 'hsl(' + h + ',45%,30%)';
    av.setAttribute('aria-hidden', 'true');
    d.firstChild.prepend(av);
  }
  function quick(list) {
    // "Talk to a person" is always in the footer: not shown twice.
    list = list.filter(function (l) { return l !== S.person; });
    qr.textContent = '';
    qr.hidden = !list.length;
    list.forEach(function (label) {
      qr.append(btn(null, label, function () {
        if (label === S.leaveEmail || label === 'Leave my email') { emailForm(); return; }
        say(label);
        // The button is gone with the choice: keep the keyboard in the
        // panel (on the reply box) rather than let focus fall to the page.
        input.focus();
      }));
    });
  }
  function emailForm() {
    extra.textContent = '';
    extra.hidden = false;
    var f = el('form');
    f.className = 'extra';
    var i = el('input');
    i.type = 'email';
    i.required = true;
    i.setAttribute('aria-label', S.email);
    i.placeholder = S.email;
    var b = el('button', null, S.emailSend);
    b.type = 'submit';
    f.append(i, b);
    f.addEventListener('submit', function (e) {
      e.preventDefault();
      api('POST', '/email', { email: i.value }).then(function (r) {
        if (r) { extra.hidden = true; take(r.records); }
      });
    });
    extra.append(f);
    i.focus();
  }
  function rating() {
    extra.textContent = '';
    extra.hidden = false;
    extra.append(el('span', null, S.rate));
    var comment = el('input', 'rate-c');
    comment.type = 'text';
    comment.maxLength = 2000;
    comment.placeholder = S.comment;
    comment.setAttribute('aria-label', S.comment);
    [1, 2, 3, 4, 5].forEach(function (n) {
      var b = btn(null, '★'.repeat(n), function () {
        var body = { score: n };
        if (comment.value.trim()) body.comment = comment.value.trim();
        api('POST', '/rating', body).then(function (r) { if (r) take(r.records); });
      });
      b.setAttribute('aria-label', t('star', { n: n }));
      extra.append(b);
    });
    extra.append(comment);
    // The rating takes room under the log: keep the closing line in view.
    scroll();
  }

  // "Was this helpful? Yes / No" under each answer of an intent (a
  // bot_reply with an intent; not the bot's own lines like "All right").
  // The choice stays changeable: the server keeps every change, the last
  // counts; the pressed button shows which one is current. After "No" the
  // server's reply is an offer of a person, rendered like any other.
  var helpfulOf = {};                  // answer seq -> function(helpful)
  function helpful(seq) {
    var g = el('div', 'fb');
    g.setAttribute('role', 'group');
    var q = el('span', null, S.helpful);
    q.id = 'fd-fb-' + seq;
    g.setAttribute('aria-labelledby', q.id);
    var done = el('span', 'sr');
    function choose(h) {
      api('POST', '/feedback', { about: seq, helpful: h }).then(function (r) {
        if (r && !r.refused) { mark(h); take(r.records); }
      });
    }
    var yes = btn(null, S.helpfulYes, function () { choose(true); });
    var no = btn(null, S.helpfulNo, function () { choose(false); });
    function mark(h) {
      yes.setAttribute('aria-pressed', String(h === true));
      no.setAttribute('aria-pressed', String(h === false));
      done.className = '';
      done.textContent = S.helpfulThanks;
    }
    yes.setAttribute('aria-pressed', 'false');
    no.setAttribute('aria-pressed', 'false');
    g.append(q, yes, no, done);
    log.append(g);
    helpfulOf[seq] = mark;
  }

  // ---- records -------------------------------------------------------------
  function take(records) { (records || []).forEach(render); }
  function render(r) {
    if (!r || bySeq[r.seq]) return;
    bySeq[r.seq] = 1;
    lastSeq = Math.max(lastSeq, r.seq);
    var e = r.event;
    if (live && panel.hidden && /^(bot_reply|clarification|slot_prompt|fallback|handoff_offered|agent_message)$/.test(e.type)) {
      setUnread(unread + 1);
    }
    switch (e.type) {
      case 'visitor_message':
        acked[e.client_id] = 1;
        var p = log.querySelector('[data-cid="' + CSS_ESC(e.client_id) + '"]');
        if (p) { p.classList.remove('pending'); p.removeAttribute('data-cid'); } else bubble('me', S.you, e.text);
        break;
      case 'bot_reply': case 'clarification': case 'slot_prompt': case 'fallback':
        showTyping(false);
        bubble('bot', S.bot, e.text);
        if (e.type === 'bot_reply' && e.intent) helpful(r.seq);
        quick(e.quick_replies || []);
        break;
      case 'feedback': if (helpfulOf[e.about]) helpfulOf[e.about](e.helpful); break;
      case 'handoff_offered':
        showTyping(false);
        bubble('bot', S.bot, e.text);
        quick([S.yes, S.no]);
        break;
      // A person is asked for or here: the footer's offer of one goes
      // until the conversation is back with the bot or closed.
      case 'handoff':
        showTyping(false); quick([]); showStatus(S.handoff);
        if (root.activeElement === person) input.focus();
        person.hidden = true;
        break;
      case 'queued':
        showStatus(t('queued', { position: e.position }) +
          (e.wait_secs != null ? ' ' + t('wait', { minutes: Math.max(1, Math.round(e.wait_secs / 60)) }) : ''));
        break;
      case 'agent_joined': showTyping(false); showStatus(''); sys(t('joined', { agent: e.agent })); break;
      case 'agent_message': showTyping(false); agentBubble(e); break;
      case 'transfer': sys(t('transfer', { agent: e.to })); break;
      case 'returned_to_bot': person.hidden = false; sys(S.back); break;
      case 'closed': person.hidden = false; showTyping(false); showStatus(''); quick([]); sys(S.closed); rating(); transcriptOffer(); break;
      case 'rating': extra.hidden = true; sys(S.thanks); break;
      case 'email_left': knownEmail = e.email; sys(t('emailLeft', { email: e.email })); break;
      case 'started': if (e.visitor && e.visitor.email) knownEmail = e.visitor.email; break;
      case 'attachment': attachment(e); break;
      default: break;
    }
  }
  // ---- attachments ----------------------------------------------------------
  // An image or a PDF, sent as the raw body with its name in the query
  // (the server reads the type from the content). Shown as a thumbnail
  // (images) or a link (PDFs), through a signed link (fileUrl).
  function attachControl() {
    var clip = el('label', 'clip');
    var file = el('input');
    file.type = 'file';
    file.accept = 'image/png,image/jpeg,image/gif,image/webp,application/pdf';
    file.setAttribute('aria-label', S.attach);
    clip.title = S.attach;
    // A drawn paperclip (an emoji shows as an empty box without an emoji font).
    var glyph = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    glyph.setAttribute('viewBox', '0 0 24 24');
    glyph.setAttribute('width', '22');
    glyph.setAttribute('height', '22');
    glyph.setAttribute('aria-hidden', 'true');
    var p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    p.setAttribute('d', 'M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6z');
    p.setAttribute('fill', 'currentColor');
    glyph.append(p);
    clip.append(file, glyph);
    file.addEventListener('change', function () {
      var f = file.files && file.files[0];
      file.value = '';
      if (f) upload(f);
    });
    return clip;
  }
  function upload(f) {
    showStatus(S.attaching);
    ensure().then(function (c) {
      return fetch(base + '/api/v1/conversations/' + c.id + '/attachments?name=' + encodeURIComponent(f.name || ''), {
        method: 'POST',
        headers: { 'content-type': f.type || 'application/octet-stream', authorization: 'Bearer ' + c.token },
        body: f
      });
    }).then(function (res) {
      if (res.status === 413) { showStatus(S.attachTooLarge, true); return null; }
      if (res.status === 415) { showStatus(S.attachType, true); return null; }
      if (res.status === 409) { showStatus(S.attachClosed, true); return null; }
      return answer(res);
    }, function () { showStatus(S.down, true); return null; }).then(function (r) {
      if (r && r.records) { showStatus(''); take(r.records); }
    });
  }
  // An <img> cannot send a header, and the token must not sit in a URL
  // (address bar, history, "copy image address"): the server gives a
  // link signed for this one file, valid 24 hours.
  function fileUrl(e) {
    return fetch(base + '/api/v1/conversations/' + encodeURIComponent(conv.id) + '/attachments/' +
      encodeURIComponent(e.id) + '/link', { headers: { authorization: 'Bearer ' + conv.token } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (l) { return l && l.url ? base + l.url : null; }, function () { return null; });
  }
  function attachment(e) {
    if (!conv) return;
    if (live && panel.hidden && e.agent) setUnread(unread + 1);
    var d = el('div', 'msg att ' + (e.agent ? 'agent' : 'me'));
    d.append(el('span', 'who', e.agent || S.you));
    var a = el('a');
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    var img = null;
    if (e.kind === 'pdf') {
      a.textContent = e.name + ' (PDF, ' + Math.max(1, Math.round(e.size / 1024)) + ' KB)';
    } else {
      img = el('img');
      img.alt = e.name;
      img.addEventListener('load', scroll);
      a.append(img);
    }
    fileUrl(e).then(function (url) {
      if (!url) return;
      a.href = url;
      if (img) img.src = url;
    });
    d.append(a);
    log.append(d);
    scroll();
  }

  // ---- email: the transcript at the close -------------------------------
  // Only when the server sends email, and only to the address left in the
  // conversation (the server sends it nowhere else, once): shown read-only
  // when known; otherwise the visitor leaves one here first.
  var knownEmail = '';
  function transcriptOffer() {
    if (!CONF.email) return;
    var f = el('form', 'tx');
    var i = el('input');
    i.type = 'email';
    i.required = true;
    i.value = knownEmail || identity.email || '';
    i.readOnly = !!knownEmail;
    i.setAttribute('aria-label', S.email);
    i.placeholder = S.email;
    var b = el('button', null, S.transcript);
    b.type = 'submit';
    f.append(i, b);
    function send() {
      api('POST', '/transcript', {}).then(function (r) {
        if (r && !r.refused) { f.remove(); sys(t('transcriptSent', { email: r.email })); }
      });
    }
    f.addEventListener('submit', function (e) {
      e.preventDefault();
      if (knownEmail) { send(); return; }
      api('POST', '/email', { email: i.value.trim() }).then(function (r) {
        if (r) { take(r.records); send(); }
      });
    });
    log.append(f);
    scroll();
  }

  // ---- the pre-chat form ([widget] prechat) --------------------------------
  // Before the first message of a new conversation, unless the page told
  // us who the visitor is: a name (optional) and an email (checked here
  // and by the server). They go with the new conversation, so agents see
  // them as the visitor's identity.
  var pre = el('form', 'pre');
  pre.hidden = true;
  pre.noValidate = true;
  var preIntro = el('p', null, S.prechat);
  preIntro.id = 'fd-pre-intro';
  pre.setAttribute('aria-labelledby', 'fd-pre-intro');
  var preNameL = el('label', null, S.prechatName);
  preNameL.htmlFor = 'fd-pre-name';
  var preName = el('input');
  preName.id = 'fd-pre-name';
  preName.type = 'text';
  preName.maxLength = 200;
  preName.autocomplete = 'name';
  var preEmailL = el('label', null, S.email);
  preEmailL.htmlFor = 'fd-pre-email';
  var preEmail = el('input');
  preEmail.id = 'fd-pre-email';
  preEmail.type = 'email';
  preEmail.required = true;
  preEmail.maxLength = 254;
  preEmail.autocomplete = 'email';
  preEmail.setAttribute('aria-describedby', 'fd-pre-err');
  var preErr = el('p', 'pre-err', S.prechatBadEmail);
  preErr.id = 'fd-pre-err';
  preErr.hidden = true;
  preErr.setAttribute('role', 'alert');
  var preGo = el('button', 'send', S.prechatStart);
  preGo.type = 'submit';
  pre.append(preIntro, preNameL, preName, preEmailL, preEmail, preErr, preGo);
  function plausibleEmail(v) {
    return v.length <= 254 && !/\s/.test(v) && /^[^@]+@[^@.][^@]*\.[^@]*[^@.]$/.test(v);
  }
  pre.addEventListener('submit', function (e) {
    e.preventDefault();
    var email = preEmail.value.trim();
    if (!plausibleEmail(email)) {
      preErr.hidden = false;
      preEmail.setAttribute('aria-invalid', 'true');
      preEmail.focus();
      return;
    }
    identity = { name: preName.value.trim() || undefined, id: identity.id, email: email };
    showPrechat(false);
    input.focus();
  });
  function preShown() { return !pre.hidden; }
  function preFirst() { return preName; }
  function showPrechat(on) {
    pre.hidden = !on;
    form.hidden = on;
    foot.hidden = on;
  }

  function CSS_ESC(s) { return String(s).replace(/["\\]/g, '\\$&'); }

  // ---- the API ----------------------------------------------------------------
  function api(method, path, body) {
    return ensure().then(function (c) {
      return fetch(base + '/api/v1/conversations/' + c.id + path, {
        method: method,
        headers: { 'content-type': 'application/json', authorization: 'Bearer ' + c.token },
        body: body ? JSON.stringify(body) : undefined
      });
    }).then(answer, function () { showStatus(S.down, true); return null; });
  }
  function answer(res) {
    if (!res) return null;
    if (res.status === 404 && conv) { forget(); return null; }
    if (res.status === 429) {
      showStatus(t('limited', { seconds: res.headers.get('retry-after') || 10 }), true);
      return null;
    }
    if (!res.ok) {
      showStatus(S.failed, true);
      // A refusal that a retry cannot change (422, 413, 409): say so, and
      // do not let it hold back what was typed after it.
      return res.status >= 400 && res.status < 500 ? { refused: res.status } : null;
    }
    if (/status err/.test(status.className)) showStatus('');
    return res.json();
  }
  function forget() { conv = null; reset(); persist(); }
  // A new log (a lost conversation, or a resync): nothing on screen counts.
  function reset() {
    lastSeq = 0;
    bySeq = {};
    helpfulOf = {};
    log.textContent = '';
    log.append(el('div', 'sys', S.welcome));
  }
  function ensure() {
    if (conv) return Promise.resolve(conv);
    if (!creating) {
      creating = createConversation().then(function (res) {
        if (res.status === 429) { showStatus(t('limited', { seconds: res.headers.get('retry-after') || 60 }), true); throw 0; }
        if (!res.ok) throw 0;
        return res.json();
      }).then(function (c) {
        conv = { id: c.id, token: c.token };
        persist();
        take(c.events);
        connect();
        return conv;
      }).finally(function () { creating = null; });
    }
    return creating;
  }
  function submit() {
    var text = input.value.trim();
    if (!text) return;
    input.value = '';
    say(text);
  }
  function say(text) {
    quick([]);
    var item = { text: text, client_id: rid() };
    outbox.push(item);
    persist();
    bubble('me pending', S.you, text).setAttribute('data-cid', item.client_id);
    flush();
  }
  // Sends what was typed, in order, once each: the client id makes a
  // resend after a lost answer harmless, and an item leaves the outbox only
  // when the server has it.
  function flush() {
    if (flushing || !outbox.length) return;
    flushing = true;
    var item = outbox[0];
    showTyping(true);
    api('POST', '/messages', { text: item.text, client_id: item.client_id }).then(function (r) {
      flushing = false;
      if (!r) { showTyping(false); setTimeout(flush, 3000); return; }
      outbox.shift();
      acked[item.client_id] = 1;
      persist();
      if (r.refused) {
        showTyping(false);
        var p = log.querySelector('[data-cid="' + CSS_ESC(item.client_id) + '"]');
        if (p) { p.classList.remove('pending'); p.removeAttribute('data-cid'); p.append(el('span', 'who', S.failed)); }
        flush();
        return;
      }
      take(r.records);
      if (!r.records.some(function (x) { return x.event.type !== 'visitor_message'; })) showTyping(false);
      flush();
    });
  }
  function askPerson() {
    setOpen(true);
    api('POST', '/handoff').then(function (r) { if (r) take(r.records); });
  }
  function history() {
    if (!conv) return Promise.resolve();
    return api('GET', '/events?after=' + lastSeq).then(function (r) { if (r) take(r.events); });
  }

  // ---- the socket --------------------------------------------------------------
  function connect() {
    if (!conv || (ws && ws.readyState < 2)) return;
    clearTimeout(wsTimer);
    var s = new WebSocket(wsBase + '/api/v1/conversations/' + conv.id + '/ws?token=' + encodeURIComponent(conv.token) + '&after=' + lastSeq);
    ws = s;
    s.onopen = function () { wsTries = 0; if (/status err/.test(status.className)) showStatus(''); flush(); };
    s.onmessage = function (m) {
      var d;
      try { d = JSON.parse(m.data); } catch (e) { return; }
      if (d.kind === 'record') render(d.record);
      else if (d.kind === 'typing') showTyping(true, 5000);
      else if (d.kind === 'resync') { reset(); }
    };
    s.onclose = function (e) {
      if (ws !== s) return;
      ws = null;
      if (!conv) return;
      if (e.code !== 1000 && e.code !== 4409) showStatus(S.down, true);
      var delay = Math.min(30000, 1000 * Math.pow(2, wsTries++)) * (0.5 + Math.random() / 2);
      wsTimer = setTimeout(connect, e.code === 4409 ? 0 : delay);
    };
  }
  // Mobile browsers suspend background sockets: come back at once.
  function wake() {
    if (conv && (!ws || ws.readyState > 1)) { wsTries = 0; connect(); }
    flush();
  }
  document.addEventListener('visibilitychange', function () { if (!document.hidden) wake(); });
  window.addEventListener('online', wake);
  window.addEventListener('pageshow', wake);

  // ---- identity verification (README, "Identity verification") --------------
  // identify({id, name, email, hash}): `hash` is the hex HMAC-SHA256 of the
  // id that the shop's server made with `[identity] secret`. It goes with
  // the new conversation, or, when a chat is under way already (identify
  // called late, or again on the next page), to /identity, which stores
  // nothing when it repeats what the server knows. The hash lives only in
  // memory, never in localStorage. Refused (`[identity] enforce` on and no
  // or a wrong hash): the visitor is told, and the chat goes on without
  // the id.
  function identifyVisitor(arg) {
    var str = function (v) { return v == null ? undefined : String(v); };
    identity = { name: str(arg.name), id: str(arg.id), email: str(arg.email), hash: str(arg.hash) };
    if (conv && identity.id) sendIdentity();
  }
  function sendIdentity() {
    fetch(base + '/api/v1/conversations/' + conv.id + '/identity', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + conv.token },
      body: JSON.stringify({ visitor_id: identity.id, name: identity.name, email: identity.email, identity_hash: identity.hash })
    }).then(function (res) {
      // Stored or not, nothing to show here: the record reaches the log
      // by the socket or the history (taken here, it could skip them).
      if (!res.ok) return res.json().then(identityRefused);
    }).catch(function () { /* offline: the next page identifies again */ });
  }
  function identityRefused(body) {
    if (!body || !body.error || body.error.code !== 'identity_unverified') return false;
    sys(S.identityRefused);
    identity = { name: identity.name, email: identity.email };
    return true;
  }
  function createConversation() {
    var post = function () {
      return fetch(base + '/api/v1/conversations', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: identity.name, visitor_id: identity.id, email: identity.email, identity_hash: identity.hash, page_url: location.href.slice(0, 2000) })
      });
    };
    return post().then(function (res) {
      if (res.status !== 401 && res.status !== 403) return res;
      return res.json().then(function (b) { return identityRefused(b) ? post() : res; }, function () { return res; });
    });
  }

  // ---- the page's API: window.frontdesk('identify', {...}) and friends --------
  function command(name, arg) {
    if (name === 'identify' && arg && typeof arg === 'object') identifyVisitor(arg);
    else if (name === 'open') setOpen(true);
    else if (name === 'close') setOpen(false);
  }
  var queued = (window.frontdesk && window.frontdesk.q) || [];
  window.frontdesk = function (name, arg) { command(name, arg); };
  // The same as methods, once the script has loaded: FrontDesk.identify({…}).
  window.FrontDesk = {
    identify: function (arg) { command('identify', arg); },
    open: function () { command('open'); },
    close: function () { command('close'); }
  };
  window.__frontdesk = true;
  queued.forEach(function (a) { command(a[0], a[1]); });

  // ---- email links: #frontdesk=<id>.<expires>.<signature> ------------------
  // The key works once and for a while ([email] link_hours): it is traded
  // for a session of that one conversation (not the visitor's own token),
  // which replaces any other conversation this browser had; a browser that
  // already has this conversation keeps its own token. The fragment is
  // removed from the address bar so it is not bookmarked or shared.
  var spent = false;
  function resumeFromLink() {
    var m = /^#frontdesk=([A-Za-z0-9_-]+)\.(\d+\.[0-9a-f]+)$/.exec(location.hash);
    if (!m) return Promise.resolve();
    try { window.history.replaceState(null, '', location.pathname + location.search); } catch (e) { /* keep it */ }
    return fetch(base + '/api/v1/conversations/' + m[1] + '/resume', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: m[2] })
    }).then(function (res) {
      if (res.ok) return res.json();
      // Used already (a mail scanner may have opened it first) or
      // expired: said in the open panel, where a new chat can start.
      if (res.status === 403) { spent = true; sys(S.linkSpent); }
      return null;
    }).then(function (r) {
      if (!r) return;
      if (!conv || conv.id !== r.id) { conv = { id: r.id, token: r.token }; outbox = []; reset(); }
      isOpen = true;
      persist();
    }, function () { /* the chat starts as usual */ });
  }

  function start() {
    document.body.append(host);
    panel.insertBefore(pre, form);
    resumeFromLink().then(begin);
  }
  function begin() {
    if (CONF.prechat && !conv && !outbox.length && !identity.email) showPrechat(true);
    // Left with the panel open and a conversation under way: it comes
    // back open (without taking the page's focus).
    // Opened by an email's link that no longer works: open, to say so.
    if (spent || (isOpen && (conv || outbox.length))) setOpen(true, true); else isOpen = false;
    // Back on a page with a conversation under way: history, then what was
    // typed but not yet sent (minus what the history shows arrived), then
    // live. Typed before any conversation existed: sent now, creating it.
    history().then(function () {
      live = true;
      outbox = outbox.filter(function (i) { return !acked[i.client_id]; });
      persist();
      outbox.forEach(function (i) { bubble('me pending', S.you, i.text).setAttribute('data-cid', i.client_id); });
      connect();
      flush();
    });
  }
  if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);
})();
