// Issue 18, item 4: canned replies in the console, in Debian's Chromium
// against the real server: `/` in the reply box opens the list, typing
// searches it, the keyboard picks one, and it is inserted with the
// visitor's name filled in; the admin page edits the file. Run: `cargo
// build && node --test --test-concurrency=1 canned.test.mjs` in this folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { world, axe } from './harness.mjs';

const require = createRequire(import.meta.url);
const WAIT = { timeout: 15000 };
const CANNED = `[[reply]]
title = "Ask for a photo"
shortcut = "photo"
text = "Sorry about that, {name}! Could you send a photo of the damage?"

[[reply]]
title = "Refund issued"
shortcut = "refund"
text = "I have issued a full refund, {name}."
`;

let w;
before(async () => {
  // The file beside a copy of the intents (never the repository's).
  w = await world([], { copyIntents: true });
  writeFileSync(join(w.bot.dir, 'canned.toml'), CANNED);
});
after(async () => { await w?.close(); });


test('a canned reply is inserted with / and the keyboard, with the name filled in', async () => {
  const c = await w.bot.api('POST', '/conversations', null, { name: 'Dana' });
  await w.bot.api('POST', `/conversations/${c.id}/messages`, c.token, { text: 'My vase arrived broken', client_id: 'm1' });
  await w.bot.api('POST', `/conversations/${c.id}/handoff`, c.token);
  const token = await w.bot.agent('sam');
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(w.bot.origin + '/agent');
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
  await page.locator('#app').waitFor(WAIT);
  await page.locator('#queue li').first().getByRole('button', { name: 'Claim' }).click();
  await page.locator('#events .ev.visitor').filter({ hasText: 'arrived broken' }).waitFor(WAIT);
  const list = page.locator('#canned-list');
  assert.ok(await list.isHidden());
  await page.locator('#reply').focus();
  // `/` alone lists every reply.
  await page.keyboard.type('/');
  await list.waitFor(WAIT);
  assert.equal(await list.locator('[role=option]').count(), 2);
  assert.deepEqual(await axe(page), []);
  // Typing searches; the match is selected; Enter inserts, not sends.
  await page.keyboard.type('refu');
  assert.equal(await list.locator('[role=option]').count(), 1);
  assert.equal(await list.locator('[aria-selected=true]').innerText().then((t) => t.includes('Refund issued')), true);
  await page.keyboard.press('Enter');
  assert.equal(await page.inputValue('#reply'), 'I have issued a full refund, Dana.');
  assert.ok(await list.isHidden());
  // Again from scratch with the arrow keys.
  await page.fill('#reply', '');
  await page.keyboard.type('/');
  await list.waitFor(WAIT);
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowUp');
  assert.match(await list.locator('[aria-selected=true]').innerText(), /Ask for a photo/);
  await page.keyboard.press('Enter');
  assert.equal(await page.inputValue('#reply'), 'Sorry about that, Dana! Could you send a photo of the damage?');
  // Escape closes the list and keeps what was typed.
  await page.keyboard.press('End');
  await page.fill('#reply', '/xyz');
  await page.locator('#reply').dispatchEvent('input');
  await list.waitFor(WAIT);
  assert.match(await list.innerText(), /No canned reply matches/);
  await page.keyboard.press('Escape');
  assert.ok(await list.isHidden());
  assert.equal(await page.inputValue('#reply'), '/xyz');
  // The inserted reply is sent like any other.
  await page.fill('#reply', '');
  await page.keyboard.type('/photo');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Enter');
  await page.locator('#events .ev.agent').filter({ hasText: 'Sorry about that, Dana!' }).waitFor(WAIT);
  const log = await w.bot.api('GET', `/conversations/${c.id}/events`, c.token);
  assert.ok(log.events.some((r) => r.event.type === 'agent_message' && r.event.text === 'Sorry about that, Dana! Could you send a photo of the damage?'));
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('the admin page edits the canned replies, refusing a file with a mistake at its line', async () => {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  await page.goto(w.bot.origin + '/admin');
  await page.fill('#token', w.bot.admin);
  await page.click('#login-form button[type=submit]');
  const box = page.locator('#canned-toml');
  await box.waitFor(WAIT);
  await page.waitForFunction(() => document.getElementById('canned-toml').value.includes('Ask for a photo'), null, WAIT);
  assert.match(await page.locator('#canned-count').innerText(), /2 canned replies/);
  await box.fill(CANNED.replace('{name}!', '{nmae}!'));
  await page.click('#canned-save');
  await page.locator('#canned-errors').filter({ hasText: 'canned.toml:4:8: placeholder `{nmae}`' }).waitFor(WAIT);
  assert.equal(readFileSync(join(w.bot.dir, 'canned.toml'), 'utf8'), CANNED, 'nothing written');
  await box.fill(CANNED + '\n[[reply]]\ntitle = "Thanks"\ntext = "Thank you, {name}."\n');
  await page.click('#canned-save');
  await page.locator('#canned-count').filter({ hasText: '3 canned replies' }).waitFor(WAIT);
  assert.match(readFileSync(join(w.bot.dir, 'canned.toml'), 'utf8'), /Thank you, \{name\}/);
  assert.deepEqual(await axe(page), []);
  // Put the file back for any later test.
  writeFileSync(join(w.bot.dir, 'canned.toml'), CANNED);
  await ctx.close();
});
