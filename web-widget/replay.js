/* frontdesk admin page, replay before deploy: what an edit of the intent
 * files would have changed on recent traffic, shown before it is saved.
 *
 * window.frontdeskReplay(container, files, options) posts the edited files
 * ({ "name.toml": "toml text" }) to POST /api/v1/admin/replay (nothing is
 * written on the server) and renders into `container`: the predicted
 * deltas, the changes by kind, the per-message differences, and a
 * threshold slider over the what-if curve of the current set (containment
 * against the share of bad answers, as SVG). options.sinceDays (default 7)
 * and options.token (default: the admin page's stored token). Returns a
 * promise of the report. Visitor texts go in as text, never as HTML.
 *
 * The "Replay an edit" section of admin.html (#replay-section), when
 * present, is wired here too: a file name, its TOML, Preview. */
(function () {
  'use strict';
  var uid = 0;
  var A = window.frontdeskAdmin, el = A.el, svg = A.svg;
  function pct(x) { return (x * 100).toFixed(1) + '%'; }
  function signed(n) { return (n > 0 ? '+' : '') + n; }
  function outcome(o) {
    var s = o.kind.replace('_', ' ');
    if (o.fell_back && o.kind !== 'fallback') s = 'fallback, ' + s;
    if (o.reason) s += ' (' + o.reason.replace(/_/g, ' ') + ')';
    if (o.intent) s += ' · ' + o.intent;
    if (o.options && o.options.length) s += ' [' + o.options.join(', ') + ']';
    return s + ' · ' + o.score.toFixed(2);
  }
  function describe(d) {
    var to = d.after.intent || '?';
    switch (d.change) {
      case 'handoff_to_answer': case 'offer_to_answer': return 'This handoff would now be answered by ' + to + '.';
      case 'fallback_to_answer': return 'This fallback would now be answered by ' + to + '.';
      case 'clarify_to_answer': return 'This question would now be answered by ' + to + '.';
      case 'answer_changed_intent': return 'This answer would change intent: ' + (d.before.intent || '?') + ' → ' + to + '.';
      default: return d.change.replace(/_/g, ' ') + '.';
    }
  }
  function table(caption, heads, rows) {
    var t = el('table'), cap = el('caption', null, caption), tr = el('tr');
    t.append(cap);
    heads.forEach(function (h) { var th = el('th', null, h); th.scope = 'col'; tr.append(th); });
    var thead = el('thead'); thead.append(tr); t.append(thead);
    var body = el('tbody');
    rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (c) { row.append(el('td', null, c)); });
      body.append(row);
    });
    t.append(body);
    return t;
  }

  function renderReport(box, r) {
    var b = r.before, a = r.after;
    box.append(el('p', 'replay-summary', r.conversations + ' conversations, ' + r.messages +
      ' visitor messages replayed (' + r.skipped_with_agent + ' sent while a person held the conversation: skipped). ' +
      r.changed + ' would be decided differently. Nothing has been saved.'));
    var rows = [
      ['Answered', b.answered, a.answered], ['Clarified', b.clarified, a.clarified],
      ['Fallbacks', b.fallbacks, a.fallbacks], ['Offers of a person', b.offers, a.offers],
      ['Handoffs', b.handoffs, a.handoffs], ['Contained conversations', b.contained, a.contained]
    ].map(function (x) { return [x[0], String(x[1]), String(x[2]), signed(x[2] - x[1])]; });
    rows.push(['Containment', pct(b.containment), pct(a.containment),
      signed(Number(((a.containment - b.containment) * 100).toFixed(1))) + ' pts']);
    box.append(table('Predicted change (each message replayed on its conversation as it was)',
      ['', 'Now', 'With the edit', 'Change'], rows));
    if (r.changes.length) {
      var ul = el('ul', 'replay-changes');
      r.changes.forEach(function (c) { ul.append(el('li', null, c.count + ' × ' + c.change.replace(/_/g, ' '))); });
      box.append(ul);
    }
    if (r.differences.length) {
      box.append(table('Messages decided differently' + (r.changed > r.differences.length ? ' (first ' + r.differences.length + ' of ' + r.changed + ')' : ''),
        ['Conversation', 'When', 'Message', 'Now', 'With the edit', 'In words'],
        r.differences.map(function (d) {
          return [d.conversation + ' #' + d.seq, new Date(d.at_ms).toLocaleString(), d.text,
            outcome(d.before), outcome(d.after), describe(d)];
        })));
    }
  }

  function renderCurve(box, c) {
    var id = 'replay-t-' + (++uid);
    var wrap = el('div', 'replay-curve');
    wrap.append(el('h3', null, 'What if the answer threshold were different? (current intents)'));
    if (!c.points.length || !c.messages) {
      wrap.append(el('p', 'muted', 'No traffic in the window.'));
      box.append(wrap);
      return;
    }
    var W = 320, H = 200, P = 36;
    var maxBad = Math.max(0.05, Math.max.apply(null, c.points.map(function (p) { return p.bad_share; })));
    var x = function (p) { return P + (p.bad_share / maxBad) * (W - 2 * P); };
    var y = function (p) { return H - P - p.containment * (H - 2 * P); };
    var chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-labelledby': id + '-title' });
    var title = svg('title', { id: id + '-title' });
    title.textContent = 'Containment against the share of bad answers, one point per answer threshold from 0.05 to 0.95';
    chart.append(title);
    chart.append(svg('line', { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: 'currentColor' }));
    chart.append(svg('line', { x1: P, y1: P, x2: P, y2: H - P, stroke: 'currentColor' }));
    var xl = svg('text', { x: W / 2, y: H - 6, 'text-anchor': 'middle', 'font-size': 11, fill: 'currentColor' });
    xl.textContent = 'bad answers (0–' + pct(maxBad) + ')';
    var yl = svg('text', { x: 4, y: P - 10, 'font-size': 11, fill: 'currentColor' });
    yl.textContent = 'containment (0–100%)';
    chart.append(xl, yl);
    chart.append(svg('polyline', {
      points: c.points.map(function (p) { return x(p).toFixed(1) + ',' + y(p).toFixed(1); }).join(' '),
      fill: 'none', stroke: '#0b6e4f', 'stroke-width': 2
    }));
    var dot = svg('circle', { r: 5, fill: '#b3261e' });
    chart.append(dot);
    wrap.append(chart);
    var row = el('div', 'row');
    var label = el('label', null, 'Answer threshold');
    label.htmlFor = id;
    var slider = el('input');
    slider.type = 'range'; slider.id = id; slider.min = '0'; slider.max = String(c.points.length - 1); slider.step = '1';
    var current = 0;
    c.points.forEach(function (p, i) { if (Math.abs(p.threshold - c.current) < Math.abs(c.points[current].threshold - c.current)) current = i; });
    slider.value = String(current);
    var readout = el('p', 'replay-readout');
    readout.setAttribute('aria-live', 'polite');
    function show() {
      var p = c.points[Number(slider.value)];
      dot.setAttribute('cx', x(p).toFixed(1));
      dot.setAttribute('cy', y(p).toFixed(1));
      var text = 'At ' + p.threshold.toFixed(2) + (Math.abs(p.threshold - c.current) < 0.001 ? ' (now)' : '') +
        ': containment ' + pct(p.containment) + ' (' + p.contained + ' of ' + c.conversations + ' conversations), bad answers ' +
        pct(p.bad_share) + ' (' + p.bad_answers + ' of ' + p.answers + ' answers; ' + p.unjudged_answers + ' not given then, so not rated).';
      slider.setAttribute('aria-valuetext', p.threshold.toFixed(2));
      readout.textContent = text;
    }
    slider.addEventListener('input', show);
    row.append(label, slider);
    wrap.append(row, readout);
    wrap.append(el('p', 'muted', 'Bad: rated not helpful or followed by a handoff. The current answer threshold is ' + c.current.toFixed(2) + '; intents with their own threshold are held to the slider\'s here.'));
    show();
    box.append(wrap);
  }

  window.frontdeskReplay = function (container, files, options) {
    options = options || {};
    var token = options.token || A.token();
    var days = options.sinceDays || 7;
    container.textContent = '';
    var status = el('p', null, 'Replaying the last ' + days + ' days…');
    status.setAttribute('role', 'status');
    container.append(status);
    var report = A.api('POST', '/admin/replay', { since_days: days, files: files || {} }, token);
    var curve = A.api('GET', '/admin/replay/thresholds?since_days=' + days, null, token).catch(function () { return null; });
    return Promise.all([report, curve]).then(function (got) {
      status.textContent = 'Replayed the last ' + days + ' days against the edit.';
      var box = el('div', 'replay-report');
      renderReport(box, got[0]);
      if (got[1]) renderCurve(box, got[1]);
      container.append(box);
      return got[0];
    }, function (e) {
      status.textContent = e.code === 'invalid_intents'
        ? 'The edit does not validate; nothing was replayed or saved:'
        : 'Replay failed: ' + e.message;
      if (e.code === 'invalid_intents') {
        var ul = el('ul', 'err');
        ul.setAttribute('role', 'alert');
        e.message.split('\n').forEach(function (line) { ul.append(el('li', 'err', line)); });
        container.append(ul);
      }
      throw e;
    });
  };

  /* The standalone "Replay an edit" section of admin.html. */
  function wire() {
    var form = document.getElementById('replay-form');
    if (!form) return;
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var name = document.getElementById('replay-file').value.trim();
      var files = {};
      if (name) files[name] = document.getElementById('replay-toml').value;
      var days = Number(document.getElementById('replay-days').value) || 7;
      window.frontdeskReplay(document.getElementById('replay-result'), files, { sinceDays: days }).catch(function () {});
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', wire);
  else wire();
})();
