// Issue 17 item 2: "Was this helpful? Yes / No" under the bot's answers in a
// real browser (Debian's Chromium) against the real server: operable from
// the keyboard, the pressed choice shown, stored on the server, "No"
// followed by an offer of a person; in German with `[texts] language = "de"`;
// axe-core on the widget with the new buttons.
// Run: `cargo build && node --test --test-concurrency=1 feedback.test.mjs`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { world, axe } from './harness.mjs';

const require = createRequire(import.meta.url);
const WIDGET = [['frontdesk-widget', '.root']];
const WAIT = { timeout: 15000 };

let w;
before(async () => { w = await world(); });
after(async () => { await w?.close(); });

async function visitor(bot) {
  const ctx = await bot.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(bot.hosts.origin + '/plain');
  await page.locator('frontdesk-widget .launch').click();
  await page.locator('frontdesk-widget textarea').waitFor(WAIT);
  return { ctx, page, errors };
}

async function say(page, text) {
  await page.locator('frontdesk-widget textarea').fill(text);
  await page.keyboard.press('Enter');
}

/** The conversation's log as an agent reads it (the widget's own id). */
async function stored(bot, page) {
  const key = 'frontdesk:' + bot.bot.origin;
  const conv = await page.evaluate((k) => JSON.parse(localStorage.getItem(k)).conv, key);
  const token = await bot.bot.agent('reader-' + Math.random().toString(16).slice(2, 8));
  return (await bot.bot.api('GET', `/agent/conversations/${conv.id}`, token)).events;
}

async function until(fn) {
  const end = Date.now() + WAIT.timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((ok) => setTimeout(ok, 100));
  }
}


test('yes from the keyboard is stored and shown; no brings the offer of a person', async () => {
  const v = await visitor(w);
  await say(v.page, 'How much is shipping?');
  const group = v.page.getByRole('group', { name: 'Was this helpful?' });
  await group.first().waitFor(WAIT);
  assert.equal(await group.count(), 1, 'one answer, one choice');
  const yes = group.getByRole('button', { name: 'Yes', exact: true });
  const no = group.getByRole('button', { name: 'No', exact: true });
  assert.equal(await yes.getAttribute('aria-pressed'), 'false');

  // Keyboard only: focus, then Space.
  await yes.focus();
  await v.page.keyboard.press('Space');
  await v.page.locator('frontdesk-widget .fb button[aria-pressed=true]').filter({ hasText: 'Yes' }).waitFor(WAIT);
  assert.equal(await no.getAttribute('aria-pressed'), 'false');
  await group.getByText('Thanks for telling us.').waitFor(WAIT);
  const answer = (await stored(w, v.page)).find((r) => r.event.type === 'bot_reply');
  let fb = await until(async () => (await stored(w, v.page)).filter((r) => r.event.type === 'feedback'));
  assert.deepEqual(fb.map((r) => [r.event.about, r.event.helpful]), [[answer.seq, true]]);

  // The axe check with the buttons present and one pressed.
  assert.deepEqual(await axe(v.page, WIDGET), []);

  // A change of mind, by Enter: "No" is now the pressed one and the bot
  // offers a person, which the visitor takes.
  await no.focus();
  await v.page.keyboard.press('Enter');
  await v.page.locator('frontdesk-widget .msg.bot').filter({ hasText: "Sorry that didn't help. Shall I get a person?" }).waitFor(WAIT);
  assert.equal(await no.getAttribute('aria-pressed'), 'true');
  assert.equal(await yes.getAttribute('aria-pressed'), 'false');
  fb = (await stored(w, v.page)).filter((r) => r.event.type === 'feedback');
  assert.deepEqual(fb.map((r) => [r.event.about, r.event.helpful]), [[answer.seq, true], [answer.seq, false]]);
  await v.page.getByRole('button', { name: 'Yes please' }).click();
  await v.page.locator('frontdesk-widget .status').filter({ hasText: 'in the queue' }).waitFor(WAIT);

  // After a reload the choice on screen is the stored one.
  await v.page.reload();
  // Left open with a conversation under way, the panel comes back open.
  await v.page.locator('frontdesk-widget .panel').waitFor(WAIT);
  await v.page.locator('frontdesk-widget .fb button[aria-pressed=true]').filter({ hasText: 'No' }).waitFor(WAIT);
  assert.deepEqual(v.errors, []);
  await v.ctx.close();
});

test('the bot\'s own lines get no helpful choice', async () => {
  const v = await visitor(w);
  await say(v.page, 'zzkx qvvj');
  await v.page.locator('frontdesk-widget .msg.bot').first().waitFor(WAIT);
  await say(v.page, 'How much is shipping?');
  await v.page.getByRole('group', { name: 'Was this helpful?' }).first().waitFor(WAIT);
  // A fallback, then one answer: only the answer has the choice.
  assert.equal(await v.page.locator('frontdesk-widget .msg.bot').count(), 2);
  assert.equal(await v.page.getByRole('group', { name: 'Was this helpful?' }).count(), 1);
  await v.ctx.close();
});

test('in German: the choice and the offer speak German', async () => {
  const de = await world(['[texts]', 'language = "de"']);
  try {
    const v = await visitor(de);
    await say(v.page, 'How much is shipping?');
    const group = v.page.getByRole('group', { name: 'War das hilfreich?' });
    await group.first().waitFor(WAIT);
    const nein = group.getByRole('button', { name: 'Nein', exact: true });
    await nein.focus();
    await v.page.keyboard.press('Enter');
    await v.page.locator('frontdesk-widget .msg.bot').filter({ hasText: 'Schade, dass das nicht geholfen hat.' }).waitFor(WAIT);
    assert.equal(await nein.getAttribute('aria-pressed'), 'true');
    await group.getByText('Danke für Ihre Rückmeldung.').waitFor(WAIT);
    await v.page.getByRole('button', { name: 'Ja, bitte' }).waitFor(WAIT);
    assert.deepEqual(await axe(v.page, WIDGET), []);
    assert.deepEqual(v.errors, []);
    await v.ctx.close();
  } finally {
    await de.close();
  }
});
