/* frontdesk agent console: canned replies. Typing `/` at the start of the
 * reply box opens a list of the team's saved replies; what follows the `/`
 * searches their titles, shortcuts and texts. Arrow keys move, Enter or a
 * click inserts the reply (with {name} filled in by the server for this
 * conversation's visitor), Escape closes the list. A combobox in ARIA
 * terms the reply box controls a listbox. Loaded after agent.js. */
(function () {
  'use strict';
  var desk = window.frontdeskConsole;
  var reply = document.getElementById('reply');
  var form = document.getElementById('reply-form');
  if (!desk || !reply || !form) return;
  var el = desk.el;
  var replies = [], shown = [], active = -1, loadedFor = null;

  var list = el('ul', 'canned');
  list.id = 'canned-list';
  list.setAttribute('role', 'listbox');
  list.setAttribute('aria-label', 'Canned replies');
  list.hidden = true;
  reply.parentNode.insertBefore(list, reply.nextSibling);
  // A textarea takes no combobox role (nor aria-expanded): the list is
  // announced through aria-controls and aria-activedescendant.
  reply.setAttribute('aria-autocomplete', 'list');
  reply.setAttribute('aria-controls', 'canned-list');
  var hint = el('p', 'muted', 'Type / for canned replies.');
  hint.id = 'canned-hint';
  reply.setAttribute('aria-describedby', 'canned-hint');
  list.parentNode.insertBefore(hint, list.nextSibling);

  function load(id) {
    loadedFor = id;
    desk.api('GET', '/agent/conversations/' + encodeURIComponent(id) + '/canned').then(function (r) {
      if (loadedFor === id) { replies = r.replies || []; update(); }
    }, function () { replies = []; });
  }
  // Read again on every open: an edit of the file shows without a reload.
  desk.on('open', function () { load(desk.current()); });

  function close() {
    list.hidden = true;
    list.textContent = '';
    shown = [];
    active = -1;
    reply.removeAttribute('aria-activedescendant');
  }
  function query() {
    var v = reply.value;
    return v.charAt(0) === '/' && v.indexOf('\n') < 0 ? v.slice(1).trim().toLowerCase() : null;
  }
  function update() {
    var q = query();
    if (q == null) { close(); return; }
    if (desk.current() && desk.current() !== loadedFor) load(desk.current());
    shown = replies.filter(function (r) {
      return !q || r.title.toLowerCase().indexOf(q) >= 0 ||
        (r.shortcut && r.shortcut.toLowerCase().indexOf(q) === 0) ||
        r.text.toLowerCase().indexOf(q) >= 0;
    });
    // An exact shortcut goes first.
    shown.sort(function (a, b) { return (b.shortcut === q) - (a.shortcut === q); });
    list.textContent = '';
    if (!shown.length) {
      var none = el('li', 'none', replies.length ? 'No canned reply matches “' + q + '”' : 'No canned replies yet');
      none.setAttribute('role', 'option');
      none.setAttribute('aria-disabled', 'true');
      list.append(none);
    }
    shown.forEach(function (r, i) {
      var li = el('li');
      li.id = 'canned-' + i;
      li.setAttribute('role', 'option');
      li.append(el('strong', null, r.title + (r.shortcut ? ' (/' + r.shortcut + ')' : '')), el('span', 'muted', ' ' + r.text.slice(0, 100)));
      li.addEventListener('mousedown', function (e) { e.preventDefault(); choose(i); });
      list.append(li);
    });
    list.hidden = false;
    move(shown.length ? 0 : -1);
  }
  function move(i) {
    active = i;
    Array.prototype.forEach.call(list.children, function (li, j) { li.setAttribute('aria-selected', String(j === i)); });
    if (i >= 0) {
      reply.setAttribute('aria-activedescendant', 'canned-' + i);
      var li = document.getElementById('canned-' + i);
      if (li && li.scrollIntoView) li.scrollIntoView({ block: 'nearest' });
    } else reply.removeAttribute('aria-activedescendant');
  }
  function choose(i) {
    var r = shown[i];
    if (!r) return;
    reply.value = r.text;
    close();
    reply.focus();
    reply.setSelectionRange(reply.value.length, reply.value.length);
    desk.say('Inserted canned reply: ' + r.title);
  }
  reply.addEventListener('input', update);
  reply.addEventListener('blur', function () { setTimeout(close, 150); });
  // Before agent.js's own Enter (send): while the list is open, the keys
  // belong to it (a capturing listener on the form runs first).
  form.addEventListener('keydown', function (e) {
    if (e.target !== reply || list.hidden) return;
    var keys = { ArrowDown: 1, ArrowUp: 1, Enter: 1, Escape: 1, Tab: 1 };
    if (!keys[e.key] || (e.key === 'Enter' && e.shiftKey)) return;
    if (e.key === 'Tab' && active < 0) return;
    e.preventDefault();
    e.stopPropagation();
    if (e.key === 'ArrowDown' && shown.length) move((active + 1) % shown.length);
    else if (e.key === 'ArrowUp' && shown.length) move((active - 1 + shown.length) % shown.length);
    else if (e.key === 'Escape') close();
    else if (active >= 0) choose(active);
  }, true);
})();
