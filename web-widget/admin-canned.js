/* frontdesk admin page: canned replies. Shows the file beside the intents
 * (`canned.toml`), what serves, and the problems of the file on disk; a
 * save is checked by the server first, and a file with a mistake is
 * refused with each problem at its path:line:col. Loaded after
 * admin-common.js and admin.js. */
(function () {
  'use strict';
  var A = window.frontdeskAdmin, el = A.el;
  var $ = function (id) { return document.getElementById(id); };
  if (!$('canned-section')) return;

  function show(v) {
    $('canned-file').textContent = 'File: ' + v.file;
    $('canned-toml').value = v.toml;
    $('canned-count').textContent = v.replies.length + ' canned repl' + (v.replies.length === 1 ? 'y' : 'ies') + ' in use.';
    errors(v.errors, 'The file on disk has problems; the last good replies are in use:');
  }
  function errors(list, lead) {
    var box = $('canned-errors');
    box.textContent = '';
    if (!list || !list.length) return;
    box.append(el('p', null, lead));
    var ul = el('ul');
    list.forEach(function (e) { ul.append(el('li', null, e)); });
    box.append(ul);
  }
  function load() {
    return A.api('GET', '/admin/canned').then(show, function (e) { $('canned-status').textContent = e.message; });
  }
  $('canned-form').addEventListener('submit', function (e) {
    e.preventDefault();
    $('canned-status').textContent = '';
    A.api('PUT', '/admin/canned', { toml: $('canned-toml').value }).then(function (v) {
      show(v);
      $('canned-status').textContent = 'Saved.';
    }, function (err) {
      $('canned-status').textContent = 'Not saved.';
      errors(err.message.split('\n'), 'Not saved:');
    });
  });

  /* Start once admin.js has logged in (it shows #app). */
  function start() {
    if ($('app').hidden || !A.token()) return false;
    load();
    return true;
  }
  if (!start()) {
    var obs = new MutationObserver(function () { if (start()) obs.disconnect(); });
    obs.observe($('app'), { attributes: true, attributeFilter: ['hidden'] });
  }
})();
