// Issue 19, item 2: identity verification (README, "Identity
// verification") in Debian's Chromium against the real server: a host page
// passes the visitor's id with the shop's HMAC of it, and the agent console
// says whether it was proven. Run: `cargo build && node --test
// --test-concurrency=1 identity.test.mjs` in this folder.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { Bot, browser, freePort } from './harness.mjs';

const SECRET = 'browser-identity-secret-0123456789';
const WAIT = { timeout: 15000 };
const hmac = (id) => createHmac('sha256', SECRET).update(id).digest('hex');

/** A bot with `[identity]`, a shop origin whose `/shop?id=…&hash=…` page
 * identifies its visitor (as the shop's server would render it), and a
 * browser. */
async function shopWorld(enforce) {
  const botPort = await freePort();
  const hostPort = await freePort();
  const bot = new Bot(botPort, `http://127.0.0.1:${hostPort}`,
    ['[identity]', `secret = "${SECRET}"`, `enforce = ${enforce}`]);
  await bot.start();
  const host = createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname !== '/shop') { res.writeHead(404); res.end(); return; }
    const who = { id: u.searchParams.get('id'), name: 'Ada', email: 'ada@example.com', hash: u.searchParams.get('hash') };
    const call = `window.frontdesk=window.frontdesk||function(){(window.frontdesk.q=window.frontdesk.q||[]).push(arguments)};` +
      `window.frontdesk('identify',${JSON.stringify(who).replace(/</g, '\\u003c')});`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title><script>${call}</script>` +
      `<script src="${bot.origin}/widget.js" async></script></head><body><main><h1>Shop</h1></main></body></html>`);
  });
  await new Promise((ok) => host.listen(hostPort, '127.0.0.1', ok));
  const b = await browser();
  return {
    bot, browser: b, origin: `http://127.0.0.1:${hostPort}`,
    async close() { await b.close(); await new Promise((ok) => host.close(ok)); await bot.cleanup(); }
  };
}

const worlds = [];
after(async () => { for (const w of worlds) await w.close(); });

const widget = (page, css) => page.locator('frontdesk-widget ' + css);

/** A visitor on the shop page as `id` with `hash` asks for a person; the
 * conversation's id once it exists. */
async function visitorAsks(w, id, hash) {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${w.origin}/shop?id=${encodeURIComponent(id)}&hash=${encodeURIComponent(hash)}`);
  await widget(page, '.launch').click();
  await widget(page, '.person').click();
  await page.waitForFunction(() => {
    const k = Object.keys(localStorage).find((x) => x.startsWith('frontdesk:'));
    return k && (JSON.parse(localStorage.getItem(k)) || {}).conv;
  }, null, WAIT);
  const conv = await page.evaluate(() => {
    const k = Object.keys(localStorage).find((x) => x.startsWith('frontdesk:'));
    return JSON.parse(localStorage.getItem(k)).conv.id;
  });
  return { page, conv, errors };
}

/** The console of a new agent, logged in, with the oldest waiting
 * conversation claimed and open. */
async function consoleClaims(w, name) {
  const token = await w.bot.agent(name);
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  await page.goto(w.bot.origin + '/agent');
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
  await page.locator('#app').waitFor(WAIT);
  await page.locator('#queue li').first().getByRole('button', { name: 'Claim' }).click();
  return { page, token };
}

test('a valid hash shows the visitor as verified in the console; a forged one as claimed, not verified', async () => {
  const w = await shopWorld(false);
  worlds.push(w);
  const good = await visitorAsks(w, 'u-1', hmac('u-1'));
  const agent = await consoleClaims(w, 'alex');
  const line = agent.page.locator('#summary .identity');
  await line.waitFor(WAIT);
  assert.equal(await line.getAttribute('data-identity'), 'verified');
  assert.match(await line.innerText(), /verified id u-1/);
  assert.doesNotMatch(await line.innerText(), /NOT/);
  const t = await w.bot.api('GET', `/agent/conversations/${good.conv}`, agent.token);
  assert.equal(t.summary.visitor.verified, true);

  // The same page with a hash for another id (the visitor's own account,
  // or a tampered page): kept as claimed, and said so.
  const forged = await visitorAsks(w, 'u-1', hmac('u-2'));
  const other = await consoleClaims(w, 'sam');
  const claimed = other.page.locator('#summary .identity');
  await claimed.waitFor(WAIT);
  assert.equal(await claimed.getAttribute('data-identity'), 'claimed');
  assert.match(await claimed.innerText(), /claimed id u-1 \(NOT verified\)/);
  const f = await w.bot.api('GET', `/agent/conversations/${forged.conv}`, other.token);
  assert.equal(f.summary.visitor.verified ?? false, false, 'left out when false');
  assert.equal(f.summary.visitor.id, 'u-1');
  // The hash went to the server, never into the browser's storage.
  const saved = await forged.page.evaluate(() => JSON.stringify(localStorage));
  assert.doesNotMatch(saved, new RegExp(hmac('u-2')));
  assert.deepEqual([...good.errors, ...forged.errors], []);
});

test('with enforce on, a forged hash is refused: the visitor is told and chats without the id', async () => {
  const w = await shopWorld(true);
  worlds.push(w);
  const v = await visitorAsks(w, 'u-1', 'f'.repeat(64));
  await widget(v.page, '.sys').filter({ hasText: 'We could not confirm your account' }).waitFor(WAIT);
  const agent = await consoleClaims(w, 'alex');
  const line = agent.page.locator('#summary .identity');
  await line.waitFor(WAIT);
  assert.equal(await line.getAttribute('data-identity'), 'none');
  const t = await w.bot.api('GET', `/agent/conversations/${v.conv}`, agent.token);
  assert.equal(t.summary.visitor.id, null);
  assert.equal(t.summary.visitor.verified ?? false, false, 'left out when false');
  // A valid one on the same server is verified.
  const good = await visitorAsks(w, 'u-1', hmac('u-1'));
  const t2 = await w.bot.api('GET', `/agent/conversations/${good.conv}`, agent.token);
  assert.equal(t2.summary.visitor.verified, true);
  assert.deepEqual([...v.errors, ...good.errors], []);
});

test('an identity given while the agent has the conversation open updates the console line live', async () => {
  const w = await shopWorld(false);
  worlds.push(w);
  const c = await w.bot.api('POST', '/conversations', null, { name: 'Ada' });
  await w.bot.api('POST', `/conversations/${c.id}/handoff`, c.token);
  const agent = await consoleClaims(w, 'alex');
  const line = agent.page.locator('#summary .identity');
  await line.waitFor(WAIT);
  assert.equal(await line.getAttribute('data-identity'), 'none');
  // The host page identifies the visitor later (a sign-in mid-chat).
  await w.bot.api('POST', `/conversations/${c.id}/identity`, c.token, { visitor_id: 'u-7', identity_hash: hmac('u-7') });
  await agent.page.locator('#summary .identity[data-identity=verified]').waitFor(WAIT);
  assert.match(await agent.page.locator('#summary .identity').innerText(), /verified id u-7/);
  assert.equal(await agent.page.locator('#summary .identity').count(), 1, 'one identity line');
});
