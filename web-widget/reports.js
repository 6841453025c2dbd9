/* frontdesk reports page: how the bot and the team did over a date range
 * (GET /api/v1/admin/reports/summary), drawn as SVG charts built here (no
 * chart library), each with a table beside it as its text alternative.
 * Every number is a button that lists the conversations behind it
 * (GET /api/v1/admin/reports/conversations?filter=…, with &day=… for one
 * day's part of a chart: a day's "handed off" segment lists exactly the
 * conversations started that day and handed off), and each of those
 * opens its transcript. Texts go in as text, never as HTML. */
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var A = window.frontdeskAdmin, api = A.api, el = A.el, svg = A.svg;
  var PAGE = 50;
  var COLORS = { contained: '#14622b', handed_off: '#1f5fbf', abandoned: '#6b7280', bar: '#1f5fbf', bad: '#a0144f' };
  var REASONS = {
    asked: 'Asked for a person', negative_sentiment: 'Upset', repeated_fallback: 'Repeated fallbacks',
    low_confidence: 'Bot unsure', intent_action: 'Intent hands off', agent_took_over: 'Agent took over',
    backend_error: 'Shop backend failed'
  };
  var drillState = null;


  // ---- formatting
  function pct(rate) {
    return rate.value == null ? '–' : (Math.round(rate.value * 1000) / 10) + '%';
  }
  function counts(rate) { return rate.num + ' of ' + rate.den; }
  function dur(ms) {
    if (ms == null) return '–';
    var s = Math.round(ms / 1000);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min' + (s % 60 ? ' ' + (s % 60) + ' s' : '');
    var m = Math.round(s / 60);
    return Math.floor(m / 60) + ' h' + (m % 60 ? ' ' + (m % 60) + ' min' : '');
  }
  function bucketLabel(b) {
    return b.to_ms == null ? '≥ ' + dur(b.from_ms) : dur(b.from_ms) + '–' + dur(b.to_ms);
  }
  function when(ms) { return new Date(ms).toLocaleString(); }
  function isoDay(d) {
    var p = function (n) { return (n < 10 ? '0' : '') + n; };
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate());
  }

  /** A number that opens the conversations behind it (of one `day`
   * only, when given). */
  function num(text, filter, label, day) {
    if (!filter) return el('span', null, text);
    var b = el('button', 'num', text);
    b.type = 'button';
    b.setAttribute('aria-label', text + ': show the conversations (' + label + ')');
    b.dataset.filter = filter;
    if (day) b.dataset.day = day;
    b.addEventListener('click', function () { drill(filter, label, day); });
    return b;
  }
  /** A rate shown with the count behind it, both opening the numerator. */
  function rateCell(rate, filter, label) {
    var span = el('span', 'rate');
    span.append(num(pct(rate), filter, label), el('span', 'muted', ' (' + counts(rate) + ')'));
    return span;
  }
  function table(caption, heads, rows) {
    var t = el('table');
    if (caption) t.append(el('caption', 'sr', caption));
    var tr = el('tr');
    heads.forEach(function (h) { var th = el('th', null, h); th.scope = 'col'; tr.append(th); });
    var thead = el('thead'); thead.append(tr); t.append(thead);
    var body = el('tbody');
    rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (c, i) {
        var cell = el(i === 0 ? 'th' : 'td');
        if (i === 0) cell.scope = 'row';
        if (c instanceof Node) cell.append(c); else cell.textContent = c == null ? '' : String(c);
        row.append(cell);
      });
      body.append(row);
    });
    t.append(body);
    return t;
  }

  // ---- charts
  /** Vertical bars, stacked when there are several series; `title` is the
   * chart's accessible name, `table` the same numbers as text. */
  function columns(box, title, labels, series, onBar) {
    var W = 640, H = 220, L = 36, B = 40, T = 10;
    var totals = labels.map(function (_, i) { return series.reduce(function (s, x) { return s + x.values[i]; }, 0); });
    var max = Math.max(1, Math.max.apply(null, totals));
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'class': 'chart-svg' });
    s.setAttribute('aria-label', title + ': ' + labels.map(function (l, i) {
      return l + ' ' + series.map(function (x) { return x.name + ' ' + x.values[i]; }).join(', ');
    }).join('; '));
    var bw = (W - L - 10) / Math.max(1, labels.length);
    // Whole-number gridlines: 0, the middle when it is whole, the top.
    (max % 2 ? [0, max] : [0, max / 2, max]).forEach(function (v) {
      var y = T + (H - T - B) * (1 - v / max);
      s.append(svg('line', { x1: L, x2: W - 5, y1: y, y2: y, stroke: '#d5d9de' }));
      var t = svg('text', { x: L - 4, y: y + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#4a4a4a' });
      t.textContent = String(v);
      s.append(t);
    });
    labels.forEach(function (l, i) {
      var y0 = H - B;
      series.forEach(function (x) {
        var v = x.values[i];
        if (!v) return;
        var h = (H - T - B) * v / max;
        var r = svg('rect', { x: L + i * bw + bw * 0.15, y: y0 - h, width: bw * 0.7, height: h, fill: x.color, 'class': 'bar' });
        r.dataset.series = x.key; r.dataset.label = l; r.dataset.value = v;
        var tip = svg('title'); tip.textContent = l + ' · ' + x.name + ': ' + v; r.append(tip);
        if (onBar) r.addEventListener('click', function () { onBar(x, i); });
        s.append(r);
        y0 -= h;
      });
      var t = svg('text', { x: L + i * bw + bw / 2, y: H - B + 14, 'text-anchor': 'middle', 'font-size': 11, fill: '#1b1b1b' });
      t.textContent = l;
      s.append(t);
      if (totals[i]) {
        var c = svg('text', { x: L + i * bw + bw / 2, y: y0 - 3, 'text-anchor': 'middle', 'font-size': 11, fill: '#1b1b1b', 'class': 'total' });
        c.textContent = String(totals[i]);
        s.append(c);
      }
    });
    if (series.length > 1) {
      var lx = L;
      series.forEach(function (x) {
        s.append(svg('rect', { x: lx, y: H - 16, width: 10, height: 10, fill: x.color }));
        var t = svg('text', { x: lx + 14, y: H - 7, 'font-size': 11, fill: '#1b1b1b' });
        t.textContent = x.name;
        s.append(t);
        lx += 24 + x.name.length * 6.5;
      });
    }
    box.append(s);
  }

  /** Horizontal bars with a label each (top intents, top failures). */
  function rowsChart(box, title, items) {
    var W = 640, RH = 22, L = 220;
    var H = Math.max(1, items.length) * RH + 6;
    var max = Math.max(1, Math.max.apply(null, items.map(function (x) { return x.value; })));
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'class': 'chart-svg' });
    s.setAttribute('aria-label', title + ': ' + (items.length ? items.map(function (x) { return x.label + ' ' + x.value; }).join(', ') : 'none'));
    items.forEach(function (x, i) {
      var y = 3 + i * RH;
      var t = svg('text', { x: L - 6, y: y + 15, 'text-anchor': 'end', 'font-size': 12, fill: '#1b1b1b' });
      t.textContent = x.label;
      s.append(t);
      var w = (W - L - 50) * x.value / max;
      var r = svg('rect', { x: L, y: y + 3, width: Math.max(1, w), height: RH - 6, fill: x.color || COLORS.bar, 'class': 'bar' });
      r.dataset.label = x.label; r.dataset.value = x.value;
      if (x.filter) r.addEventListener('click', function () { drill(x.filter, x.label); });
      s.append(r);
      var v = svg('text', { x: L + w + 4, y: y + 15, 'font-size': 12, fill: '#1b1b1b' });
      v.textContent = String(x.value);
      s.append(v);
    });
    box.append(s);
  }

  // ---- the report
  /** `pending`: conversations not judged yet (their days have not
   * passed), shown small beside the number and opening them. */
  function card(box, title, rate, filter, note, pending) {
    var c = el('div', 'card');
    c.append(el('h3', null, title));
    var big = el('p', 'big');
    big.append(num(pct(rate), filter, title));
    if (pending) {
      var p = num(pending + ' pending', filter + '_pending', title + ', not judged yet');
      p.classList.add('pending');
      p.style.fontSize = '13px';
      big.append(' ', p);
    }
    c.append(big, el('p', 'muted', counts(rate) + (note ? ' · ' + note : '')));
    box.append(c);
  }

  function render(r) {
    var w = r.window;
    $('window').textContent = w.from + ' to ' + w.to + ' (' + w.timezone + '): ' + r.cohort.conversations +
      ' conversations with a visitor message (' + r.cohort.started + ' started, ' + r.cohort.without_visitor_message +
      ' without one). Durable: no return within ' + w.durable_days + ' days; FCR: not reopened within ' + w.fcr_days + ' days.';
    var o = r.outcomes, box = $('outcomes');
    box.textContent = '';
    var cohort = el('div', 'card');
    cohort.append(el('h3', null, 'Conversations'));
    var big = el('p', 'big'); big.append(num(String(r.cohort.conversations), 'cohort', 'all conversations'));
    cohort.append(big, el('p', 'muted', 'the cohort: 100%'));
    box.append(cohort);
    card(box, 'Contained by the bot', o.contained, 'contained');
    card(box, 'Handed off', o.handed_off, 'handed_off');
    card(box, 'Abandoned', o.abandoned, 'abandoned', 'no answer, no handoff');
    card(box, 'Confirmed helpful', o.confirmed, 'contained_confirmed', 'of contained');
    card(box, 'Assumed (no feedback)', o.assumed, 'contained_assumed', 'of contained');
    card(box, 'Rated not helpful', o.unhelpful, 'contained_unhelpful', 'of contained');
    card(box, 'Durable', o.durable, 'durable', o.contained_anonymous + ' anonymous not counted', o.durable_pending);
    card(box, 'First contact resolution', r.fcr.rate, 'fcr', null, r.fcr.pending);
    card(box, 'CSAT', r.csat.all.positive, 'csat_positive', '4 or 5 of 5');
    card(box, 'Never answered by a person', r.human.never_answered, 'never_answered', 'of handoffs, takeovers apart');

    // Volume by day.
    var vol = $('volume');
    vol.textContent = '';
    var labels = r.days.map(function (d) { return d.date.slice(5); });
    var series = [
      { key: 'contained', name: 'Contained', color: COLORS.contained, values: r.days.map(function (d) { return d.contained; }) },
      { key: 'handed_off', name: 'Handed off', color: COLORS.handed_off, values: r.days.map(function (d) { return d.handed_off; }) },
      { key: 'abandoned', name: 'Abandoned', color: COLORS.abandoned, values: r.days.map(function (d) { return d.abandoned; }) }
    ];
    // A segment opens its own conversations: that outcome, that day.
    columns(vol, 'Conversations by day', labels, series, function (x, i) {
      drill(x.key, x.name.toLowerCase() + ' on ' + r.days[i].date, r.days[i].date);
    });
    vol.append(table('Conversations by day', ['Day', 'Conversations', 'Contained', 'Handed off', 'Abandoned'],
      r.days.map(function (d) {
        return [d.date, num(String(d.conversations), 'day:' + d.date, 'started ' + d.date),
          num(String(d.contained), 'contained', 'contained on ' + d.date, d.date),
          num(String(d.handed_off), 'handed_off', 'handed off on ' + d.date, d.date),
          num(String(d.abandoned), 'abandoned', 'abandoned on ' + d.date, d.date)];
      })));

    // Handoff reasons.
    var rs = $('reasons');
    rs.textContent = '';
    rs.append(table('Handoffs by reason', ['Reason (first handoff)', 'Of all conversations', 'Share of handoffs'],
      r.handoff_reasons.map(function (x) {
        var name = REASONS[x.reason] || x.reason;
        return [name + ' (' + x.reason + ')', rateCell(x.rate, 'handoff:' + x.reason, name), pct(x.share) + ' (' + counts(x.share) + ')'];
      })));

    // Times.
    var h = r.human, tm = $('times');
    tm.textContent = '';
    function timeRow(name, t, within) {
      return [name, String(t.clock.count), dur(t.clock.median_ms), dur(t.clock.p90_ms),
        within ? rateCell(t.clock.within_60s, within, name + ' within 60 s') : pct(t.clock.within_60s) + ' (' + counts(t.clock.within_60s) + ')',
        dur(t.business.median_ms), dur(t.business.p90_ms)];
    }
    tm.append(table('Waiting and answering times', ['Measure', 'Samples', 'Median', 'p90', 'Within 60 s', 'Median (business hours)', 'p90 (business hours)'], [
      timeRow('Wait (handoff → agent joins)', h.wait, 'wait_within_60s'),
      timeRow('First response (handoff → agent writes)', h.first_response, 'first_response_within_60s'),
      timeRow('Resolution (cycle → close)', h.resolution.total),
      timeRow('… of it with the bot', h.resolution.bot),
      timeRow('… of it with a person', h.resolution.human)
    ]));
    var na = el('p');
    na.append('Handed off and never answered: ', rateCell(h.never_answered, 'never_answered', 'never answered'),
      el('span', 'muted', ' · no agent joined: ' + h.never_joined));
    tm.append(na);
    [['wait', h.wait, r.histograms.wait, 'Wait for an agent'], ['first-response', h.first_response, r.histograms.first_response, 'First response']].forEach(function (x) {
      var b = $(x[0]);
      b.textContent = '';
      var lbls = x[2].map(bucketLabel);
      columns(b, x[3] + ' (handoff cycles per time band)', lbls, [{ key: x[0], name: x[3], color: COLORS.bar, values: x[2].map(function (k) { return k.count; }) }]);
      b.append(table(x[3] + ' by time band', ['Time band', 'Conversations'], x[2].map(function (k, i) { return [lbls[i], String(k.count)]; })));
    });

    // CSAT.
    var c = r.csat, cs = $('csat');
    cs.textContent = '';
    cs.append(table('CSAT', ['Group', 'Positive (4–5)', 'Response rate'], [
      ['All', rateCell(c.all.positive, 'csat_positive', 'positive ratings'), rateCell(c.all.response, 'rated', 'rated conversations')],
      ['Bot only', pct(c.bot_only.positive) + ' (' + counts(c.bot_only.positive) + ')', pct(c.bot_only.response) + ' (' + counts(c.bot_only.response) + ')'],
      ['With a person', pct(c.with_person.positive) + ' (' + counts(c.with_person.positive) + ')', pct(c.with_person.response) + ' (' + counts(c.with_person.response) + ')']
    ]));
    var cd = $('csat-days');
    cd.textContent = '';
    columns(cd, 'Ratings by day (positive and other)', labels, [
      { key: 'positive', name: 'Positive', color: COLORS.contained, values: r.days.map(function (d) { return d.csat.num; }) },
      { key: 'other', name: 'Other ratings', color: COLORS.bad, values: r.days.map(function (d) { return d.csat.den - d.csat.num; }) }
    ], function (x, i) {
      var d = r.days[i].date;
      if (x.key === 'positive') drill('csat_positive', 'positive ratings on ' + d, d);
      else drill('csat_negative', 'other ratings on ' + d, d);
    });
    cd.append(table('CSAT by day', ['Day', 'Positive', 'Rated', 'CSAT'], r.days.map(function (d) {
      return [d.date, String(d.csat.num), String(d.csat.den), pct(d.csat)];
    })));
    var cm = $('comments');
    cm.textContent = '';
    if (!c.comments.length) cm.append(el('li', 'muted', 'No comments.'));
    c.comments.forEach(function (k) {
      var li = el('li');
      li.append(el('strong', null, k.score + ' of 5'), ' · ', el('span', 'muted', when(k.at_ms)), ' · ', el('q', null, k.comment), ' ');
      var b = el('button', null, 'Open conversation');
      b.type = 'button';
      b.addEventListener('click', function () { open(k.conversation); });
      li.append(b);
      cm.append(li);
    });

    // Messages.
    var m = r.messages, ms = $('messages');
    ms.textContent = '';
    ms.append(el('p', 'muted', m.visitor_messages + ' visitor messages; the rates are over the messages the bot handled.'));
    ms.append(table('Fallback and clarify rates', ['Messages', 'Handled by the bot', 'Fallback', 'Clarify'], [
      ['First messages', String(m.first.messages), pct(m.first.fallback) + ' (' + counts(m.first.fallback) + ')', pct(m.first.clarify) + ' (' + counts(m.first.clarify) + ')'],
      ['Later messages', String(m.later.messages), pct(m.later.fallback) + ' (' + counts(m.later.fallback) + ')', pct(m.later.clarify) + ' (' + counts(m.later.clarify) + ')'],
      ['All', String(m.all.messages), rateCell(m.all.fallback, 'fallback', 'fell back'), rateCell(m.all.clarify, 'clarify', 'clarified')]
    ]));

    // Intents.
    var it = $('intents');
    it.textContent = '';
    var top = r.intents.slice(0, 10);
    rowsChart(it, 'Answers per intent (top ' + top.length + ')', top.map(function (x) {
      return { label: x.intent, value: x.answers, filter: 'intent:' + x.intent };
    }));
    it.append(table('Intents', ['Intent', 'Answers', 'Conversations', 'Helpful', 'Not helpful', 'Then handed off'], r.intents.map(function (x) {
      return [x.intent, String(x.answers), num(String(x.conversations), 'intent:' + x.intent, 'answered by ' + x.intent),
        pct(x.helpful) + ' (' + counts(x.helpful) + ')', pct(x.not_helpful) + ' (' + counts(x.not_helpful) + ')',
        rateCell(x.handed_off, 'intent_handoff:' + x.intent, x.intent + ' then handed off')];
    })));

    // Failures.
    var fl = $('failures');
    fl.textContent = '';
    rowsChart(fl, 'Failed messages by kind and reason', r.failures.slice(0, 10).map(function (x) {
      return { label: x.kind + ' · ' + x.reason, value: x.messages, color: COLORS.bad, filter: x.kind };
    }));
    fl.append(table('Failures', ['Kind · reason', 'Messages'], r.failures.map(function (x) {
      return [x.kind + ' · ' + x.reason, num(String(x.messages), x.kind, x.kind)];
    })));
  }

  function range() { return 'from=' + encodeURIComponent($('from').value) + '&to=' + encodeURIComponent($('to').value); }

  function load() {
    $('report-error').textContent = '';
    return api('GET', '/admin/reports/summary?' + range()).then(function (r) {
      render(r);
      $('drill').hidden = true; $('transcript').hidden = true;
    });
  }

  // ---- drill-down
  function drill(filter, label, day) {
    drillState = { filter: filter, label: label, day: day || null, offset: 0 };
    $('rows').textContent = '';
    $('drill').hidden = false;
    $('drill-h').textContent = 'Conversations: ' + label;
    page(true);
  }
  /** The drill-down's query: the range, the filter, the day if any. */
  function drillQuery(s) {
    return 'filter=' + encodeURIComponent(s.filter) + '&' + range() + (s.day ? '&day=' + encodeURIComponent(s.day) : '');
  }
  function page(focus) {
    var s = drillState;
    api('GET', '/admin/reports/conversations?' + drillQuery(s) + '&offset=' + s.offset + '&limit=' + PAGE).then(function (p) {
      $('drill-h').textContent = 'Conversations: ' + s.label + ' (' + p.total + ')';
      var box = $('rows');
      var t = box.querySelector('tbody');
      if (!t) {
        var tb = table('Conversations: ' + s.label, ['Started', 'Visitor', 'First question', 'Outcome', 'Wait', 'First response', 'Rating', 'Intents', ''], []);
        box.append(tb);
        t = tb.querySelector('tbody');
      }
      p.conversations.forEach(function (c) {
        var row = el('tr');
        var th = el('th', null, when(c.started_ms)); th.scope = 'row';
        row.append(th);
        [c.visitor, c.first_question, c.outcome + (c.reason ? ' · ' + c.reason : ''), dur(c.wait_ms), dur(c.first_response_ms),
          c.rating == null ? '' : c.rating + ' of 5', c.intents.join(', ')].forEach(function (x) { row.append(el('td', null, x)); });
        var b = el('button', null, 'Open');
        b.type = 'button';
        b.setAttribute('aria-label', 'Open the conversation started ' + when(c.started_ms));
        b.dataset.id = c.id;
        b.addEventListener('click', function () { open(c.id); });
        var td = el('td'); td.append(b); row.append(td);
        t.append(row);
      });
      s.offset += p.conversations.length;
      $('more').hidden = s.offset >= p.total;
      if (focus) $('drill-h').focus();
    }, function (e) { $('rows').textContent = e.message; });
  }
  $('more').addEventListener('click', function () { page(false); });

  var WORDS = {
    visitor_message: 'Visitor', bot_reply: 'Bot', clarification: 'Bot', slot_prompt: 'Bot', fallback: 'Bot (fallback)',
    handoff_offered: 'Bot', agent_message: 'Agent', internal_note: 'Note'
  };
  function open(id) {
    api('GET', '/agent/conversations/' + encodeURIComponent(id)).then(function (t) {
      var box = $('events');
      box.textContent = '';
      $('transcript').hidden = false;
      $('tr-h').textContent = 'Transcript of ' + id;
      t.events.forEach(function (r) {
        var e = r.event, d;
        var text = e.text;
        if (text != null) {
          var cls = e.type === 'visitor_message' ? 'visitor' : e.type === 'agent_message' ? 'agent' : e.type === 'internal_note' ? 'note' : '';
          d = el('div', 'ev ' + cls);
          var who = WORDS[e.type] || e.type;
          if (e.agent) who += ' ' + e.agent;
          if (e.intent) who += ' · ' + e.intent;
          d.append(el('span', 'who', who + ' · ' + when(r.at_ms)), text);
        } else {
          var what = e.type.replace(/_/g, ' ');
          if (e.reason) what += ' (' + e.reason + ')';
          if (e.agent) what += ': ' + e.agent;
          if (e.by) what += ' by ' + e.by;
          if (e.score) what += ': ' + e.score + ' of 5' + (e.comment ? ', “' + e.comment + '”' : '');
          if (e.type === 'feedback') what += ' on #' + e.about + ': ' + (e.helpful ? 'helpful' : 'not helpful');
          d = el('div', 'ev sys', what + ' · ' + when(r.at_ms));
        }
        box.append(d);
      });
      $('tr-h').focus();
    }, function (e) { $('events').textContent = e.message; $('transcript').hidden = false; });
  }

  // ---- CSV: fetched with the token, handed over as a file (all of the
  // range, or the conversations of the open drill-down).
  function csv(query, name) {
    fetch('/api/v1/admin/reports/conversations.csv?' + query, { headers: { authorization: 'Bearer ' + A.token() } }).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.blob();
    }).then(function (b) {
      var a = el('a');
      a.href = URL.createObjectURL(b);
      a.download = name;
      document.body.append(a);
      a.click();
      a.remove();
    }, function (e) { $('report-error').textContent = 'CSV: ' + e.message; });
  }
  $('csv').addEventListener('click', function () {
    csv(range(), 'conversations-' + $('from').value + '-' + $('to').value + '.csv');
  });
  $('drill-csv').addEventListener('click', function () {
    var s = drillState;
    if (!s) return;
    csv(drillQuery(s), 'conversations-' + (s.day || $('from').value + '-' + $('to').value) + '-' + s.filter.replace(/[^a-z0-9_-]/gi, '_') + '.csv');
  });

  // ---- start: the last 7 days, today included (or ?from=&to=).
  var q = new URLSearchParams(location.search);
  var today = new Date();
  $('to').value = q.get('to') || isoDay(today);
  $('from').value = q.get('from') || isoDay(new Date(today.getTime() - 6 * 864e5));
  $('range').addEventListener('submit', function (e) {
    e.preventDefault();
    load().catch(function (err) { $('report-error').textContent = err.message; });
  });
  A.session(load);
})();
