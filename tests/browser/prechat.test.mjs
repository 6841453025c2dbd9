// Issue 18, item 7: the optional pre-chat form (`[widget] prechat = true`),
// in Debian's Chromium against the real server. Run: `cargo build && node
// --test --test-concurrency=1 prechat.test.mjs` in this folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { world } from './harness.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const WAIT = { timeout: 15000 };

let w;
before(async () => { w = await world(['[widget]', 'prechat = true']); });
after(async () => { await w?.close(); });

const widget = (page, css) => page.locator('frontdesk-widget ' + css);
/** The element focused inside the widget's shadow root, as `tag#id`. */
const focused = (page) => page.evaluate(() => {
  const a = document.querySelector('frontdesk-widget').shadowRoot.activeElement;
  return a ? a.tagName.toLowerCase() + (a.id ? '#' + a.id : '') : 'outside';
});
const stored = (page) => page.evaluate(() => {
  const k = Object.keys(localStorage).find((x) => x.startsWith('frontdesk:'));
  return JSON.parse(localStorage.getItem(k));
});

async function axe(page) {
  await page.evaluate(AXE);
  return page.evaluate(async () => {
    const r = await window.axe.run({ include: [['frontdesk-widget', '.root']] }, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', '));
  });
}

test('the pre-chat form comes first, works by keyboard alone, and its name and email reach the agents', async () => {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(w.hosts.origin + '/plain');
  await widget(page, '.launch').focus();
  await page.keyboard.press('Enter');
  // The form, not the reply box: focus on its first field.
  assert.equal(await focused(page), 'input#fd-pre-name');
  assert.equal(await widget(page, '.pre').isVisible(), true);
  assert.equal(await widget(page, 'textarea').isVisible(), false);
  assert.equal(await widget(page, '.person').isVisible(), false);
  // Every field has a visible label.
  assert.equal(await widget(page, 'label[for="fd-pre-name"]').innerText(), 'Your name (optional)');
  assert.equal(await widget(page, 'label[for="fd-pre-email"]').innerText(), 'Your email');
  assert.deepEqual(await axe(page), []);

  await page.keyboard.type('Ada Lovelace');
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'input#fd-pre-email');
  await page.keyboard.type('not-an-email');
  await page.keyboard.press('Enter');
  // Refused, said so, focus kept on the field to fix.
  const err = widget(page, '#fd-pre-err');
  await err.waitFor({ state: 'visible', ...WAIT });
  assert.equal(await err.getAttribute('role'), 'alert');
  assert.equal(await widget(page, '#fd-pre-email').getAttribute('aria-invalid'), 'true');
  assert.equal(await focused(page), 'input#fd-pre-email');
  assert.deepEqual(await axe(page), []);
  await page.keyboard.press('Control+A');
  await page.keyboard.type('ada@example.com');
  await page.keyboard.press('Enter');
  // The form goes; the reply box has the keyboard.
  await widget(page, '.pre').waitFor({ state: 'hidden', ...WAIT });
  assert.equal(await focused(page), 'textarea#fd-input');
  assert.equal(await widget(page, '.person').isVisible(), true);
  await page.keyboard.type('Where is my parcel?');
  await page.keyboard.press('Enter');
  await widget(page, '.msg.me').filter({ hasText: 'Where is my parcel?' }).waitFor(WAIT);

  // The agents see who it is.
  const { conv } = await stored(page);
  const t = await w.bot.api('GET', `/agent/conversations/${conv.id}`, w.bot.admin);
  const text = JSON.stringify(t);
  assert.ok(text.includes('"name":"Ada Lovelace"'), text.slice(0, 400));
  assert.ok(text.includes('"email":"ada@example.com"'), text.slice(0, 400));
  // A reload with the conversation under way: no form again.
  await page.reload();
  await widget(page, '.msg.me').filter({ hasText: 'Where is my parcel?' }).waitFor(WAIT);
  assert.equal(await widget(page, '.pre').isVisible(), false);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a page that says who the visitor is skips the form; without email no transcript is offered', async () => {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  await page.goto(w.hosts.origin + '/identified');
  await widget(page, '.launch').click();
  assert.equal(await focused(page), 'textarea#fd-input');
  assert.equal(await widget(page, '.pre').isVisible(), false);
  await page.keyboard.type('Where is my parcel?');
  await page.keyboard.press('Enter');
  await widget(page, '.msg.me').filter({ hasText: 'Where is my parcel?' }).waitFor(WAIT);
  const { conv } = await stored(page);
  const sam = await w.bot.agent('sam');
  await w.bot.api('POST', `/agent/conversations/${conv.id}/claim`, sam);
  await w.bot.api('POST', `/agent/conversations/${conv.id}/close`, sam);
  await widget(page, '.rate-c').waitFor(WAIT);
  // This server has no SMTP host: the closed chat offers no transcript.
  assert.equal(await widget(page, '.tx').count(), 0);
  await ctx.close();
});
