/* frontdesk admin page, improving the bot: the failures inbox (clusters of
 * messages the bot failed on; add them as examples of an intent, make a
 * new intent from them, or dismiss them) and the intent editor (a form and
 * the raw TOML; the server validates every save like `frontdesk check` and
 * writes nothing on error). Texts go in as text.
 *
 * Hook for the replay panel: when `window.frontdeskReplay(container,
 * files)` is defined (replay.js), the editor shows "Preview on recent
 * traffic", which calls it with the element to render into and the edited
 * files as { "name.toml": "toml text" }: what Save would write. That is
 * the form's fields applied to the file (asked of the server, POST
 * …/fields/text, the same code as the save), or the raw TOML view when it
 * was edited after the form. */
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var A = window.frontdeskAdmin, api = A.api, el = A.el, token = A.token;
  function lines(text) {
    return text.split('\n').map(function (l) { return l.trim(); }).filter(Boolean);
  }
  function dayStart(value) { return value ? Date.parse(value + 'T00:00:00') : null; }

  /* ---- errors and status shared by both sections ---------------------- */
  function showErrors(box, e) {
    box.textContent = '';
    box.append(el('p', 'err', e.message.split('\n')[0]));
    var errs = (e.body && e.body.errors) || [];
    if (errs.length) {
      var ul = el('ul', 'errors');
      errs.forEach(function (x) { ul.append(el('li', 'err', x.text)); });
      box.append(ul);
    }
  }
  function savedText(s) {
    return 'Saved ' + s.name + (s.added ? ' (' + s.added + ' examples added)' : '') + '. ' +
      (s.reload.ok ? 'Live now: ' + s.reload.intents + ' intents.' : 'Written, but the reload failed: ' + s.reload.errors.join('; '));
  }

  /* ---- the intents list ---------------------------------------------- */
  var intentIds = [];
  function loadIntents() {
    return api('GET', '/admin/intents').then(function (v) {
      intentIds = v.intents.map(function (i) { return i.id; }).sort();
    });
  }

  /* ---- failures inbox ------------------------------------------------ */
  function loadFailures() {
    var q = [];
    var from = dayStart($('f-from').value), to = dayStart($('f-to').value);
    if (from != null) q.push('from=' + from);
    if (to != null) q.push('to=' + (to + 86400000));
    $('failures-status').textContent = 'Loading…';
    return Promise.all([loadIntents(), api('GET', '/admin/failures' + (q.length ? '?' + q.join('&') : ''))]).then(function (r) {
      renderFailures(r[1]);
    }, function (e) { $('failures-status').textContent = e.message; });
  }
  var clusterSeq = 0;
  function renderFailures(inbox) {
    var box = $('failures');
    box.textContent = '';
    var capped = inbox.clustered < inbox.total
      ? ' The newest ' + inbox.clustered + ' of them are clustered; choose a shorter window for the others.'
      : '';
    $('failures-status').textContent = inbox.total + ' failed messages in ' + inbox.clusters.length + ' clusters (grouped by ' +
      (inbox.clustered_by === 'meaning' ? 'meaning' : 'shared words') + ').' + capped;
    inbox.clusters.forEach(function (c) { box.append(renderCluster(c)); });
  }
  function renderCluster(c) {
    var n = ++clusterSeq;
    var art = el('article', 'cluster');
    art.setAttribute('aria-labelledby', 'cl-' + n);
    var h = el('h3', null, c.count + ' × “' + c.messages[0].text + '”');
    h.id = 'cl-' + n;
    art.append(h);
    art.append(el('p', 'muted', c.nearest_intent
      ? 'Nearest intent: ' + c.nearest_intent + ' (score ' + c.nearest_score.toFixed(2) + ')'
      : 'No intent is near.'));
    var fs = el('fieldset');
    fs.append(el('legend', null, 'Messages'));
    var boxes = [];
    c.messages.forEach(function (m, i) {
      var id = 'cl-' + n + '-m' + i;
      var row = el('div', 'row');
      var cb = el('input');
      cb.type = 'checkbox'; cb.id = id; cb.checked = true;
      cb.dataset.conversation = m.conversation; cb.dataset.seq = String(m.seq); cb.dataset.text = m.text;
      var why = m.why.map(function (w) { return w === 'handoff' && m.handoff_reason ? 'handoff (' + m.handoff_reason + ')' : w; }).join(', ');
      var label = el('label', null, m.text);
      label.htmlFor = id;
      row.append(cb, label, el('span', 'muted', why + ' · ' + new Date(m.at_ms).toLocaleString() + ' · ' + m.conversation + '#' + m.seq));
      fs.append(row);
      boxes.push(cb);
    });
    art.append(fs);
    if (c.proposed_answers.length) {
      art.append(el('p', 'muted', 'Agents answered: ' + c.proposed_answers.join(' · ')));
    }
    var selected = function () { return boxes.filter(function (b) { return b.checked; }); };
    var msg = el('div', null);
    msg.setAttribute('role', 'status');
    var errs = el('div', null);
    errs.setAttribute('role', 'alert');

    // Add as examples of an intent.
    var addRow = el('div', 'row');
    var selId = 'cl-' + n + '-intent';
    var selLabel = el('label', null, 'Intent');
    selLabel.htmlFor = selId;
    var sel = el('select');
    sel.id = selId;
    intentIds.forEach(function (id) {
      var o = el('option', null, id);
      o.value = id;
      if (id === c.nearest_intent) o.selected = true;
      sel.append(o);
    });
    var add = el('button', 'primary', 'Add as examples');
    add.type = 'button';
    add.addEventListener('click', function () {
      var ex = selected().map(function (b) { return b.dataset.text; });
      if (!ex.length) { msg.textContent = 'Select at least one message.'; return; }
      add.disabled = true; msg.textContent = 'Saving…'; errs.textContent = '';
      api('POST', '/admin/intents/' + encodeURIComponent(sel.value) + '/examples', { examples: ex }).then(function (s) {
        msg.textContent = savedText(s);
        refreshFiles();
      }, function (e) { msg.textContent = ''; showErrors(errs, e); }).then(function () { add.disabled = false; });
    });
    addRow.append(selLabel, sel, add);
    art.append(addRow);

    // A new intent from them.
    var details = el('details');
    details.append(el('summary', null, 'Create a new intent from them'));
    var idId = 'cl-' + n + '-newid', ansId = 'cl-' + n + '-answer';
    var idLabel = el('label', null, 'Intent id (lowercase, digits, _)');
    idLabel.htmlFor = idId;
    var idInput = el('input');
    idInput.id = idId;
    var ansLabel = el('label', null, 'Answer');
    ansLabel.htmlFor = ansId;
    var ans = el('textarea');
    ans.id = ansId; ans.rows = 3;
    ans.value = c.proposed_answers[0] || '';
    var create = el('button', 'primary', 'Create intent');
    create.type = 'button';
    create.addEventListener('click', function () {
      var ex = selected().map(function (b) { return b.dataset.text; });
      create.disabled = true; msg.textContent = 'Saving…'; errs.textContent = '';
      api('POST', '/admin/intent-files', { id: idInput.value.trim(), examples: ex, answers: lines(ans.value) }).then(function (s) {
        msg.textContent = savedText(s);
        refreshFiles();
      }, function (e) { msg.textContent = ''; showErrors(errs, e); }).then(function () { create.disabled = false; });
    });
    var d1 = el('div', 'field'); d1.append(idLabel, idInput);
    var d2 = el('div', 'field'); d2.append(ansLabel, ans);
    details.append(d1, d2, create);
    art.append(details);

    // Dismiss.
    var dismiss = el('button', null, 'Dismiss selected');
    dismiss.type = 'button';
    dismiss.addEventListener('click', function () {
      var ms = selected().map(function (b) { return { conversation: b.dataset.conversation, seq: Number(b.dataset.seq) }; });
      if (!ms.length) { msg.textContent = 'Select at least one message.'; return; }
      api('POST', '/admin/failures/dismiss', { messages: ms }).then(function (r) {
        msg.textContent = r.dismissed + ' dismissed.';
        loadFailures();
      }, function (e) { showErrors(errs, e); });
    });
    var dRow = el('div', 'row');
    dRow.append(dismiss);
    art.append(dRow, msg, errs);
    return art;
  }
  $('failures-form').addEventListener('submit', function (e) { e.preventDefault(); loadFailures(); });

  /* ---- intent editor ------------------------------------------------- */
  var current = null; // { name, version }
  // Which view was edited last ('form' or 'raw'): Preview shows what that
  // view's Save would write.
  var edited = null;
  ['e-description', 'e-examples', 'e-keywords', 'e-answers', 'e-quick', 'e-threshold'].forEach(function (id) {
    $(id).addEventListener('input', function () { edited = 'form'; });
  });
  $('e-raw').addEventListener('input', function () { edited = 'raw'; });
  function refreshFiles() {
    return api('GET', '/admin/intent-files').then(function (r) {
      var sel = $('e-file'), was = sel.value;
      sel.textContent = '';
      r.files.forEach(function (f) {
        var o = el('option', null, f.name);
        o.value = f.name;
        sel.append(o);
      });
      if (was) sel.value = was;
      if (current) {
        var f = r.files.filter(function (x) { return x.name === current.name; })[0];
        if (f && f.version !== current.version) $('e-status').textContent = current.name + ' changed on disk since it was opened; open it again before saving.';
      }
    });
  }
  function openFile(name) {
    $('e-errors').textContent = '';
    return api('GET', '/admin/intent-files/' + encodeURIComponent(name)).then(function (f) {
      current = { name: f.name, version: f.version };
      $('e-form').hidden = false;
      $('e-name').textContent = f.name + ' · ' + f.version.slice(0, 19);
      var x = f.fields || { examples: [], keywords: [], answers: [], quick_replies: [] };
      $('e-description').value = x.description || '';
      $('e-examples').value = x.examples.join('\n');
      $('e-keywords').value = x.keywords.join('\n');
      $('e-answers').value = x.answers.join('\n');
      $('e-quick').value = x.quick_replies.join('\n');
      $('e-threshold').value = x.threshold == null ? '' : String(x.threshold);
      $('e-raw').value = f.toml;
      edited = null;
      $('e-preview').hidden = typeof window.frontdeskReplay !== 'function';
      $('e-status').textContent = 'Opened ' + f.name + '.';
    }, function (e) { showErrors($('e-errors'), e); });
  }
  function afterSave(s) {
    current.version = s.version;
    $('e-errors').textContent = '';
    $('e-status').textContent = savedText(s);
    return openFile(current.name).then(function () { $('e-status').textContent = savedText(s); });
  }
  function saveError(e) {
    $('e-status').textContent = 'Not saved: nothing was written.';
    showErrors($('e-errors'), e);
  }
  $('e-open').addEventListener('click', function () { if ($('e-file').value) openFile($('e-file').value); });
  /* The form as a save sends it. */
  function formBody() {
    var t = $('e-threshold').value.trim();
    var body = {
      base_version: current.version,
      description: $('e-description').value,
      examples: lines($('e-examples').value),
      keywords: lines($('e-keywords').value),
      answers: lines($('e-answers').value),
      quick_replies: lines($('e-quick').value)
    };
    if (t) body.threshold = Number(t); else body.clear_threshold = true;
    return body;
  }
  $('e-form').addEventListener('submit', function (e) {
    e.preventDefault();
    if (!current) return;
    $('e-status').textContent = 'Saving…';
    api('PUT', '/admin/intent-files/' + encodeURIComponent(current.name) + '/fields', formBody()).then(afterSave, saveError);
  });
  $('e-raw-save').addEventListener('click', function () {
    if (!current) return;
    $('e-status').textContent = 'Saving…';
    api('PUT', '/admin/intent-files/' + encodeURIComponent(current.name), { toml: $('e-raw').value, base_version: current.version }).then(afterSave, saveError);
  });
  $('e-preview').addEventListener('click', function () {
    if (!current || typeof window.frontdeskReplay !== 'function') return;
    var name = current.name;
    $('e-errors').textContent = '';
    // What Save would write: the raw view if it was edited last, else the
    // form's fields applied to the file by the server (nothing written).
    var text = edited === 'raw'
      ? Promise.resolve({ toml: $('e-raw').value, from: 'the raw TOML' })
      : api('POST', '/admin/intent-files/' + encodeURIComponent(name) + '/fields/text', formBody()).then(function (t) {
        return { toml: t.toml, from: 'the form' };
      });
    text.then(function (t) {
      var files = {};
      files[name] = t.toml;
      $('e-status').textContent = 'Previewing ' + name + ' as a save of ' + t.from + ' would write it (not saved).';
      var r = window.frontdeskReplay($('e-replay'), files);
      // The panel shows its own errors.
      if (r && typeof r.catch === 'function') r.catch(function () {});
    }, function (e) {
      $('e-status').textContent = 'Not previewed.';
      showErrors($('e-errors'), e);
    });
  });

  /* Start once admin.js has logged in (it shows #app). */
  function start() {
    if ($('app').hidden || !token()) return false;
    refreshFiles();
    loadFailures();
    return true;
  }
  if (!start()) {
    var obs = new MutationObserver(function () { if (start()) obs.disconnect(); });
    obs.observe($('app'), { attributes: true, attributeFilter: ['hidden'] });
  }
})();
