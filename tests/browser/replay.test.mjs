// Replay before deploy in the admin page (Chromium, the real server):
// traffic seeded through the HTTP API falls back on a message; the admin
// adds that message as an example of an intent in the page's "Replay an
// edit" section and presses Preview; the page shows the predicted
// difference (fallback → answered by that intent) while the file on disk
// stays as it was. Run: `cargo build && node --test replay.test.mjs` here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { world, axe } from './harness.mjs';

const WAIT = { timeout: 60000 };
const GIFT_CARD = join(resolve(import.meta.dirname, '../..'), 'intents/gift_card.toml');
const UNKNOWN = 'do you offer engraving on jewellery';

let w;
before(async () => { w = await world(); });
after(async () => { await w?.close(); });

async function say(conv, text, id) {
  const r = await fetch(w.bot.origin + `/api/v1/conversations/${conv.id}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer ' + conv.token },
    body: JSON.stringify({ text, client_id: id })
  });
  assert.equal(r.status, 200);
  return r.json();
}

test('replay shows the predicted difference of an edit before anything is saved', async () => {
  const conv = await w.bot.api('POST', '/conversations', null, { name: 'Ada' });
  await say(conv, 'How much is shipping to Canada?', 'm1');
  const fell = await say(conv, UNKNOWN, 'm2');
  assert.ok(fell.records.some((r) => r.event.type === 'fallback'), 'the bot falls back on it today');

  const onDisk = readFileSync(GIFT_CARD, 'utf8');
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(w.bot.origin + '/admin');
  await page.fill('#token', w.bot.admin);
  await page.click('#login-form button[type=submit]');
  await page.locator('#replay-section').waitFor({ state: 'visible', ...WAIT });

  // Open the file in the section, then add the message as an example.
  await page.fill('#replay-file', 'gift_card.toml');
  await page.fill('#replay-toml', onDisk);
  const edited = onDisk.replace('examples = [', `examples = [\n  ${JSON.stringify(UNKNOWN)},`);
  assert.notEqual(edited, onDisk);
  await page.fill('#replay-toml', edited);
  await page.getByRole('button', { name: 'Preview' }).click();

  const row = page.locator('#replay-result tr').filter({ hasText: UNKNOWN });
  await row.waitFor(WAIT);
  const cells = await row.locator('td').allTextContents();
  assert.equal(cells[2], UNKNOWN, 'the message, as text');
  assert.match(cells[3], /^fallback/, cells.join(' | '));
  assert.match(cells[4], /^answer · gift_card/, cells.join(' | '));
  assert.equal(cells[5], 'This fallback would now be answered by gift_card.');
  const summary = await page.locator('#replay-result .replay-summary').textContent();
  assert.match(summary, /1 would be decided differently/);
  const fallbacks = await page.locator('#replay-result tr').filter({ hasText: 'Fallbacks' }).locator('td').allTextContents();
  assert.equal(fallbacks[3], '-1', fallbacks.join(' | '));

  // The what-if: an SVG curve and a slider that moves the readout.
  await page.locator('#replay-result svg[role=img]').waitFor(WAIT);
  const slider = page.getByRole('slider', { name: 'Answer threshold' });
  await slider.fill('0');
  assert.match(await page.locator('#replay-result .replay-readout').textContent(), /^At 0\.05/);

  // Nothing was saved: the file and the served set are as they were.
  assert.equal(readFileSync(GIFT_CARD, 'utf8'), onDisk);
  const c = await w.bot.api('POST', '/admin/classify', w.bot.admin, { text: UNKNOWN });
  assert.equal(c.decision, 'fallback');

  // A bad edit shows its place and replays nothing.
  await page.fill('#replay-toml', 'description = "x"\nexamples = ["a", 3]\n');
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.locator('#replay-result [role=alert] li').filter({ hasText: 'gift_card.toml:2:' }).first().waitFor(WAIT);
  assert.equal(readFileSync(GIFT_CARD, 'utf8'), onDisk);

  // Back to the good edit for the accessibility check of the full panel.
  await page.fill('#replay-toml', edited);
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.locator('#replay-result svg[role=img]').waitFor(WAIT);
  const violations = await axe(page, [['#replay-section']]);
  assert.deepEqual(violations, []);
  assert.deepEqual(errors, []);
  await ctx.close();
});
