// Issue 18, items 2 and 3, in a real browser (Debian's Chromium) against
// the real server with `[assignment] auto_assign = true` and
// `away_after_secs = 2`: a waiting visitor is given to the only online
// agent (seen in the console, and the visitor sees the display name with
// an initials avatar); a transfer picks an agent from the list, and the
// agent who gave the chat away is told so; closing the console tab makes
// the agent away within the configured time and the waiting visitor's
// notice changes; the admin page manages agents; axe-core finds no
// serious or critical violations on the console and the admin page.
// Run: `cargo build && node --test --test-concurrency=1 people.test.mjs`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { world, axe } from './harness.mjs';

const require = createRequire(import.meta.url);
const WAIT = { timeout: 15000 };
const AWAY_SECS = 2;

let w, alex, sam, consoleCtx, consolePage, v1;
before(async () => {
  w = await world(['[assignment]', 'auto_assign = true', `away_after_secs = ${AWAY_SECS}`]);
  alex = (await w.bot.api('POST', '/admin/agents', w.bot.admin, { name: 'alex' })).token;
  await w.bot.api('PATCH', '/admin/agents/alex', w.bot.admin, { display_name: 'Alex Kim' });
  sam = (await w.bot.api('POST', '/admin/agents', w.bot.admin, { name: 'sam' })).token;
  await w.bot.api('PATCH', '/admin/agents/sam', w.bot.admin, { display_name: 'Sam Lee' });
});
after(async () => { await w?.close(); });

function watchErrors(page, errors) {
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
}

async function visitor() {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  watchErrors(page, errors);
  await page.goto(w.hosts.origin + '/plain');
  await page.locator('frontdesk-widget .launch').click();
  await page.locator('frontdesk-widget textarea').waitFor(WAIT);
  return { ctx, page, errors };
}

async function askPerson(page) {
  await page.locator('frontdesk-widget .person').click();
}

async function agentConsole(token) {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  watchErrors(page, errors);
  await page.goto(w.bot.origin + '/agent');
  await page.locator('#token').fill(token);
  await page.locator('#login-form button[type=submit]').click();
  await page.locator('#app').waitFor({ state: 'visible', ...WAIT });
  return { ctx, page, errors };
}


test('auto-assignment gives a waiting visitor to the only online agent', async () => {
  const c = await agentConsole(alex);
  consoleCtx = c.ctx; consolePage = c.page;
  // Header: the display name with initials.
  await consolePage.locator('#me').getByText('Alex Kim (alex)').waitFor(WAIT);
  assert.equal(await consolePage.locator('#me .av').textContent(), 'AK');
  await consolePage.locator('#presence').selectOption('online');
  v1 = await visitor();
  await askPerson(v1.page);
  // Given to alex without a claim: in the console's own list, and open.
  const item = consolePage.locator('#mine li button');
  await item.first().waitFor(WAIT);
  await item.first().click();
  await consolePage.locator('#c-h').filter({ hasText: 'with agent · alex' }).waitFor(WAIT);
  // The visitor sees the display name, never the login name.
  await v1.page.locator('frontdesk-widget .sys').filter({ hasText: 'Alex Kim joined the conversation' }).waitFor(WAIT);
  await consolePage.locator('#reply').fill('Hello, how can I help?');
  await consolePage.locator('#reply-form button[type=submit]').click();
  const bubble = v1.page.locator('frontdesk-widget .msg.agent').filter({ hasText: 'Hello, how can I help?' });
  await bubble.waitFor(WAIT);
  assert.equal(await bubble.locator('.av').textContent(), 'AK');
  assert.match(await bubble.locator('.who').textContent(), /Alex Kim/);
  assert.doesNotMatch(await v1.page.locator('frontdesk-widget .log').textContent(), /\balex\b/);
  // The console's own reply carries the avatar too.
  await consolePage.locator('#events .ev.agent .av').first().waitFor(WAIT);
  assert.deepEqual(await axe(consolePage), []);
  assert.deepEqual(c.errors, []);
});

test('a transfer picks an agent from the list; the one who gave it away is told so', async () => {
  await w.bot.api('PUT', '/agent/presence', sam, { presence: 'online' });
  const select = consolePage.locator('#transfer-to');
  assert.equal(await select.evaluate((s) => s.tagName), 'SELECT', 'a list, not a text box');
  const samOption = select.locator('option[value=sam]');
  await samOption.filter({ hasText: 'Sam Lee (sam) · online' }).waitFor({ state: 'attached', ...WAIT });
  // An offline agent is listed but cannot be picked.
  assert.equal(await select.locator('option[value=admin]').isDisabled(), true);
  assert.equal(await select.locator('option[value=alex]').count(), 0, 'not myself');
  await select.selectOption('sam');
  await consolePage.locator('#transfer-form button[type=submit]').click();
  await v1.page.locator('frontdesk-widget .sys').filter({ hasText: 'You are now talking with Sam Lee.' }).waitFor(WAIT);
  await consolePage.locator('#events .ev.sys').filter({ hasText: 'Transferred from alex to sam' }).waitFor(WAIT);
  // Alex still has it on screen and tries to reply.
  await consolePage.locator('#reply').fill('one more thing');
  await consolePage.locator('#reply-form button[type=submit]').click();
  await consolePage.locator('#action-error').filter({ hasText: 'you transferred this conversation to Sam Lee' }).waitFor(WAIT);
  assert.doesNotMatch(await consolePage.locator('#action-error').textContent(), /with_agent/);
});

test('closing the console tab makes the agent away in time; the waiting visitor is told', async () => {
  // Sam goes; alex takes one visitor and is then full, so the next waits.
  await w.bot.api('PUT', '/agent/presence', sam, { presence: 'offline' });
  await w.bot.api('PUT', '/agent/presence', alex, { presence: 'online', capacity: 1 });
  const v2 = await visitor();
  await askPerson(v2.page);
  await v2.page.locator('frontdesk-widget .sys').filter({ hasText: 'Alex Kim joined' }).waitFor(WAIT);
  const v3 = await visitor();
  await askPerson(v3.page);
  const status = v3.page.locator('frontdesk-widget .status');
  await status.filter({ hasText: 'Estimated wait' }).waitFor(WAIT);
  const closed = Date.now();
  await consolePage.close();
  await consoleCtx.close();
  await v3.page.locator('frontdesk-widget .msg').filter({ hasText: 'Nobody from the team is available' }).waitFor(WAIT);
  const took = (Date.now() - closed) / 1000;
  console.log(`the waiting visitor was told ${took.toFixed(1)} s after the console tab closed (away_after_secs = ${AWAY_SECS})`);
  // The timer, plus the once-a-second sweep, plus delivery.
  assert.ok(took >= AWAY_SECS - 0.5 && took < AWAY_SECS + 3, `away after ${took} s`);
  await status.filter({ hasText: 'You are number 1 in the queue.' }).waitFor(WAIT);
  assert.doesNotMatch(await status.textContent(), /Estimated wait/);
  const me = await w.bot.api('GET', '/agent/me', alex);
  assert.equal(me.presence, 'away');
  // A console again: alex is online again, and the visitor hears a wait.
  const again = await agentConsole(alex);
  await status.filter({ hasText: 'Estimated wait' }).waitFor(WAIT);
  await again.page.waitForFunction(() => document.getElementById('presence').value === 'online', null, WAIT);
  await again.ctx.close();
  for (const v of [v1, v2, v3]) { assert.deepEqual(v.errors, []); await v.ctx.close(); }
});

test('the admin page manages agents', async () => {
  const ctx = await w.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  watchErrors(page, errors);
  await page.goto(w.bot.origin + '/admin');
  await page.locator('#token').fill(w.bot.admin);
  await page.locator('#login-form button[type=submit]').click();
  const rows = page.locator('#agents tr');
  await rows.filter({ hasText: 'sam' }).waitFor(WAIT);
  assert.deepEqual(await rows.evaluateAll((trs) => trs.map((t) => t.dataset.agent)), ['admin', 'alex', 'sam']);
  const row = (name) => page.locator(`#agents tr[data-agent="${name}"]`);
  const said = (text) => page.locator('#agents-status').filter({ hasText: text }).waitFor(WAIT);

  // Add, with a display name; the token is shown once and works.
  await page.locator('#agent-name').fill('kim');
  await page.locator('#agent-display').fill('Kim Lò');
  await page.locator('#agent-add button[type=submit]').click();
  await said('kim is added.');
  const first = await page.locator('#agent-token-value').textContent();
  assert.equal((await w.bot.api('GET', '/agent/me', first)).display_name, 'Kim Lò');
  assert.equal(await row('kim').locator('.av').textContent(), 'KL');

  // Rename.
  await row('sam').getByRole('textbox', { name: 'Display name of sam' }).fill('Samuel Lee');
  await row('sam').getByRole('button', { name: 'Rename' }).click();
  await said('sam is shown to visitors as Samuel Lee.');
  assert.equal((await w.bot.api('GET', '/agent/me', sam)).display_name, 'Samuel Lee');

  // Make admin, and back.
  await row('kim').getByRole('button', { name: 'Make admin' }).click();
  await said('kim is an admin now.');
  await row('kim').getByRole('cell', { name: 'Admin', exact: true }).waitFor(WAIT);
  await row('kim').getByRole('button', { name: 'Make agent' }).click();
  await said('kim is no admin now.');

  // A new token: shown, the old one refused.
  await row('kim').getByRole('button', { name: 'New token' }).click();
  await said('The old token of kim no longer works.');
  const second = await page.locator('#agent-token-value').textContent();
  assert.notEqual(second, first);
  await assert.rejects(w.bot.api('GET', '/agent/me', first), /401/);
  assert.equal((await w.bot.api('GET', '/agent/me', second)).name, 'kim');

  // Disable, enable.
  await row('kim').getByRole('button', { name: 'Disable' }).click();
  await said('kim is disabled');
  await assert.rejects(w.bot.api('GET', '/agent/me', second), /401/);
  await row('kim').getByRole('cell', { name: 'disabled' }).waitFor(WAIT);
  await row('kim').getByRole('button', { name: 'Enable' }).click();
  // Enabling gives a new token, shown once; the one from before the
  // disable stays dead (review P4).
  await said('kim is enabled again');
  const third = await page.locator('#agent-token-value').textContent();
  assert.notEqual(third, second);
  await assert.rejects(w.bot.api('GET', '/agent/me', second), /401/);
  assert.equal((await w.bot.api('GET', '/agent/me', third)).name, 'kim');

  // Remove: asked twice.
  await row('kim').getByRole('button', { name: 'Remove' }).click();
  await row('kim').getByRole('button', { name: 'Really remove kim?' }).click();
  await said('kim is removed.');
  await row('kim').waitFor({ state: 'detached', ...WAIT });
  await assert.rejects(w.bot.api('GET', '/agent/me', third), /401/);

  // The last admin stays one: the server's refusal is shown.
  await row('admin').getByRole('button', { name: 'Make agent' }).click();
  await page.locator('#agents-status.err').filter({ hasText: 'is the only admin who can log in' }).waitFor(WAIT);
  await row('admin').getByRole('button', { name: 'Remove' }).click();
  await row('admin').getByRole('button', { name: 'Really remove admin?' }).click();
  await page.locator('#agents-status.err').filter({ hasText: 'is the only admin who can log in' }).waitFor(WAIT);
  assert.equal(await rows.count(), 3);

  assert.deepEqual(await axe(page), []);
  // The two refusals above are the browser's only complaints.
  assert.deepEqual(errors.filter((e) => !/status of 409/.test(e)), []);
  assert.equal(errors.length, 2, errors.join('\n'));
  await ctx.close();
});
