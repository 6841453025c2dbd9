// What every browser test needs: the real frontdesk server (the debug
// binary, built by `cargo build`) on a free port with a temp data dir, a
// second origin serving host pages that embed the widget, and Debian's
// Chromium through playwright-core.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = process.env.FRONTDESK_BIN || join(ROOT, 'target/debug/frontdesk');

export async function freePort() {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); });
  });
}

/** The frontdesk server; `restart()` keeps the data dir and port. */
export class Bot {
  /** `extra`: more lines of frontdesk.toml (e.g. a `[texts]` section).
   * `copyIntents`: serve a temp copy of the repository's intents/
   * (`this.intentsDir`), for tests that edit intent files. */
  constructor(port, allowedOrigin, extra = [], { copyIntents = false } = {}) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'frontdesk-browser-'));
    this.config = join(this.dir, 'frontdesk.toml');
    this.intentsDir = join(ROOT, 'intents');
    if (copyIntents) {
      this.intentsDir = join(this.dir, 'intents');
      cpSync(join(ROOT, 'intents'), this.intentsDir, { recursive: true });
    }
    writeFileSync(this.config, [
      '[server]',
      `bind = "127.0.0.1:${port}"`,
      `intents_dir = ${JSON.stringify(this.intentsDir)}`,
      `data_dir = ${JSON.stringify(join(this.dir, 'data'))}`,
      `allowed_origins = [${JSON.stringify(allowedOrigin)}]`,
      '[limits]',
      'messages_per_minute = 200',
      'conversations_per_ip_per_minute = 200',
      ...extra,
      ''
    ].join('\n'));
    this.origin = `http://127.0.0.1:${port}`;
  }

  async start() {
    this.proc = spawn(BIN, ['serve', '--config', this.config], {
      env: { ...process.env, FRONTDESK_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit']
    });
    let out = '';
    await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error('server did not start: ' + out)), 20000);
      this.proc.stdout.on('data', (d) => {
        out += d;
        const token = out.match(/^(fd_[0-9a-f]+)$/m);
        if (token) this.admin = token[1];
        if (/listening on http:\/\//.test(out)) { clearTimeout(timer); ok(); }
      });
      this.proc.on('exit', (c) => { clearTimeout(timer); fail(new Error('server exited ' + c + ': ' + out)); });
    });
    this.proc.removeAllListeners('exit');
  }

  async stop() {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    const done = new Promise((ok) => p.on('exit', ok));
    p.kill('SIGTERM');
    await done;
  }

  async restart() { await this.stop(); await this.start(); }

  async api(method, path, token, body) {
    const r = await fetch(this.origin + '/api/v1' + path, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: 'Bearer ' + token } : {}) },
      body: body ? JSON.stringify(body) : undefined
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
    return j;
  }

  async agent(name) {
    const a = await this.api('POST', '/admin/agents', this.admin, { name });
    await this.api('PUT', '/agent/presence', a.token, { presence: 'online' });
    return a.token;
  }

  async cleanup() { await this.stop(); rmSync(this.dir, { recursive: true, force: true }); }
}

/** Host pages on their own origin, each embedding the widget. */
export async function hostPages(botOrigin, port) {
  const tag = `<script src="${botOrigin}/widget.js" data-title="Shop help" data-color="#0b6e4f" async></script>`;
  const page = (title, head, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>${head}${tag}</head><body><main><h1>${title}</h1>${body}</main></body></html>`;
  const aggressive = `<link rel="stylesheet" href="/aggressive.css">`;
  const css = `*{font-family:"Comic Sans MS",fantasy !important;font-size:31px !important;color:red !important;line-height:3 !important;letter-spacing:4px !important;box-sizing:content-box !important;text-transform:uppercase !important}
div,button,section,form{display:inline !important;position:static !important;margin:17px !important;padding:23px !important;border:5px dotted blue !important;background:yellow !important;width:auto !important;height:auto !important}
body>*{position:absolute !important;top:0 !important;left:0 !important;transform:rotate(3deg) !important;opacity:.5 !important}
button{all:unset !important}`;
  const pages = {
    '/plain': page('Plain shop', '', '<p>Welcome to the shop.</p>'),
    '/aggressive': page('Aggressive shop', aggressive, '<p>Welcome to the shop.</p>'),
    '/aggressive.css': css,
    '/favicon.ico': '',
    '/strict': page('Strict shop', '', '<p>This page forbids inline script and style.</p>'),
    '/identified': page('Identified shop', '<script src="/identify.js"></script>', '<p>Logged in as Ada.</p>'),
    '/identify.js': `window.frontdesk=window.frontdesk||function(){(window.frontdesk.q=window.frontdesk.q||[]).push(arguments)};window.frontdesk('identify',{name:'Ada',id:'u-1',email:'ada@example.com'});`
  };
  const bot = new URL(botOrigin);
  const strictCsp = `default-src 'none'; script-src 'self' ${botOrigin}; connect-src ${botOrigin} ws://${bot.host}; img-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'`;
  const server = createServer((req, res) => {
    const path = req.url.split('?')[0];
    const body = pages[path];
    if (body == null) { res.writeHead(404); res.end(); return; }
    const type = path.endsWith('.css') ? 'text/css' : path.endsWith('.js') ? 'text/javascript' : 'text/html; charset=utf-8';
    const headers = { 'content-type': type };
    if (path === '/strict' || path === '/identified') headers['content-security-policy'] = strictCsp;
    res.writeHead(200, headers);
    res.end(body);
  });
  await new Promise((ok) => server.listen(port, '127.0.0.1', ok));
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((ok) => server.close(ok)) };
}

export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic']
  });
}

/** Everything a test needs, started in order: the host origin must be known
 * before the bot starts (it is an allowed origin), and the bot's origin
 * before the host pages are written. */
export async function world(extra = [], options = {}) {
  const botPort = await freePort();
  const hostPort = await freePort();
  const bot = new Bot(botPort, `http://127.0.0.1:${hostPort}`, extra, options);
  await bot.start();
  const hosts = await hostPages(bot.origin, hostPort);
  const b = await browser();
  return {
    bot, hosts, browser: b,
    async close() { await b.close(); await hosts.close(); await bot.cleanup(); }
  };
}

/** axe-core's script, for a test that runs its own rules. */
export const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's serious and critical violations on the page (or inside
 * `include`, an axe context such as `[['frontdesk-widget', '.root']]`),
 * each as `rule: targets`. */
export async function axe(page, include) {
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (inc) => {
    const r = await window.axe.run(inc ? { include: inc } : document, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', '));
  }, include || null);
}
