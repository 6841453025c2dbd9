/* frontdesk admin pages (admin, reports): what every page script shares,
 * loaded first (`<script src="/admin-common.js" defer>` before the page's
 * own): the admin token, calls to the API, building elements (texts go in
 * as text, never as HTML), and the log-in form.
 *
 * window.frontdeskAdmin:
 *   token()                     the admin token (stored in localStorage)
 *   api(method, path, body, t)  fetch /api/v1 + path as JSON with the token
 *                               (or `t`); resolves with the body, rejects
 *                               with an Error whose message is the server's
 *                               and with .status, .code and .body
 *   el(tag, cls, text)          an element with a class and text
 *   svg(tag, attrs)             an SVG element with attributes
 *   session(load)               the log-in: fills <section id="login">,
 *                               calls load() (a promise) with the token;
 *                               when it resolves the token is kept and
 *                               #app shown, else the error is shown. Also
 *                               runs at once with a stored token, and
 *                               wires #logout. */
(function () {
  'use strict';
  var KEY = 'frontdesk:admin';
  var SVG = 'http://www.w3.org/2000/svg';
  var token = localStorage.getItem(KEY) || '';
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }
  function api(method, path, body, as) {
    return fetch('/api/v1' + path, {
      method: method,
      headers: { authorization: 'Bearer ' + (as || token), 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) {
          var e = new Error((j.error && j.error.message) || ('HTTP ' + r.status));
          e.status = r.status;
          e.code = j.error && j.error.code;
          e.body = j;
          throw e;
        }
        return j;
      });
    });
  }

  /* The log-in form, the same on every page. */
  function loginForm(box) {
    box.setAttribute('aria-labelledby', 'login-h');
    var h = el('h2', null, 'Log in');
    h.id = 'login-h';
    var form = el('form', 'row');
    form.id = 'login-form';
    var label = el('label', null, 'Admin token');
    label.htmlFor = 'token';
    var input = el('input');
    input.id = 'token'; input.type = 'password'; input.autocomplete = 'current-password'; input.required = true;
    var go = el('button', 'primary', 'Log in');
    go.type = 'submit';
    form.append(label, input, go);
    var err = el('p', 'err');
    err.id = 'login-error';
    err.setAttribute('role', 'alert');
    box.textContent = '';
    box.append(h, form, err);
  }

  function session(load) {
    loginForm($('login'));
    function enter() {
      return load().then(function () {
        localStorage.setItem(KEY, token);
        $('login').hidden = true; $('app').hidden = false; $('logout').hidden = false;
      }, function (e) { $('login-error').textContent = 'Log in failed: ' + e.message; });
    }
    $('login-form').addEventListener('submit', function (e) {
      e.preventDefault();
      token = $('token').value.trim();
      enter();
    });
    $('logout').addEventListener('click', function () {
      localStorage.removeItem(KEY);
      location.reload();
    });
    if (token) enter();
  }

  window.frontdeskAdmin = {
    token: function () { return token; },
    api: api,
    el: el,
    svg: svg,
    session: session
  };
})();
