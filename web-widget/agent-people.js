/* frontdesk agent console: agents as people (issue 18). Initials avatars
 * drawn from display names (no image is downloaded), the agent's own name
 * and presence in the header kept true (a console that connects makes an
 * agent who chose "online" online again: README, "Assignment and
 * presence"), and the list of agents to transfer to: a select of every
 * agent with presence and load, where only those online with room can be
 * picked. Hooks into agent.js through window.frontdeskConsole. */
(function () {
  'use strict';
  var desk = window.frontdeskConsole;
  if (!desk) return;
  var $ = function (id) { return document.getElementById(id); };
  var el = desk.el, agents = [], byName = {}, pending = null;

  function initials(name) {
    var words = String(name || '?').trim().split(/\s+/);
    var first = Array.from(words[0] || '?')[0] || '?';
    var last = words.length > 1 ? Array.from(words[words.length - 1])[0] : '';
    return (first + last).toUpperCase();
  }
  // A dark colour of the name, so white initials stay readable.
  function colour(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) % 360;
    return 'hsl(' + h + ',45%,30%)';
  }
  function display(login) {
    var a = byName[login];
    return a ? a.display_name : login;
  }
  function avatar(login) {
    var name = display(login), s = el('span', 'av', initials(name));
    s.style.background = colour(name);
    s.setAttribute('aria-hidden', 'true');
    s.title = name;
    return s;
  }

  // The header: who I am, as visitors see me, and my presence now.
  function header() {
    var me = desk.me();
    if (!me) return;
    var box = $('me'), a = byName[me.name];
    box.textContent = '';
    box.append(avatar(me.name), document.createTextNode(
      display(me.name) + (display(me.name) !== me.name ? ' (' + me.name + ')' : '') + (me.admin ? ' · admin' : '')));
    if (a && !a.disabled && $('presence').value !== a.presence && document.activeElement !== $('presence')) {
      $('presence').value = a.presence;
    }
  }

  // The agents to transfer to: everyone but me, by display name; only
  // those online with room can be chosen.
  function fill() {
    var sel = $('transfer-to'), me = desk.me(), keep = sel.value;
    if (!sel || sel.tagName !== 'SELECT') return;
    sel.textContent = '';
    var none = el('option', null, 'Choose an agent…');
    none.value = '';
    sel.append(none);
    agents.filter(function (a) { return !me || a.name !== me.name; }).forEach(function (a) {
      var free = a.presence === 'online' && a.active < a.capacity;
      var label = a.display_name + (a.display_name !== a.name ? ' (' + a.name + ')' : '') + ' · ' +
        (a.presence === 'online' && !free ? 'online, full' : a.presence) + ' · ' + a.active + '/' + a.capacity;
      var o = el('option', null, label);
      o.value = a.name;
      o.disabled = !free;
      sel.append(o);
    });
    sel.value = keep;
    if (sel.selectedIndex < 0 || (sel.selectedOptions[0] && sel.selectedOptions[0].disabled)) sel.value = '';
  }

  // Avatars beside agents' messages and notes in the conversation view.
  function decorate(node) {
    if (!node.classList || !node.classList.contains('ev') || node.dataset.av) return;
    if (!node.classList.contains('agent') && !node.classList.contains('note')) return;
    var who = node.querySelector('.who');
    if (!who) return;
    var login = who.textContent.replace(/^Note by /, '');
    node.dataset.av = login;
    who.prepend(avatar(login));
    if (display(login) !== login) who.append(document.createTextNode(' · ' + display(login)));
  }
  new MutationObserver(function (changes) {
    changes.forEach(function (c) { c.addedNodes.forEach(decorate); });
  }).observe($('events'), { childList: true });

  function load() {
    return desk.api('GET', '/agent/agents').then(function (list) {
      agents = list;
      byName = {};
      list.forEach(function (a) { byName[a.name] = a; });
      header();
      fill();
    }, function () { /* the console shows its own errors */ });
  }
  // Presence and load change with the queue: at most one list a second.
  function soon() {
    if (pending) return;
    pending = setTimeout(function () { pending = null; load(); }, 300);
  }
  desk.on('login', load);
  desk.on('open', soon);
  desk.on('socket', function (m) {
    if (m.kind === 'queue') soon();
    else if (m.kind === 'record' && /agent_joined|closed|transfer|returned_to_bot/.test(m.record.event.type)) soon();
  });
  $('presence').addEventListener('change', soon);
})();
