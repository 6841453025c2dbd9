/* frontdesk agent console: attachments. Draws `attachment` records (a
 * thumbnail for an image, a download link for a PDF) and adds an attach
 * control beside the reply box. Files are fetched with the agent's token
 * in a header and shown from a data: URL, so the token never sits in a
 * URL (the page's CSP allows data: images). Loaded after agent.js. */
(function () {
  'use strict';
  var desk = window.frontdeskConsole;
  if (!desk) return;
  var el = desk.el;

  function fileUrl(conversation, id) {
    return '/api/v1/conversations/' + encodeURIComponent(conversation) + '/attachments/' + encodeURIComponent(id);
  }
  // The file as a data: URL (fetched with the token in a header).
  function load(conversation, id) {
    return fetch(fileUrl(conversation, id), { headers: { authorization: 'Bearer ' + desk.token() } })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.blob();
      })
      .then(function (blob) {
        return new Promise(function (resolve, reject) {
          var fr = new FileReader();
          fr.onload = function () { resolve(fr.result); };
          fr.onerror = reject;
          fr.readAsDataURL(blob);
        });
      });
  }
  function kb(size) { return Math.max(1, Math.round(size / 1024)) + ' KB'; }

  desk.render.attachment = function (e) {
    var conversation = desk.current();
    var d = el('div', 'ev attach ' + (e.agent ? 'agent' : 'visitor'));
    d.append(el('span', 'who', e.agent || 'Visitor'));
    if (e.kind === 'pdf') {
      var a = el('a', null, e.name + ' (PDF, ' + kb(e.size) + ')');
      a.href = '#';
      a.addEventListener('click', function (ev) {
        ev.preventDefault();
        load(conversation, e.id).then(function (url) {
          var dl = el('a');
          dl.href = url;
          dl.download = e.name;
          document.body.append(dl);
          dl.click();
          dl.remove();
        }, function (err) { desk.say('The file could not be loaded: ' + err.message); });
      });
      d.append(a);
    } else {
      var img = el('img', 'thumb');
      img.alt = 'Photo from ' + (e.agent || 'the visitor') + ': ' + e.name;
      var link = el('a');
      link.href = '#';
      link.setAttribute('aria-label', 'Open ' + e.name + ' full size');
      link.append(img);
      link.addEventListener('click', function (ev) {
        ev.preventDefault();
        if (!img.src) return;
        img.classList.toggle('full');
      });
      d.append(link, el('div', 'muted', e.name + ' · ' + kb(e.size)));
      load(conversation, e.id).then(function (url) {
        // The console keeps a following view at the end when it loads.
        img.src = url;
      }, function () { img.alt = e.name + ' (could not be loaded)'; });
    }
    return d;
  };

  // ---- the attach control beside the reply box ----------------------------
  var row = document.querySelector('#reply-form .row');
  if (!row) return;
  var label = el('label', 'attach-btn');
  var input = el('input');
  input.type = 'file';
  input.id = 'attach-file';
  input.accept = 'image/png,image/jpeg,image/gif,image/webp,application/pdf';
  label.htmlFor = 'attach-file';
  label.append(document.createTextNode('Attach file'), input);
  row.append(label);
  input.addEventListener('change', function () {
    var f = input.files && input.files[0];
    input.value = '';
    var conversation = desk.current();
    if (!f || !conversation) return;
    var err = document.getElementById('action-error');
    err.textContent = '';
    fetch('/api/v1/agent/conversations/' + encodeURIComponent(conversation) + '/attachments?name=' + encodeURIComponent(f.name), {
      method: 'POST',
      headers: { authorization: 'Bearer ' + desk.token(), 'content-type': f.type || 'application/octet-stream' },
      body: f
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error((j.error && j.error.message) || ('HTTP ' + r.status));
        desk.say('File sent: ' + f.name);
        desk.open(conversation);
      });
    }).catch(function (e) { err.textContent = e.message; });
  });
})();
