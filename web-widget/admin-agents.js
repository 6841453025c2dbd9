/* frontdesk admin page: the agents. List with presence and load; add an
 * agent; rename (the display name visitors see); make admin or not; a new
 * token (shown once); disable or enable; remove (asked twice). The server
 * keeps the last admin an admin and refuses to let an admin demote,
 * disable or remove themselves; its message is shown as it is. Texts go
 * in as text. */
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var A = window.frontdeskAdmin, api = A.api, el = A.el;

  function initials(name) {
    var words = String(name || '?').trim().split(/\s+/);
    var first = Array.from(words[0] || '?')[0] || '?';
    var last = words.length > 1 ? Array.from(words[words.length - 1])[0] : '';
    return (first + last).toUpperCase();
  }
  function avatar(name) {
    var s = el('span', 'av', initials(name)), h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) % 360;
    s.style.background = 'hsl(' + h + ',45%,30%)';
    s.setAttribute('aria-hidden', 'true');
    return s;
  }
  function say(text, error) {
    var p = $('agents-status');
    p.textContent = text;
    p.className = error ? 'err' : '';
  }
  function button(text, fn, cls) {
    var b = el('button', cls, text);
    b.type = 'button';
    b.addEventListener('click', fn);
    return b;
  }
  // A token is shown once, with who it is for.
  function showToken(created) {
    var box = $('agent-token');
    box.textContent = '';
    box.hidden = false;
    var code = el('code', null, created.token);
    code.id = 'agent-token-value';
    box.append(el('p', null, 'The token of ' + created.name + ' (shown this once; copy it now):'), code);
  }
  function change(name, body, done) {
    return api('PATCH', '/admin/agents/' + encodeURIComponent(name), body).then(function (a) {
      // Enabling an agent gives a new token (the disable revoked theirs).
      if (a.token) showToken(a);
      say(done(a));
      return load();
    }, function (e) { say(e.message, true); });
  }

  function row(a) {
    var tr = el('tr'), me = $('agents').dataset.me;
    tr.dataset.agent = a.name;
    var who = el('td');
    who.append(avatar(a.display_name), document.createTextNode(a.name));
    var nameCell = el('td'), form = el('form', 'row');
    var input = el('input');
    input.value = a.display_name === a.name ? '' : a.display_name;
    input.placeholder = a.name;
    input.maxLength = 64;
    input.setAttribute('aria-label', 'Display name of ' + a.name);
    var save = el('button', null, 'Rename');
    save.type = 'submit';
    form.append(input, save);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      change(a.name, { display_name: input.value }, function (x) { return a.name + ' is shown to visitors as ' + x.display_name + '.'; });
    });
    nameCell.append(form);
    var role = el('td', null, a.admin ? 'Admin' : 'Agent');
    var presence = el('td', null, a.disabled ? 'disabled' : a.presence + ' · ' + a.active + '/' + a.capacity);
    var actions = el('td');
    actions.append(
      button(a.admin ? 'Make agent' : 'Make admin', function () {
        change(a.name, { admin: !a.admin }, function (x) { return a.name + (x.admin ? ' is an admin now.' : ' is no admin now.'); });
      }),
      button('New token', function () {
        api('POST', '/admin/agents/' + encodeURIComponent(a.name) + '/token').then(function (c) {
          showToken(c);
          // My own token changed: this page's is refused from now on.
          if (a.name === me) { say('Your own token changed: log out and log in again with the new one.'); return; }
          say('The old token of ' + a.name + ' no longer works.');
          return load();
        }, function (e) { say(e.message, true); });
      }),
      button(a.disabled ? 'Enable' : 'Disable', function () {
        change(a.name, { disabled: !a.disabled }, function (x) { return a.name + (x.disabled ? ' is disabled: their token is revoked.' : ' is enabled again, with the new token above.'); });
      }));
    var remove = button('Remove', function () {
      if (!remove.dataset.sure) {
        remove.dataset.sure = '1';
        remove.textContent = 'Really remove ' + a.name + '?';
        return;
      }
      api('DELETE', '/admin/agents/' + encodeURIComponent(a.name)).then(function () {
        say(a.name + ' is removed.');
        return load();
      }, function (e) { say(e.message, true); remove.textContent = 'Remove'; delete remove.dataset.sure; });
    });
    actions.append(remove);
    [who, nameCell, role, presence, actions].forEach(function (td) { tr.append(td); });
    return tr;
  }

  function load() {
    return Promise.all([api('GET', '/admin/agents'), api('GET', '/agent/me')]).then(function (r) {
      var body = $('agents');
      body.dataset.me = r[1].name;
      body.textContent = '';
      r[0].forEach(function (a) { body.append(row(a)); });
    });
  }

  $('agent-add').addEventListener('submit', function (e) {
    e.preventDefault();
    var name = $('agent-name').value.trim(), shown = $('agent-display').value.trim();
    api('POST', '/admin/agents', { name: name, admin: $('agent-admin').checked }).then(function (c) {
      showToken(c);
      var then = shown ? api('PATCH', '/admin/agents/' + encodeURIComponent(name), { display_name: shown }) : Promise.resolve();
      return then.then(function () {
        say((c.existed ? name + ' got a new token.' : name + ' is added.'));
        $('agent-add').reset();
        return load();
      });
    }).catch(function (e) { say(e.message, true); });
  });

  function start() {
    if ($('app').hidden || !A.token()) return false;
    load().catch(function (e) { say(e.message, true); });
    return true;
  }
  if (!start()) {
    var obs = new MutationObserver(function () { if (start()) obs.disconnect(); });
    obs.observe($('app'), { attributes: true, attributeFilter: ['hidden'] });
  }
  // Presence and load move on by themselves.
  setInterval(function () {
    if (!$('app').hidden && !document.hidden && !$('agents').contains(document.activeElement)) load().catch(function () {});
  }, 5000);
})();
