/* frontdesk admin page: the intents and their validation status, a "try a
 * message" box with the decision trace, reloads. Texts go in as text. */
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var A = window.frontdeskAdmin, api = A.api, el = A.el;
  function when(ms) { return new Date(ms).toLocaleString(); }
  function status(s) {
    var box = $('status');
    box.textContent = '';
    if (s.ok) {
      box.append(el('p', 'ok', 'Serving ' + s.intents + ' intents, loaded ' + when(s.loaded_at_ms) + '.'));
    } else {
      box.append(el('p', 'err', 'The last edit (' + when(s.attempted_at_ms) + ') did not load; the intents loaded ' + when(s.loaded_at_ms) + ' keep serving. Errors:'));
      var ul = el('ul');
      s.errors.forEach(function (e) { ul.append(el('li', 'err', e)); });
      box.append(ul);
    }
  }
  function load() {
    return api('GET', '/admin/intents').then(function (v) {
      status(v.status);
      $('thresholds').textContent = 'Answer from ' + v.answer_threshold.toFixed(2) + ', clarify from ' + v.clarify_threshold.toFixed(2) + ' (' + v.thresholds + ')';
      var body = $('intents');
      body.textContent = '';
      v.intents.forEach(function (i) {
        var tr = el('tr');
        [i.id, i.action, String(i.examples), String(i.tests), i.description, i.file].forEach(function (c) { tr.append(el('td', null, c)); });
        body.append(tr);
      });
    });
  }
  $('reload').addEventListener('click', function () {
    api('POST', '/admin/reload').then(function (s) { status(s); return load(); }).catch(function (e) { $('status').textContent = e.message; });
  });
  $('try-form').addEventListener('submit', function (e) {
    e.preventDefault();
    api('POST', '/admin/classify', { text: $('try').value }).then(function (c) {
      var box = $('result');
      box.textContent = '';
      box.append(el('p', null, 'Decision: ' + c.decision + (c.intent ? ' · ' + c.intent : '') + (c.reason ? ' (' + c.reason + ')' : '') + ' — ' + c.why));
      var table = el('table'), head = el('tr');
      ['Intent', 'Score', 'Lexical', 'Rule', 'Evidence'].forEach(function (h) { var th = el('th', null, h); th.scope = 'col'; head.append(th); });
      table.append(head);
      c.candidates.forEach(function (k) {
        var tr = el('tr');
        [k.intent, k.score.toFixed(2), k.lexical.toFixed(2), k.rule.toFixed(2), k.evidence.join('; ')].forEach(function (x) { tr.append(el('td', null, x)); });
        table.append(tr);
      });
      box.append(table, el('pre', null, c.trace));
    }, function (e) { $('result').textContent = e.message; });
  });
  // The status follows edits made on disk.
  setInterval(function () { if (!$('app').hidden && !document.hidden) load().catch(function () {}); }, 5000);
  A.session(load);
})();
