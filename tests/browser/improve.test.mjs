// Issue 17, items 4 and 5 in a real browser: an admin turns a cluster of
// failed messages into examples of an intent, the file on disk changes and
// passes `frontdesk check`, and the bot then answers one of those messages;
// a bad raw edit shows its path:line:col error and changes nothing on disk;
// axe-core finds no serious or critical violations in the new sections.
// The server edits a temp copy of intents/. Run: `cargo build && node
// --test --test-concurrency=1 improve.test.mjs` in this folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { world, axe } from './harness.mjs';

const require = createRequire(import.meta.url);
const BIN = process.env.FRONTDESK_BIN || resolve(import.meta.dirname, '../../target/debug/frontdesk');
const WAIT = { timeout: 15000 };
// A save loads the whole intent set twice (validation, reload): seconds
// each in a debug build on a busy machine.
const SAVE = { timeout: 90000 };

const WRAP = ['do you do gift wrapping', 'is gift wrapping possible', 'Do you do gift wrapping?? for my order'];

let w;
before(async () => { w = await world([], { copyIntents: true }); });
after(async () => { await w?.close(); });

/** `frontdesk check --intents DIR`: throws with its output on failure. */
function check(dir) {
  return execFileSync(BIN, ['check', '--intents', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}


async function adminPage() {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(w.bot.origin + '/admin');
  await page.fill('#token', w.bot.admin);
  await page.click('#login-form button[type=submit]');
  await page.locator('#app').waitFor(WAIT);
  return { ctx, page, errors };
}

test('a cluster of failed messages becomes examples, validates, and is answered', async () => {
  // Real failed traffic: each message falls back.
  for (const text of WRAP) {
    const c = await w.bot.api('POST', '/conversations', null, { name: 'V' });
    const r = await w.bot.api('POST', `/conversations/${c.id}/messages`, c.token, { text, client_id: '1' });
    assert.equal(r.records[1].event.type, 'fallback', JSON.stringify(r));
  }
  const file = join(w.bot.intentsDir, 'gift_card.toml');
  const before = readFileSync(file, 'utf8');

  const { ctx, page, errors } = await adminPage();
  const cluster = page.locator('#failures article.cluster').filter({ hasText: WRAP[0] }).first();
  await cluster.waitFor(WAIT);
  assert.match(await cluster.locator('h3').textContent(), /^3 × /);
  // All of them clustered (under the cap of 2,000), by shared words (no model).
  assert.match(await page.locator('#failures-status').textContent(), /^3 failed messages in 1 clusters \(grouped by shared words\)\.$/);
  assert.match(await cluster.textContent(), /Nearest intent: gift_card \(score 0\.\d\d\)/);
  for (const t of WRAP) {
    assert.equal(await cluster.getByLabel(t, { exact: true }).isChecked(), true, t);
  }
  assert.deepEqual(await axe(page, ['#failures-section']), []);

  await cluster.getByLabel('Intent', { exact: true }).selectOption('gift_card');
  await cluster.getByRole('button', { name: 'Add as examples' }).click();
  await cluster.getByRole('status').filter({ hasText: 'Saved gift_card.toml (3 examples added). Live now' }).waitFor(SAVE);

  const after = readFileSync(file, 'utf8');
  assert.notEqual(after, before);
  for (const t of WRAP) assert.ok(after.includes(JSON.stringify(t)), t);
  assert.match(check(w.bot.intentsDir), /^ok: /);

  // A visitor asks one of them and gets the answer.
  const v = await w.browser.newContext();
  const vp = await v.newPage();
  await vp.goto(w.hosts.origin + '/plain');
  await vp.locator('frontdesk-widget .launch').click();
  await vp.locator('frontdesk-widget textarea').fill(WRAP[1]);
  await vp.keyboard.press('Enter');
  await vp.locator('frontdesk-widget .msg.bot').filter({ hasText: 'Gift cards from' }).first().waitFor(WAIT);
  await v.close();

  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a bad raw edit shows the error and changes nothing on disk; a good form edit saves', async () => {
  const file = join(w.bot.intentsDir, 'shipping_cost.toml');
  const bytes = readFileSync(file);
  const { ctx, page, errors } = await adminPage();
  await page.getByLabel('Intent file', { exact: true }).selectOption('shipping_cost.toml');
  await page.getByRole('button', { name: 'Open', exact: true }).click();
  await page.locator('#e-status').filter({ hasText: 'Opened shipping_cost.toml' }).waitFor(WAIT);
  assert.match(await page.getByLabel('Examples (one per line)').inputValue(), /^How much is shipping\?\n/);
  assert.deepEqual(await axe(page, ['#editor-section']), []);

  await page.locator('#e-raw-box summary').click();
  const raw = await page.getByLabel('The file as written').inputValue();
  assert.equal(raw, bytes.toString('utf8'));
  const broken = raw.replace('answer = ', 'answer = = ');
  const line = broken.split('\n').findIndex((l) => l.startsWith('answer = =')) + 1;
  await page.getByLabel('The file as written').fill(broken);
  await page.getByRole('button', { name: 'Save raw TOML' }).click();
  const err = page.locator('#e-errors li').first();
  await err.waitFor(SAVE);
  const text = await err.textContent();
  assert.ok(text.startsWith(`${file}:${line}:`), text);
  await page.locator('#e-status').filter({ hasText: 'Not saved: nothing was written.' }).waitFor(WAIT);
  assert.deepEqual(readFileSync(file), bytes);
  assert.deepEqual(await axe(page, ['#editor-section']), []);

  // Open again, change the quick replies in the form, save: written and live.
  await page.getByRole('button', { name: 'Open', exact: true }).click();
  await page.locator('#e-status').filter({ hasText: 'Opened shipping_cost.toml' }).waitFor(WAIT);
  await page.getByLabel('Quick replies (one per line)').fill('Delivery times');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.locator('#e-status').filter({ hasText: 'Saved shipping_cost.toml. Live now' }).waitFor(SAVE);
  const now = readFileSync(file, 'utf8');
  assert.ok(now.includes('quick_replies = ["Delivery times"]'), now);
  assert.ok(now.includes("patterns = [\n  '\\bhow much"), 'the rest of the file is as written');
  assert.match(check(w.bot.intentsDir), /^ok: /);
  assert.deepEqual(errors, []);
  await ctx.close();
});

// Issue 17, item 6 from the editor: Preview replays what Save would write.
// An example added in the form only (the raw view untouched, nothing
// saved) is previewed: the fallback it fixes shows as a predicted
// difference, and nothing changes on disk or in the served set.
const FEET = 'what about little ones feet';

test("the editor's Preview replays the form's unsaved edits and writes nothing", async () => {
  const c = await w.bot.api('POST', '/conversations', null, { name: 'V' });
  const r = await w.bot.api('POST', `/conversations/${c.id}/messages`, c.token, { text: FEET, client_id: '1' });
  assert.equal(r.records[1].event.type, 'fallback', JSON.stringify(r));
  const file = join(w.bot.intentsDir, 'size_guide.toml');
  const bytes = readFileSync(file);

  const { ctx, page, errors } = await adminPage();
  await page.getByLabel('Intent file', { exact: true }).selectOption('size_guide.toml');
  await page.getByRole('button', { name: 'Open', exact: true }).click();
  await page.locator('#e-status').filter({ hasText: 'Opened size_guide.toml' }).waitFor(WAIT);
  const examples = page.getByLabel('Examples (one per line)');
  await examples.fill(FEET + '\n' + await examples.inputValue());
  const raw = await page.getByLabel('The file as written').inputValue();
  assert.equal(raw, bytes.toString('utf8'), 'the raw view is not edited');

  await page.getByRole('button', { name: 'Preview on recent traffic' }).click();
  const row = page.locator('#e-replay tr').filter({ hasText: FEET });
  await row.waitFor(SAVE);
  const cells = await row.locator('td').allTextContents();
  assert.match(cells[3], /^fallback/, cells.join(' | '));
  assert.match(cells[4], /^answer · size_guide/, cells.join(' | '));
  assert.equal(cells[5], 'This fallback would now be answered by size_guide.');
  assert.match(await page.locator('#e-status').textContent(), /as a save of the form would write it \(not saved\)/);

  // Nothing written, nothing served.
  assert.deepEqual(readFileSync(file), bytes);
  const now = await w.bot.api('POST', '/admin/classify', w.bot.admin, { text: FEET });
  assert.equal(now.decision, 'fallback');
  assert.deepEqual(await axe(page, ['#editor-section']), []);
  assert.deepEqual(errors, []);
  await ctx.close();
});
